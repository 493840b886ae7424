/* adamw.cu: CUDA AdamW step over n elements with loss-scale removal, global-norm clipping and
 * overflow skipping, operation by operation as the CPU reference (torch.optim.AdamW), and its
 * multi-tensor form (many tensors in one launch).
 *
 * The global norm comes from *sumsq in device memory, so each thread derives the clip coefficient
 * and the skip decision itself: no host synchronization. The scalar factors are computed on the
 * host in double exactly as the CPU reference does. Per-element math uses the _rn intrinsics so
 * that nvcc cannot contract it into FMAs: the fp32 results then equal the CPU reference's bit for
 * bit, whichever worker ran the step. Both kernels run the one element function below, so the
 * multi-tensor step gives each tensor adamw_cuda's bits. */
#include <math.h>

#include "common.cuh"

struct adamw_scalars {
    float step_size; /* lr / (1 - beta1^step) */
    float bc2_sqrt;  /* sqrt(1 - beta2^step) */
    float one_minus_beta1, one_minus_beta2;
};

static struct adamw_scalars adamw_scalars_of(const struct adamw_hparams *hp)
{
    CHECK_MSG(hp->step >= 1, "adamw step count is 1-based");
    struct adamw_scalars k;
    k.step_size = (float)((double)hp->lr / (1.0 - pow(hp->beta1, hp->step)));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(hp->beta2, hp->step));
    k.one_minus_beta1 = 1.0f - hp->beta1;
    k.one_minus_beta2 = 1.0f - hp->beta2;
    return k;
}

/* 1 - lr * weight_decay, the master weight's decay factor */
static float adamw_lr_decay(float lr, float weight_decay)
{
    return (float)(1.0 - (double)lr * weight_decay);
}

/* The gradient's scale (unscale times clip coefficient); false when the step is skipped. */
__device__ __forceinline__ bool adamw_gscale(const float *sumsq, const struct adamw_hparams &hp,
                                             float *gscale)
{
    float norm = sumsq ? __fmul_rn(__fsqrt_rn(*sumsq), hp.inv_loss_scale) : 0.0f;
    if (!isfinite(norm)) return false;
    float coef = hp.clip_norm > 0.0f && norm > hp.clip_norm
                     ? __fdiv_rn(hp.clip_norm, __fadd_rn(norm, 1e-6f))
                     : 1.0f;
    *gscale = __fmul_rn(hp.inv_loss_scale, coef);
    return true;
}

/* One element's step on values: g the raw gradient, *w, *m, *v the master weight and moments in
 * and out. */
