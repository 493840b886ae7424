/* cuda_none.c: the CUDA launchers of kernels_cuda.h in the CPU-only build.
 *
 * The codelets name a CUDA function next to each CPU one; StarPU built without CUDA never runs
 * them, so these launchers are never called (the scratch sizes are cuda_scratch.c's, in every
 * build). */
#include "check.h"
#include "cuda_scratch.h"
#include "kernels_cuda.h"

#define CUDA_NONE() CHECK_MSG(0, "a CUDA launcher ran in the CPU-only build")

void encoder_forward_cuda(void *out, const int32_t *tokens, const void *wte, const void *wpe, int B,
                          int T, int C, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void encoder_backward_cuda(void *dwte, void *dwpe, const void *dout, const int32_t *tokens, int B,
                           int T, int C, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void layernorm_forward_cuda(void *out, float *mean, float *rstd, const void *inp,
                            const void *weight, const void *bias, int N, int C, enum dtype dt,
                            cudaStream_t stream)
{
    CUDA_NONE();
}

void add_layernorm_forward_cuda(void *res, void *out, float *mean, float *rstd, const void *a,
                                const void *b, const void *weight, const void *bias, int N, int C,
                                enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void layernorm_backward_cuda(void *dinp, void *dweight, void *dbias, const void *dout,
                             const void *inp, const void *weight, const float *mean,
                             const float *rstd, int N, int C, enum dtype dt, void *scratch,
                             cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_forward_cuda(cublasHandle_t handle, void *out, const void *inp, const void *weight,
                         const void *bias, int N, int C, int OC, int ldo, enum dtype dt,
                         cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_forward_ws_cuda(cublasHandle_t handle, void *out, const void *inp, const void *weight,
                            const void *bias, int N, int C, int OC, int ldo, enum dtype dt,
                            void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_backward_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt, void *dweight,
                          void *dbias, const void *dout, const void *inp, const void *weight, int N,
                          int C, int OC, int ldo, enum dtype dt, unsigned set, void *scratch,
                          cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_backward_ws_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt, void *dweight,
                             void *dbias, const void *dout, const void *inp, const void *weight,
                             int N, int C, int OC, int ldo, enum dtype dt, unsigned set,
                             void *scratch, void *workspace, size_t workspace_bytes,
                             cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_cuda_cache_stats(int *problems, int *unfused)
{
    *problems = *unfused = 0;
}

void matmul_forward_gelu_cuda(cublasHandle_t handle, void *out, void *pre, const void *inp,
                              const void *weight, const void *bias, int N, int C, int OC, int ldo,
                              enum dtype dt, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream)
{
    CUDA_NONE();
}

void matmul_backward_dgelu_cuda(cublasHandle_t handle, void *dpre, void *dweight, void *dbias,
                                void *dbias_pre, const void *dout, const void *inp,
                                const void *weight, const void *pre, int N, int C, int OC,
                                enum dtype dt, unsigned set, void *scratch, void *workspace,
                                size_t workspace_bytes, cudaStream_t stream)
{
    CUDA_NONE();
}

void attention_forward_cuda(cublasHandle_t handle, void *out, float *stats, const void *qkv, int B,
                            int T, int C, int NH, enum dtype dt, void *scratch, cudaStream_t stream)
{
    CUDA_NONE();
}

void attention_backward_cuda(cublasHandle_t handle, void *dqkv, const void *dout, const void *qkv,
                             const float *stats, int B, int T, int C, int NH, enum dtype dt,
                             void *scratch, cudaStream_t stream)
{
    CUDA_NONE();
}

/* No card to ask: the shape decides (the simulation build's simulated GPUs; the CPU-only build
 * never runs a CUDA task). */
int flash_attention_cuda_supported(int C, int NH, enum dtype dt)
{
    return flash_attention_shape_ok(C, NH, dt);
}

void flash_attention_forward_cuda(void *out, float *stats, const void *qkv, int B, int T, int C,
                                  int NH, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void flash_attention_backward_cuda(void *dqkv, const void *dout, const void *qkv, const void *out,
                                   const float *stats, int B, int T, int C, int NH, enum dtype dt,
                                   int add, void *scratch, cudaStream_t stream)
{
    CUDA_NONE();
}

void gelu_forward_cuda(void *out, const void *inp, size_t n, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void gelu_backward_cuda(void *dinp, const void *inp, const void *dout, size_t n, enum dtype dt,
                        cudaStream_t stream)
{
    CUDA_NONE();
}

void add_forward_cuda(void *out, const void *a, const void *b, size_t n, enum dtype dt,
                      cudaStream_t stream)
{
    CUDA_NONE();
}

void crossentropy_forward_cuda(float *losses, const void *logits, const int32_t *targets, int N,
                               int V, int Vp, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void crossentropy_backward_cuda(void *dlogits, const void *logits, const int32_t *targets,
                                float dloss, int N, int V, int Vp, enum dtype dt,
                                cudaStream_t stream)
{
    CUDA_NONE();
}

void sum_cuda(float *out, const float *in, size_t n, cudaStream_t stream)
{
    CUDA_NONE();
}

void sumsq_cuda(float *out, const void *grad, size_t n, enum dtype dt, void *scratch,
                cudaStream_t stream)
{
    CUDA_NONE();
}

void sumsq_multi_cuda(float *out, const void *const *grads, const size_t *n, int ntensors,
                      enum dtype dt, void *scratch, cudaStream_t stream)
{
    CUDA_NONE();
}

void adamw_cuda(void *param, float *master, float *m, float *v, const void *grad,
                const float *sumsq, size_t n, const struct adamw_hparams *hp, enum dtype dt,
                cudaStream_t stream)
{
    CUDA_NONE();
}

void adamw_multi_cuda(const struct adamw_tensor *tensors, int ntensors, const float *sumsq,
                      const struct adamw_hparams *hp, enum dtype dt, cudaStream_t stream)
{
    CUDA_NONE();
}

void cast_cuda(void *dst, enum dtype dst_dt, const void *src, enum dtype src_dt, size_t n,
               cudaStream_t stream)
{
    CUDA_NONE();
}

void zero_cuda(void *dst, size_t bytes, cudaStream_t stream)
{
    CUDA_NONE();
}
