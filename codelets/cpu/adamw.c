/* adamw.c: CPU reference of one AdamW step with loss-scale removal, global-norm clipping and
 * overflow skipping (the ZeRO-Infinity optimizer step on its fp32 master weights).
 *
 * Follows torch.optim.AdamW (foreach=False) operation by operation: the scalar factors
 * (1 - lr*wd, lr / bias_correction1, sqrt(bias_correction2)) are computed in double as Python
 * does and used as fp32, the per-element math is fp32. Elements are independent. */
#include <math.h>

#include "f32_view.h"
#include "kernels_cpu.h"

#define ADAMW_BLOCK 1024

void adamw_cpu(void *param, float *master, float *m, float *v, const void *grad, const float *sumsq,
               size_t n, const struct adamw_hparams *hp, enum dtype dt)
{
    float norm = sqrtf(*sumsq) * hp->inv_loss_scale;
    if (!isfinite(norm)) return;
    /* torch.nn.utils.clip_grad_norm_'s coefficient */
    float coef =
        hp->clip_norm > 0.0f && norm > hp->clip_norm ? hp->clip_norm / (norm + 1e-6f) : 1.0f;
    float gscale = hp->inv_loss_scale * coef;
    float beta1 = hp->beta1, beta2 = hp->beta2, eps = hp->eps;
    float decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    float step_size = (float)((double)hp->lr / (1.0 - pow(beta1, hp->step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, hp->step));
    size_t nblocks = (n + ADAMW_BLOCK - 1) / ADAMW_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * ADAMW_BLOCK, len = n - off < ADAMW_BLOCK ? n - off : ADAMW_BLOCK;
        float tg[ADAMW_BLOCK];
        const float *g = f32_in(dt, grad, off, len, tg);
        float *w = master + off, *mb = m + off, *vb = v + off;
        for (size_t i = 0; i < len; i++) {
            float gi = g[i] * gscale;
            w[i] *= decay;
            mb[i] = beta1 * mb[i] + (1.0f - beta1) * gi;
            vb[i] = beta2 * vb[i] + (1.0f - beta2) * gi * gi;
            float denom = sqrtf(vb[i]) / bc2_sqrt + eps;
            w[i] -= step_size * mb[i] / denom;
        }
        if (param) dtype_from_f32(dt, w, (char *)param + off * dtype_size(dt), len);
    }
}
