/* adamw_simd.h: adamw_cpu on a chosen instruction set, and the per-ISA block kernels behind it.
 *
 * adamw_cpu (kernels_cpu.h) runs on cpu_isa_selected() (cpu_isa.h): the fastest ISA this CPU
 * supports, or the one named by GPT50B_CPU_ISA=scalar|avx2|avx512. Every ISA gives the same bits as
 * the scalar reference (adamw_cpu_scalar): the vector kernels repeat its fp32 operations one by
 * one, in its order, with no fused multiply-add. Tests and benchmarks name an ISA with
 * adamw_cpu_isa.
 *
 * The block kernels are private to codelets/kernels/cpu/adamw.c (its OpenMP loop calls them on
 * blocks of at most ADAMW_BLOCK elements); they are declared here so adamw_simd.c can stay a file
 * of its own, built without the scalar code. */
#ifndef GPT50B_ADAMW_SIMD_H
#define GPT50B_ADAMW_SIMD_H

#include <stddef.h>

#include "cpu_isa.h"
#include "kernels_cpu.h"

/* adamw_cpu on a given ISA, which must be supported (checked). */
void adamw_cpu_isa(enum cpu_isa isa, void *param, float *master, float *m, float *v,
                   const void *grad, const float *sumsq, size_t n, const struct adamw_hparams *hp,
                   enum dtype dt);
/* The scalar reference: adamw_cpu_isa(CPU_ISA_SCALAR, ...). */
void adamw_cpu_scalar(void *param, float *master, float *m, float *v, const void *grad,
                      const float *sumsq, size_t n, const struct adamw_hparams *hp, enum dtype dt);

/* The per-step fp32 factors every element uses, computed once by adamw.c. */
struct adamw_factors {
    float gscale; /* inv_loss_scale * clipping coefficient */
    float beta1, beta2, eps;
    float one_minus_beta1, one_minus_beta2;
    float decay;     /* 1 - lr * weight_decay */
    float step_size; /* lr / (1 - beta1^step) */
    float bc2_sqrt;  /* sqrt(1 - beta2^step) */
};

/* One block of len elements: grad and param (NULL: no copy) point at the block's first element,
 * of type dt. Return how many leading elements they did: all (AVX-512, masked tail) or a
 * multiple of the vector width (AVX2); the caller finishes the rest with the scalar code. */
size_t adamw_block_avx512(const struct adamw_factors *f, void *param, float *master, float *m,
                          float *v, const void *grad, size_t len, enum dtype dt);
size_t adamw_block_avx2(const struct adamw_factors *f, void *param, float *master, float *m,
                        float *v, const void *grad, size_t len, enum dtype dt);

#endif