__device__ __forceinline__ void adamw_math(float graw, float *w, float *m, float *v, float gscale,
                                           float lr_decay, const struct adamw_hparams &hp,
                                           const struct adamw_scalars &k)
{
    float g = __fmul_rn(graw, gscale);
    float wd = __fmul_rn(*w, lr_decay);
    float mi = __fadd_rn(__fmul_rn(hp.beta1, *m), __fmul_rn(k.one_minus_beta1, g));
    float vi = __fadd_rn(__fmul_rn(hp.beta2, *v), __fmul_rn(__fmul_rn(k.one_minus_beta2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), hp.eps);
    *w = __fsub_rn(wd, __fdiv_rn(__fmul_rn(k.step_size, mi), denom));
    *m = mi;
    *v = vi;
}

template <typename S>
__device__ __forceinline__ void
adamw_element(S *__restrict__ param, float *__restrict__ master, float *__restrict__ m,
              float *__restrict__ v, const S *__restrict__ grad, size_t i, float gscale,
              float lr_decay, const struct adamw_hparams &hp, const struct adamw_scalars &k)
{
    float w = master[i], mi = m[i], vi = v[i];
    adamw_math(to_f(grad[i]), &w, &mi, &vi, gscale, lr_decay, hp, k);
    master[i] = w;
    m[i] = mi;
    v[i] = vi;
    if (param) param[i] = from_f<S>(w);
}

/* Elements i..i+3 with one 16-byte load and store of each fp32 array and one of 4 elements of
 * grad and param (every address aligned to its vector); the same math per element. */
template <typename S>
__device__ __forceinline__ void
adamw_element4(S *__restrict__ param, float *__restrict__ master, float *__restrict__ m,
               float *__restrict__ v, const S *__restrict__ grad, size_t i, float gscale,
               float lr_decay, const struct adamw_hparams &hp, const struct adamw_scalars &k)
{
    using V = Vec<S, 4>;
    float4 w = *(const float4 *)(master + i), mi = *(const float4 *)(m + i);
    float4 vi = *(const float4 *)(v + i);
    V g = *(const V *)(grad + i), p;
    adamw_math(to_f(g.v[0]), &w.x, &mi.x, &vi.x, gscale, lr_decay, hp, k);
    adamw_math(to_f(g.v[1]), &w.y, &mi.y, &vi.y, gscale, lr_decay, hp, k);
    adamw_math(to_f(g.v[2]), &w.z, &mi.z, &vi.z, gscale, lr_decay, hp, k);
    adamw_math(to_f(g.v[3]), &w.w, &mi.w, &vi.w, gscale, lr_decay, hp, k);
    *(float4 *)(master + i) = w;
    *(float4 *)(m + i) = mi;
    *(float4 *)(v + i) = vi;
    if (!param) return;
    p.v[0] = from_f<S>(w.x);
    p.v[1] = from_f<S>(w.y);
    p.v[2] = from_f<S>(w.z);
    p.v[3] = from_f<S>(w.w);
    *(V *)(param + i) = p;
}

template <typename S>
__global__ void adamw_kernel(S *__restrict__ param, float *__restrict__ master,
                             float *__restrict__ m, float *__restrict__ v,
                             const S *__restrict__ grad, const float *__restrict__ sumsq, size_t n,
                             struct adamw_hparams hp, struct adamw_scalars k, float lr_decay)
{
    float gscale;
    if (!adamw_gscale(sumsq, hp, &gscale)) return;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        adamw_element(param, master, m, v, grad, i, gscale, lr_decay, hp, k);
}

extern "C" void adamw_cuda(void *param, float *master, float *m, float *v, const void *grad,
                           const float *sumsq, size_t n, const struct adamw_hparams *hp,
                           enum dtype dt, cudaStream_t stream)
{
    if (n == 0) return;
    struct adamw_scalars k = adamw_scalars_of(hp);
    float lr_decay = adamw_lr_decay(hp->lr, hp->weight_decay);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        adamw_kernel<S><<<grid_stride_blocks(n, 256), 256, 0, stream>>>(
            (S *)param, master, m, v, (const S *)grad, sumsq, n, *hp, k, lr_decay);
    });
    CUDA_LAUNCH_CHECK();
}

/* The multi-tensor step. The tensors' descriptors travel by value as kernel parameters (no copy
 * to the device, no scratch), ADAMW_MULTI_TENSORS a launch: 57 bytes each, so a launch's
 * parameters stay within the 4 KiB every CUDA version takes. A tensor whose arrays are all
 * aligned moves 4 elements a thread with 16-byte loads of the fp32 arrays. Each tensor is cut into
 * chunks of ADAMW_MULTI_CHUNK elements and a persistent grid walks the launch's chunks, so a bias
 * of 2048 elements and an embedding of 100 million share one launch and balance across the SMs. */
#define ADAMW_MULTI_TENSORS 64
#define ADAMW_MULTI_CHUNK   65536

struct adamw_multi_args {
    void *param[ADAMW_MULTI_TENSORS];
    float *master[ADAMW_MULTI_TENSORS], *m[ADAMW_MULTI_TENSORS], *v[ADAMW_MULTI_TENSORS];
    const void *grad[ADAMW_MULTI_TENSORS];
    size_t n[ADAMW_MULTI_TENSORS];
    float lr_decay[ADAMW_MULTI_TENSORS];
    unsigned chunk_end[ADAMW_MULTI_TENSORS]; /* chunks of tensors 0..t, a running sum */
    bool vec[ADAMW_MULTI_TENSORS]; /* every array of the tensor aligned: 4 elements a load */
    int ntensors;
};

