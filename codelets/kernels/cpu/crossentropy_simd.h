/* crossentropy_simd.h: the cross-entropy kernels on a chosen instruction set, and the per-ISA row
 * kernels behind them.
 *
 * crossentropy_forward_cpu and crossentropy_backward_cpu (kernels_cpu.h) run on
 * cpu_isa_selected() (cpu_isa.h). Every ISA computes the same polynomial exp (within 2e-7
 * relative of libm's expf, see crossentropy_simd.c) with the same operations per element and sums
 * a row as the same 16 partial sums folded in one tree, so all ISAs and all thread counts give the
 * same bits: a row is always reduced by one thread in that order.
 *
 * The row kernels are private to codelets/kernels/cpu/crossentropy.c; they are declared here so
 * that crossentropy_simd.c can stay a file of its own and tests can check the exp itself. */
#ifndef GPT50B_CROSSENTROPY_SIMD_H
#define GPT50B_CROSSENTROPY_SIMD_H

#include <stdint.h>

#include "cpu_isa.h"
#include "kernels_cpu.h"

/* The exp's constants (Cephes expf): log2(e), ln 2 = C1 + C2 with n*C1 exact, ln(FLT_MIN) below
 * which the result is 0, and the polynomial's coefficients. */
#define CE_EXP_LOG2E 1.44269504088896341f
#define CE_EXP_C1    0.693359375f
#define CE_EXP_C2    -2.12194440e-4f
#define CE_EXP_LOMIN -87.3365447505531f
#define CE_EXP_P0    1.9875691500e-4f
#define CE_EXP_P1    1.3981999507e-3f
#define CE_EXP_P2    8.3334519073e-3f
#define CE_EXP_P3    4.1665795894e-2f
#define CE_EXP_P4    1.6666665459e-1f
#define CE_EXP_P5    5.0000001201e-1f

/* The kernels of kernels_cpu.h on a given ISA, which must be supported (checked). */
void crossentropy_forward_cpu_isa(enum cpu_isa isa, float *losses, const void *logits,
                                  const int32_t *targets, int N, int V, int Vp, enum dtype dt);
void crossentropy_backward_cpu_isa(enum cpu_isa isa, void *dlogits, const void *logits,
                                   const int32_t *targets, float dloss, int N, int V, int Vp,
                                   enum dtype dt);

/* One ISA's row kernels over l[0:V], V >= 1:
 *   max:    the largest element, NaNs skipped (as the scalar l[i] > m ? l[i] : m)
 *   sumexp: sum of exp(l[i] - maxv)
 *   exp:    d[i] = exp(l[i] - maxv), returning their sum; d may equal l
 * exp(x) is 0 for x < ln(FLT_MIN) (no subnormals) and NaN for a NaN x. */
struct ce_row_ops {
    float (*max)(const float *l, int V);
    float (*sumexp)(const float *l, int V, float maxv);
    float (*exp)(float *d, const float *l, int V, float maxv);
};
extern const struct ce_row_ops ce_row_scalar, ce_row_avx512, ce_row_avx2;
/* The row sum's partial sums s[16] folded in the fixed tree every ISA uses:
 * (s[j] + s[j+8]) for j < 8, then (j, j+4) for j < 4, then (j, j+2), then the last two. */
float ce_fold16(const float s[16]);

#endif
