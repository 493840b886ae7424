/* cast.cu: CUDA conversion between any two dtypes, through fp32 (which holds every fp16 and bf16
 * value exactly, so the one rounding is the store). Equal types are a device copy. */
#include "common.cuh"

template <typename D, typename S> __global__ void cast_kernel(D *dst, const S *src, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = from_f<D>(to_f(src[i]));
}

extern "C" void cast_cuda(void *dst, enum dtype dst_dt, const void *src, enum dtype src_dt,
                          size_t n, cudaStream_t stream)
{
    if (n == 0) return;
    if (dst_dt == src_dt) {
        if (dst != src) {
            size_t bytes = 0;
            dtype_dispatch(src_dt,
                           [&](auto tag) { bytes = n * sizeof(typename decltype(tag)::type); });
            CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
        }
        return;
    }
    dtype_dispatch(dst_dt, [&](auto dtag) {
        using D = typename decltype(dtag)::type;
        dtype_dispatch(src_dt, [&](auto stag) {
            using S = typename decltype(stag)::type;
            cast_kernel<D, S>
                <<<grid_stride_blocks(n, 256), 256, 0, stream>>>((D *)dst, (const S *)src, n);
        });
    });
    CUDA_LAUNCH_CHECK();
}

extern "C" void zero_cuda(void *dst, size_t bytes, cudaStream_t stream)
{
    CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream));
}
