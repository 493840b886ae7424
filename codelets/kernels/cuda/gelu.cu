/* gelu.cu: CUDA GPT-2 tanh-approximate GELU and its derivative, elementwise through the
 * vectorized map kernel of common.cuh with the operations of gelu.cuh. */
#include "common.cuh"
#include "gelu.cuh"

extern "C" void gelu_forward_cuda(void *out, const void *inp, size_t n, enum dtype dt,
                                  cudaStream_t stream)
{
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        map_launch<S>((S *)out, (const S *)inp, nullptr, nullptr, n, gelu_forward_op{}, stream);
    });
}

extern "C" void gelu_backward_cuda(void *dinp, const void *inp, const void *dout, size_t n,
                                   enum dtype dt, cudaStream_t stream)
{
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        map_launch<S>((S *)dinp, (const S *)dinp, (const S *)inp, (const S *)dout, n,
                      gelu_backward_op{}, stream);
    });
}
