/* gelu.cuh: GPT-2's tanh-approximate GELU and its derivative as map_kernel operations (common.cuh),
 * shared by gelu.cu and the unfused paths of the GEMM+GELU launchers in matmul.cu. The formulas
 * are the CPU reference's, term for term (sech^2 as 1 - tanh^2, which cannot overflow like
 * cosh). */
#ifndef GPT50B_GELU_CUH
#define GPT50B_GELU_CUH

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

struct gelu_forward_op {
    __device__ float operator()(float x, float, float) const
    {
        return 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
};

/* d + gelu'(x) * g: the backward accumulates into dinp (d = 0 when a is NULL: overwrites) */
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

#endif
