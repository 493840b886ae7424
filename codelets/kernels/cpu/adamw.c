/* adamw.c: CPU reference of one AdamW step with loss-scale removal, global-norm clipping and
 * overflow skipping (the ZeRO-Infinity optimizer step on its fp32 master weights), and the
 * dispatch to its vector versions.
 *
 * Follows torch.optim.AdamW (foreach=False) operation by operation: the scalar factors
 * (1 - lr*wd, lr / bias_correction1, sqrt(bias_correction2)) are computed in double as Python
 * does and used as fp32, the per-element math is fp32. Elements are independent, so OpenMP
 * splits them in blocks and any split gives the same bits.
 *
 * adamw_cpu runs on the fastest ISA of this CPU (adamw_simd.c: AVX-512, AVX2), all bit-identical
 * to the scalar code here, which stays callable as adamw_cpu_scalar. The environment variable
 * GPT50B_CPU_ISA=scalar|avx2|avx512 forces one (for tests and benchmarks; cpu_isa.h reads it
 * once, for every vector kernel). The step is memory-bound (28 bytes of traffic per bf16
 * parameter), so the vector kernels exist to reach memory bandwidth, not to save arithmetic. */
#include <math.h>

#include "adamw_simd.h"
#include "f32_view.h"
#include "kernels_cpu.h"

#define ADAMW_BLOCK 1024

float adamw_global_norm(const float *sumsq, float inv_loss_scale)
{
    return sumsq ? sqrtf(*sumsq) * inv_loss_scale : 0.0f;
}

/* The step's scalar factors; 0 when the step is skipped (non-finite gradient norm). */
static int adamw_factors_init(struct adamw_factors *f, const float *sumsq,
                              const struct adamw_hparams *hp)
{
    float norm = adamw_global_norm(sumsq, hp->inv_loss_scale);
    if (!isfinite(norm)) return 0;
    /* torch.nn.utils.clip_grad_norm_'s coefficient */
    float coef =
        hp->clip_norm > 0.0f && norm > hp->clip_norm ? hp->clip_norm / (norm + 1e-6f) : 1.0f;
    f->gscale = hp->inv_loss_scale * coef;
    f->beta1 = hp->beta1;
    f->beta2 = hp->beta2;
    f->eps = hp->eps;
    f->one_minus_beta1 = 1.0f - hp->beta1;
    f->one_minus_beta2 = 1.0f - hp->beta2;
    f->decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    f->step_size = (float)((double)hp->lr / (1.0 - pow(hp->beta1, hp->step)));
    f->bc2_sqrt = (float)sqrt(1.0 - pow(hp->beta2, hp->step));
    return 1;
}

/* The reference arithmetic on elements [off, off+len), len <= ADAMW_BLOCK. */
static void adamw_block_scalar(const struct adamw_factors *f, void *param, float *master, float *m,
                               float *v, const void *grad, size_t off, size_t len, enum dtype dt)
{
    const struct adamw_factors k = *f; /* a local copy: the float stores below cannot alias it */
    float tg[ADAMW_BLOCK];
    const float *g = f32_in(dt, grad, off, len, tg);
    float *w = master + off, *mb = m + off, *vb = v + off;
    for (size_t i = 0; i < len; i++) {
        float gi = g[i] * k.gscale;
        w[i] *= k.decay;
        mb[i] = k.beta1 * mb[i] + k.one_minus_beta1 * gi;
        vb[i] = k.beta2 * vb[i] + k.one_minus_beta2 * gi * gi;
        float denom = sqrtf(vb[i]) / k.bc2_sqrt + k.eps;
        w[i] -= k.step_size * mb[i] / denom;
    }
    if (param) dtype_from_f32(dt, w, (char *)param + off * dtype_size(dt), len);
}

void adamw_cpu_isa(enum cpu_isa isa, void *param, float *master, float *m, float *v,
                   const void *grad, const float *sumsq, size_t n, const struct adamw_hparams *hp,
                   enum dtype dt)
{
    CHECK_MSG(cpu_isa_supported(isa), "adamw_cpu_isa: this CPU does not run that ISA");
    struct adamw_factors f;
    if (!adamw_factors_init(&f, sumsq, hp)) return;
    size_t es = dtype_size(dt), nblocks = (n + ADAMW_BLOCK - 1) / ADAMW_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * ADAMW_BLOCK, len = n - off < ADAMW_BLOCK ? n - off : ADAMW_BLOCK;
        void *pb = param ? (char *)param + off * es : NULL;
        const void *gb = (const char *)grad + off * es;
        size_t done = 0;
        if (isa == CPU_ISA_AVX512)
            done = adamw_block_avx512(&f, pb, master + off, m + off, v + off, gb, len, dt);
        else if (isa == CPU_ISA_AVX2)
            done = adamw_block_avx2(&f, pb, master + off, m + off, v + off, gb, len, dt);
        if (done < len)
            adamw_block_scalar(&f, param, master, m, v, grad, off + done, len - done, dt);
    }
}

void adamw_cpu_scalar(void *param, float *master, float *m, float *v, const void *grad,
                      const float *sumsq, size_t n, const struct adamw_hparams *hp, enum dtype dt)
{
    adamw_cpu_isa(CPU_ISA_SCALAR, param, master, m, v, grad, sumsq, n, hp, dt);
}

void adamw_cpu(void *param, float *master, float *m, float *v, const void *grad, const float *sumsq,
               size_t n, const struct adamw_hparams *hp, enum dtype dt)
{
    adamw_cpu_isa(cpu_isa_selected(), param, master, m, v, grad, sumsq, n, hp, dt);
}
