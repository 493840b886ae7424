/* sumsq.cu: CUDA sum of squares of a gradient, added to a device float (the global norm's input),
 * for up to SUMSQ_MULTI_MAX gradients in two launches.
 *
 * Two stages in double, like the CPU reference: per gradient a grid fixed by its n alone, each
 * thread summing a strided slice and each block writing one partial into scratch, then one block
 * per gradient adding its partials in a fixed tree and the total to its slot. A gradient gets the
 * same bits alone or with others. Squares of inf or NaN stay non-finite, which
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

/* The tensors of one launch: tensor i's blocks are [first[i], first[i + 1]) of the grid, as many
 * as sumsq_blocks(n[i]), which is what one launch per tensor would give it; vec[i]: its address
 * is 16-byte aligned (vector loads). Empty tensors are left out. */
struct sumsq_multi_args {
    const void *grad[SUMSQ_MULTI_MAX];
    size_t n[SUMSQ_MULTI_MAX];
    int first[SUMSQ_MULTI_MAX + 1];
    bool vec[SUMSQ_MULTI_MAX];
    int slot[SUMSQ_MULTI_MAX]; /* its index in the caller's list: out[slot] receives its sum */
    int ntensors;
};

/* s plus the squares of v's P elements, in order. */
template <typename S, int P> __device__ __forceinline__ double add_squares(double s, Vec<S, P> v)
{
    for (int k = 0; k < P; k++) {
        double x = to_f(v.v[k]);
        s += x * x;
    }
    return s;
}

/* Thread `first`'s sum of squares over a grid-stride slice of grad[0..n): P elements a load, four
 * loads in flight (added in the slice's order, so the bits are those of one load at a time). */
template <typename S, int P>
__device__ double slice_sumsq(const S *grad, size_t n, size_t first, size_t stride)
{
    using V = Vec<S, P>;
    const V *g = (const V *)grad;
    size_t nvec = n / P, i = first;
    double s = 0.0;
    for (; i + 3 * stride < nvec; i += 4 * stride) {
        V v0 = g[i], v1 = g[i + stride], v2 = g[i + 2 * stride], v3 = g[i + 3 * stride];
        s = add_squares(add_squares(add_squares(add_squares(s, v0), v1), v2), v3);
    }
    for (; i < nvec; i += stride)
        s = add_squares(s, g[i]);
    for (size_t i = nvec * P + first; i < n; i += stride) {
        double x = to_f(grad[i]);
        s += x * x;
    }
    return s;
}

/* Each block: its tensor's block lb of nb, one partial of that tensor's sum. */
template <typename S>
__global__ void __launch_bounds__(SUMSQ_THREADS)
    sumsq_partial_kernel(double *partial, const sumsq_multi_args a)
{
    int i = 0;
    while (i + 1 < a.ntensors && (int)blockIdx.x >= a.first[i + 1])
        i++;
    size_t nb = (size_t)(a.first[i + 1] - a.first[i]), lb = blockIdx.x - a.first[i];
    size_t stride = nb * SUMSQ_THREADS, first = lb * SUMSQ_THREADS + threadIdx.x;
    const S *grad = (const S *)a.grad[i];
    double s = a.vec[i] ? slice_sumsq<S, vec16<S>()>(grad, a.n[i], first, stride)
                        : slice_sumsq<S, 1>(grad, a.n[i], first, stride);
    s = block_sum<SUMSQ_THREADS>(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

/* Block i adds tensor i's partials in a fixed tree, and the total to its slot of out. */
__global__ void __launch_bounds__(SUMSQ_BLOCKS_MAX)
    sumsq_finish_kernel(float *out, const double *partial, const sumsq_multi_args a)
{
    int i = blockIdx.x, nb = a.first[i + 1] - a.first[i];
    double x = (int)threadIdx.x < nb ? partial[a.first[i] + threadIdx.x] : 0.0;
    double s = block_sum<SUMSQ_BLOCKS_MAX>(x);
    if (threadIdx.x == 0) out[a.slot[i]] = (float)((double)out[a.slot[i]] + s);
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

extern "C" void sumsq_multi_cuda(float *out, const void *const *grads, const size_t *n,
                                 int ntensors, enum dtype dt, void *scratch, cudaStream_t stream)
{
    CHECK(ntensors >= 0 && ntensors <= SUMSQ_MULTI_MAX);
    sumsq_multi_args a = {};
    for (int i = 0; i < ntensors; i++) {
        if (n[i] == 0) continue; /* adds nothing */
        int k = a.ntensors++;
        a.grad[k] = grads[i];
        a.n[k] = n[i];
        a.vec[k] = aligned16(grads[i]);
        a.slot[k] = i;
        a.first[k + 1] = a.first[k] + sumsq_blocks(n[i]);
    }
    if (a.ntensors == 0) return;
    CHECK_MSG(scratch != NULL,
              "sumsq_multi_cuda needs the scratch buffer of sumsq_multi_cuda_scratch_bytes()");
    double *partial = (double *)scratch;
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        sumsq_partial_kernel<S><<<a.first[a.ntensors], SUMSQ_THREADS, 0, stream>>>(partial, a);
    });
    CUDA_LAUNCH_CHECK();
    sumsq_finish_kernel<<<a.ntensors, SUMSQ_BLOCKS_MAX, 0, stream>>>(out, partial, a);
    CUDA_LAUNCH_CHECK();
}

extern "C" void sumsq_cuda(float *out, const void *grad, size_t n, enum dtype dt, void *scratch,
                           cudaStream_t stream)
{
    sumsq_multi_cuda(out, &grad, &n, 1, dt, scratch, stream);
}