template <typename S>
__global__ void adamw_multi_kernel(const __grid_constant__ struct adamw_multi_args a,
                                   const float *__restrict__ sumsq, struct adamw_hparams hp,
                                   struct adamw_scalars k)
{
    float gscale;
    if (!adamw_gscale(sumsq, hp, &gscale)) return;
    unsigned nchunks = a.chunk_end[a.ntensors - 1];
    int t = 0;
    for (unsigned c = blockIdx.x; c < nchunks; c += gridDim.x) {
        while (a.chunk_end[t] <= c) /* chunks ascend: the tensor index only moves forward */
            t++;
        size_t first = (size_t)(c - (t ? a.chunk_end[t - 1] : 0)) * ADAMW_MULTI_CHUNK;
        size_t end = first + ADAMW_MULTI_CHUNK < a.n[t] ? first + ADAMW_MULTI_CHUNK : a.n[t];
        /* chunks start at multiples of 4 elements: aligned tensors take 4 a thread, then the
         * chunk's last end % 4 elements (or, unaligned, all) one a thread */
        size_t scalar_from = a.vec[t] ? end - (end - first) % 4 : first;
        for (size_t i = first + 4 * threadIdx.x; i < scalar_from; i += 4 * blockDim.x)
            adamw_element4((S *)a.param[t], a.master[t], a.m[t], a.v[t], (const S *)a.grad[t], i,
                           gscale, a.lr_decay[t], hp, k);
        for (size_t i = scalar_from + threadIdx.x; i < end; i += blockDim.x)
            adamw_element((S *)a.param[t], a.master[t], a.m[t], a.v[t], (const S *)a.grad[t], i,
                          gscale, a.lr_decay[t], hp, k);
    }
}

extern "C" void adamw_multi_cuda(const struct adamw_tensor *tensors, int ntensors,
                                 const float *sumsq, const struct adamw_hparams *hp, enum dtype dt,
                                 cudaStream_t stream)
{
    struct adamw_scalars k = adamw_scalars_of(hp);
    struct adamw_multi_args a;
    int next = 0;
    while (next < ntensors) {
        a.ntensors = 0;
        unsigned chunks = 0;
        for (; next < ntensors && a.ntensors < ADAMW_MULTI_TENSORS; next++) {
            const struct adamw_tensor *x = &tensors[next];
            if (x->n == 0) continue;
            size_t c = (x->n + ADAMW_MULTI_CHUNK - 1) / ADAMW_MULTI_CHUNK;
            CHECK_MSG(chunks + c < UINT32_MAX, "adamw_multi_cuda: a launch of over 2^32 chunks");
            chunks += (unsigned)c;
            int t = a.ntensors++;
            a.param[t] = x->param;
            a.master[t] = x->master;
            a.m[t] = x->m;
            a.v[t] = x->v;
            a.grad[t] = x->grad;
            a.n[t] = x->n;
            a.lr_decay[t] = adamw_lr_decay(hp->lr, x->weight_decay);
            a.chunk_end[t] = chunks;
            size_t v4 = dt == DTYPE_FP32 ? 16 : 8; /* 4 elements of grad and param */
            a.vec[t] = aligned16(x->master) && aligned16(x->m) && aligned16(x->v) &&
                       (uintptr_t)x->grad % v4 == 0 && (uintptr_t)x->param % v4 == 0;
        }
        if (a.ntensors == 0) break;
        /* 256 threads take 256 elements of a chunk at a time; a few blocks an SM */
        unsigned blocks = chunks < 2048 ? chunks : 2048;
        dtype_dispatch(dt, [&](auto tag) {
            using S = typename decltype(tag)::type;
            adamw_multi_kernel<S><<<blocks, 256, 0, stream>>>(a, sumsq, *hp, k);
        });
        CUDA_LAUNCH_CHECK();
    }
}
