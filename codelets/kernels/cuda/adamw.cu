/* adamw.cu: CUDA AdamW step over n elements with loss-scale removal, global-norm clipping and
 * overflow skipping, operation by operation as the CPU reference (torch.optim.AdamW).
 *
 * The global norm comes from *sumsq in device memory, so each thread derives the clip coefficient
 * and the skip decision itself: no host synchronization. The scalar factors are computed on the
 * host in double exactly as the CPU reference does. Per-element math uses the _rn intrinsics so
 * that nvcc cannot contract it into FMAs: the fp32 results then equal the CPU reference's bit for
 * bit, whichever worker ran the step. */
#include <math.h>

#include "common.cuh"

struct adamw_scalars {
    float lr_decay;  /* 1 - lr * weight_decay */
    float step_size; /* lr / (1 - beta1^step) */
    float bc2_sqrt;  /* sqrt(1 - beta2^step) */
    float one_minus_beta1, one_minus_beta2;
};

template <typename S>
__global__ void adamw_kernel(S *__restrict__ param, float *__restrict__ master,
                             float *__restrict__ m, float *__restrict__ v,
                             const S *__restrict__ grad, const float *__restrict__ sumsq, size_t n,
                             struct adamw_hparams hp, struct adamw_scalars k)
{
    float norm = sumsq ? __fmul_rn(__fsqrt_rn(*sumsq), hp.inv_loss_scale) : 0.0f;
    if (!isfinite(norm)) return;
    float coef = hp.clip_norm > 0.0f && norm > hp.clip_norm
                     ? __fdiv_rn(hp.clip_norm, __fadd_rn(norm, 1e-6f))
                     : 1.0f;
    float gscale = __fmul_rn(hp.inv_loss_scale, coef);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = __fmul_rn(to_f(grad[i]), gscale);
        float w = __fmul_rn(master[i], k.lr_decay);
        float mi = __fadd_rn(__fmul_rn(hp.beta1, m[i]), __fmul_rn(k.one_minus_beta1, g));
        float vi =
            __fadd_rn(__fmul_rn(hp.beta2, v[i]), __fmul_rn(__fmul_rn(k.one_minus_beta2, g), g));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), hp.eps);
        w = __fsub_rn(w, __fdiv_rn(__fmul_rn(k.step_size, mi), denom));
        master[i] = w;
        m[i] = mi;
        v[i] = vi;
        if (param) param[i] = from_f<S>(w);
    }
}

extern "C" void adamw_cuda(void *param, float *master, float *m, float *v, const void *grad,
                           const float *sumsq, size_t n, const struct adamw_hparams *hp,
                           enum dtype dt, cudaStream_t stream)
{
    if (n == 0) return;
    CHECK_MSG(hp->step >= 1, "adamw step count is 1-based");
    struct adamw_scalars k;
    k.lr_decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    k.step_size = (float)((double)hp->lr / (1.0 - pow(hp->beta1, hp->step)));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(hp->beta2, hp->step));
    k.one_minus_beta1 = 1.0f - hp->beta1;
    k.one_minus_beta2 = 1.0f - hp->beta2;
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        adamw_kernel<S><<<grid_stride_blocks(n, 256), 256, 0, stream>>>(
            (S *)param, master, m, v, (const S *)grad, sumsq, n, *hp, k);
    });
    CUDA_LAUNCH_CHECK();
}
