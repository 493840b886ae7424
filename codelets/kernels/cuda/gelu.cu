/* gelu.cu: CUDA GPT-2 tanh-approximate GELU and its derivative, elementwise through the
 * vectorized map kernel of common.cuh. The formulas are the CPU reference's, term for term
 * (sech^2 as 1 - tanh^2, which cannot overflow like cosh). */
#include "common.cuh"

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

struct gelu_forward_op {
    __device__ float operator()(float x, float, float) const
    {
        return 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
};

/* d + gelu'(x) * g: the backward accumulates into dinp */
struct gelu_backward_op {
    __device__ float operator()(float d, float x, float g) const
    {
        float th = tanhf(GELU_SCALE * (x + 0.044715f * x * x * x));
        float sech2 = 1.0f - th * th;
        float local =
            0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        return d + local * g;
    }
};

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
