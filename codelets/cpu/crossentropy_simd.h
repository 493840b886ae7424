/* crossentropy_simd.h: the cross-entropy kernels on a chosen instruction set, and the per-ISA row
 * kernels behind them.
 *
 * crossentropy_forward_cpu and crossentropy_backward_cpu (kernels_cpu.h) run on
 * cpu_isa_selected() (cpu_isa.h). The scalar ISA calls libm's expf; the vector ones a polynomial
 * exp that agrees with it within 2e-7 relative (see crossentropy_simd.c), so the ISAs agree to
 * rounding, not bit for bit. Each ISA gives the same bits whatever the thread count: a row is
 * always reduced by one thread in one fixed order.
 *
 * The row kernels are private to codelets/cpu/crossentropy.c; they are declared here so that
 * crossentropy_simd.c can stay a file of its own and tests can check the exp itself. */
#ifndef GPT50B_CROSSENTROPY_SIMD_H
#define GPT50B_CROSSENTROPY_SIMD_H

#include <stdint.h>

#include "cpu_isa.h"
#include "kernels_cpu.h"

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
extern const struct ce_row_ops ce_row_avx512, ce_row_avx2;

#endif
