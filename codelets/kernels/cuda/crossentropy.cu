/* crossentropy.cu: CUDA softmax cross-entropy over the real vocabulary [0, V) of padded logits
 * rows [N, Vp], and its backward.
 *
 * One block per row. Each thread runs an online softmax (running max and sum of exp) over its
 * strided columns; the partials merge in a fixed tree (warp shuffles, then the warps in order),
 * so a row's result does not depend on timing. The loss is logsumexp - logit[target] in fp32.
 * The backward recomputes the row's statistics, then overwrites the whole padded row; every
 * thread reads an element before it writes it, so it may run in place (dlogits == logits). */
#include "common.cuh"

#define CE_THREADS 512

/* (max, sum of exp(x - max)) of logits row[0:V], the same in every thread of the block. */
template <typename S> __device__ void ce_row_stats(const S *row, int V, float &m, float &s)
{
    __shared__ float sm[CE_THREADS / 32], ss[CE_THREADS / 32];
    m = -INFINITY;
    s = 0.0f;
    for (int j = threadIdx.x; j < V; j += CE_THREADS)
        softmax_push(m, s, to_f(row[j]));
    warp_softmax_merge(m, s);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        sm[warp] = m;
        ss[warp] = s;
    }
    __syncthreads();
    m = sm[0];
    s = ss[0];
    for (int w = 1; w < CE_THREADS / 32; w++)
        softmax_merge(m, s, sm[w], ss[w]);
}

template <typename S>
__global__ void __launch_bounds__(CE_THREADS)
    crossentropy_forward_kernel(float *losses, const S *logits, const int32_t *targets, int V,
                                int Vp)
{
    int n = blockIdx.x;
    const S *row = logits + (size_t)n * Vp;
    float m, s;
    ce_row_stats(row, V, m, s);
    int target = targets[n];
    /* a target outside the vocabulary cannot abort a kernel: it shows as a NaN loss */
    if (threadIdx.x == 0)
        losses[n] = target >= 0 && target < V ? logf(s) + m - to_f(row[target]) : NAN;
}

template <typename S>
__global__ void __launch_bounds__(CE_THREADS)
    crossentropy_backward_kernel(S *dlogits, const S *logits, const int32_t *targets, float dloss,
                                 int V, int Vp)
{
    int n = blockIdx.x;
    const S *row = logits + (size_t)n * Vp;
    float m, s;
    ce_row_stats(row, V, m, s);
    float inv = 1.0f / s;
    int target = targets[n];
    S *d = dlogits + (size_t)n * Vp;
    for (int j = threadIdx.x; j < Vp; j += CE_THREADS) {
        float g = 0.0f;
        if (j < V) g = (expf(to_f(row[j]) - m) * inv - (j == target ? 1.0f : 0.0f)) * dloss;
        d[j] = from_f<S>(g);
    }
}

static void crossentropy_check(int V, int Vp)
{
    CHECK_MSG(V > 0 && Vp >= V, "crossentropy needs 0 < V <= Vp");
}

extern "C" void crossentropy_forward_cuda(float *losses, const void *logits, const int32_t *targets,
                                          int N, int V, int Vp, enum dtype dt, cudaStream_t stream)
{
    if (N == 0) return;
    crossentropy_check(V, Vp);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        crossentropy_forward_kernel<S>
            <<<N, CE_THREADS, 0, stream>>>(losses, (const S *)logits, targets, V, Vp);
    });
    CUDA_LAUNCH_CHECK();
}

extern "C" void crossentropy_backward_cuda(void *dlogits, const void *logits,
                                           const int32_t *targets, float dloss, int N, int V,
                                           int Vp, enum dtype dt, cudaStream_t stream)
{
    if (N == 0) return;
    crossentropy_check(V, Vp);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        crossentropy_backward_kernel<S>
            <<<N, CE_THREADS, 0, stream>>>((S *)dlogits, (const S *)logits, targets, dloss, V, Vp);
    });
    CUDA_LAUNCH_CHECK();
}
