/* sumsq.cu: CUDA sum of squares of a gradient, added to a device float (the global norm's input).
 *
 * Two stages in double, like the CPU reference: a grid fixed by n alone, each thread summing a
 * strided slice and each block writing one partial into scratch, then one block adding the
 * partials in a fixed tree and the total to *out. Squares of inf or NaN stay non-finite, which
 * is how the optimizer sees an fp16 overflow. */
#include "common.cuh"

/* Sum over a block of one double per thread, in a fixed order; valid in thread 0. */
template <int THREADS> __device__ double block_sum(double x)
{
    __shared__ double sh[THREADS / 32];
    x = warp_sum(x);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = x;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0)
        for (int w = 0; w < THREADS / 32; w++)
            s += sh[w];
    return s;
}

template <typename S, bool VEC>
__global__ void __launch_bounds__(SUMSQ_THREADS)
    sumsq_partial_kernel(double *partial, const S *grad, size_t n)
{
    constexpr int P = VEC ? vec16<S>() : 1;
    using V = Vec<S, P>;
    size_t stride = (size_t)gridDim.x * SUMSQ_THREADS;
    size_t first = (size_t)blockIdx.x * SUMSQ_THREADS + threadIdx.x;
    size_t nvec = n / P;
    double s = 0.0;
    for (size_t i = first; i < nvec; i += stride) {
        V v = ((const V *)grad)[i];
        for (int k = 0; k < P; k++) {
            double x = to_f(v.v[k]);
            s += x * x;
        }
    }
    for (size_t i = nvec * P + first; i < n; i += stride) {
        double x = to_f(grad[i]);
        s += x * x;
    }
    s = block_sum<SUMSQ_THREADS>(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(SUMSQ_BLOCKS_MAX)
    sumsq_finish_kernel(float *out, const double *partial, int nblocks)
{
    double x = (int)threadIdx.x < nblocks ? partial[threadIdx.x] : 0.0;
    double s = block_sum<SUMSQ_BLOCKS_MAX>(x);
    if (threadIdx.x == 0) *out = (float)((double)*out + s);
}

__global__ void sum_kernel(float *out, const float *in, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += in[i];
    *out = (float)s;
}

extern "C" void sum_cuda(float *out, const float *in, size_t n, cudaStream_t stream)
{
    sum_kernel<<<1, 1, 0, stream>>>(out, in, n);
    CUDA_LAUNCH_CHECK();
}

extern "C" void sumsq_cuda(float *out, const void *grad, size_t n, enum dtype dt, void *scratch,
                           cudaStream_t stream)
{
    if (n == 0) return;
    CHECK_MSG(scratch != NULL, "sumsq_cuda needs the scratch buffer of sumsq_cuda_scratch_bytes()");
    int nblocks = sumsq_blocks(n);
    double *partial = (double *)scratch;
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        if (aligned16(grad))
            sumsq_partial_kernel<S, true>
                <<<nblocks, SUMSQ_THREADS, 0, stream>>>(partial, (const S *)grad, n);
        else
            sumsq_partial_kernel<S, false>
                <<<nblocks, SUMSQ_THREADS, 0, stream>>>(partial, (const S *)grad, n);
    });
    CUDA_LAUNCH_CHECK();
    sumsq_finish_kernel<<<1, SUMSQ_BLOCKS_MAX, 0, stream>>>(out, partial, nblocks);
    CUDA_LAUNCH_CHECK();
}
