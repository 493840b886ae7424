/* kernels_cuda.h: the CUDA kernels of every operation, one launcher per kernel.
 *
 * Each launcher has the signature of its CPU twin in kernels_cpu.h (same meaning, same
 * accumulate/overwrite contract, same fp32 math) plus, at the end, the stream to launch on: the
 * StarPU worker's local stream. Launchers never synchronize and never allocate; where a kernel
 * needs working memory the caller passes `scratch` of the size the matching *_scratch_bytes()
 * returns (StarPU provides it as a STARPU_SCRATCH buffer). All pointers are device pointers.
 * Results agree with the CPU kernels within rounding (tests/codelets/cuda/test_cuda_vs_cpu.c);
 * reductions use a fixed order so that a launcher is deterministic run to run.
 *
 * The CPU-only build (no GPT50B_HAVE_CUDA) declares the same launchers over opaque stream and
 * handle types, so that the codelets compile unchanged; cuda_none.c stands in for them there
 * (StarPU has no CUDA worker to call them). */
#ifndef GPT50B_KERNELS_CUDA_H
#define GPT50B_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef GPT50B_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#else
typedef struct CUstream_st *cudaStream_t;
typedef struct cublasContext *cublasHandle_t;
#endif

#include "kernels_cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

void encoder_forward_cuda(void *out, const int32_t *tokens, const void *wte, const void *wpe, int B,
                          int T, int C, enum dtype dt, cudaStream_t stream);
void encoder_backward_cuda(void *dwte, void *dwpe, const void *dout, const int32_t *tokens, int B,
                           int T, int C, enum dtype dt, cudaStream_t stream);

void layernorm_forward_cuda(void *out, float *mean, float *rstd, const void *inp,
                            const void *weight, const void *bias, int N, int C, enum dtype dt,
                            cudaStream_t stream);
/* add_layernorm_forward_cpu's contract: res = a + b (rounded), out = layernorm(res); res may be a
 * or b. One launch, one block per row held in registers: C up to 16384 (32768 for fp16/bf16 rows
 * of 16-byte aligned tensors). */
void add_layernorm_forward_cuda(void *res, void *out, float *mean, float *rstd, const void *a,
                                const void *b, const void *weight, const void *bias, int N, int C,
                                enum dtype dt, cudaStream_t stream);
size_t layernorm_backward_cuda_scratch_bytes(int N, int C);
void layernorm_backward_cuda(void *dinp, void *dweight, void *dbias, const void *dout,
                             const void *inp, const void *weight, const float *mean,
                             const float *rstd, int N, int C, enum dtype dt, void *scratch,
                             cudaStream_t stream);

/* cuBLASLt with fp32 accumulation (matmul.cu); `handle` is a cuBLAS handle, which is a valid
 * cuBLASLt one. The algorithm of each distinct product is chosen on its first call and cached
 * (process-wide, thread-safe); later calls allocate nothing and never ask the heuristic again.
 *
 * Workspace: the *_ws_cuda launchers and the fused ones take a device buffer for cuBLASLt that
 * the caller owns, workspace_bytes long (MATMUL_CUDA_WORKSPACE_BYTES; NULL and 0: algorithms that
 * need none). A codelet passes a STARPU_SCRATCH buffer of that size: StarPU keeps one per worker,
 * allocated once, so two streams never share one. matmul_forward_cuda and matmul_backward_cuda
 * are the *_ws_cuda launchers without a workspace, for callers that have none. */
#define MATMUL_CUDA_WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLAS's own default on Hopper */
void matmul_forward_cuda(cublasHandle_t handle, void *out, const void *inp, const void *weight,
                         const void *bias, int N, int C, int OC, int ldo, enum dtype dt,
                         cudaStream_t stream);
void matmul_forward_ws_cuda(cublasHandle_t handle, void *out, const void *inp, const void *weight,
                            const void *bias, int N, int C, int OC, int ldo, enum dtype dt,
                            void *workspace, size_t workspace_bytes, cudaStream_t stream);
/* Also the scratch of matmul_backward_ws_cuda: dbias is the epilogue's fp32 sum (BGRADB) added
 * to dbias, or the column sum where cuBLASLt has no such algorithm. */
size_t matmul_backward_cuda_scratch_bytes(int N, int OC);
void matmul_backward_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt, void *dweight,
                          void *dbias, const void *dout, const void *inp, const void *weight, int N,
                          int C, int OC, int ldo, enum dtype dt, unsigned set, void *scratch,
                          cudaStream_t stream);
void matmul_backward_ws_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt, void *dweight,
                             void *dbias, const void *dout, const void *inp, const void *weight,
                             int N, int C, int OC, int ldo, enum dtype dt, unsigned set,
                             void *scratch, void *workspace, size_t workspace_bytes,
                             cudaStream_t stream);

/* The products cached so far (all devices), and how many of them cuBLASLt had no algorithm for,
 * whose launchers took their unfused path: for logs and tests. */
void matmul_cuda_cache_stats(int *problems, int *unfused);

/* The MLP's first layer and its activation in one product (cuBLASLt's GELU epilogue, the same
 * tanh approximation as gelu_forward_cpu):
 *     pre[N,OC] = inp . weight^T + bias,  out[N,OC] = gelu(pre)
 * both with rows ldo apart (a tile of output channels writes its columns in place). pre may be
 * NULL when the backward will recompute it (activation checkpointing's first forward): the
 * product then writes out alone. gelu is taken of the fp32 pre-activation, before it is rounded,
 * so out can differ from gelu_forward_cpu(pre) by one rounding. Same result as
 * matmul_forward_cpu then gelu_forward_cpu within that; unfused path where cuBLASLt lacks it. */
void matmul_forward_gelu_cuda(cublasHandle_t handle, void *out, void *pre, const void *inp,
                              const void *weight, const void *bias, int N, int C, int OC, int ldo,
                              enum dtype dt, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream);
/* The backward of the MLP's second layer through the first's activation, for a whole (untiled)
 * layer; inp[N,C] is the activation gelu(pre), weight[OC,C], dout[N,OC]:
 *     dpre[N,C]     = gelu'(pre) * (dout . weight)        OVERWRITES (no dinp accumulator)
 *     dweight[OC,C] += dout^T . inp (set MATMUL_SET_DWEIGHT: =),  dbias[OC] += column sums of
 *                      dout  (dbias may be NULL)
 *     dbias_pre[C]  += column sums of dpre: the first layer's bias gradient (may be NULL)
 * i.e. matmul_backward_cpu into a zeroed dinp, then gelu_backward_cpu into a zeroed dpre, and the
 * first layer's dbias, which its own backward then skips (dbias NULL). */
size_t matmul_backward_dgelu_cuda_scratch_bytes(int N, int C, int OC);
void matmul_backward_dgelu_cuda(cublasHandle_t handle, void *dpre, void *dweight, void *dbias,
                                void *dbias_pre, const void *dout, const void *inp,
                                const void *weight, const void *pre, int N, int C, int OC,
                                enum dtype dt, unsigned set, void *scratch, void *workspace,
                                size_t workspace_bytes, cudaStream_t stream);

/* Attention on flash_attention_*_cpu's contract (out and stats[B,NH,T,2] fp32, no T x T buffer
 * between forward and backward), two ways. Flash (flash_attention.cu): fused kernels, fp16 and
 * bf16, head size (C/NH) 64 or 128, compute capability 8.0 or newer on the current device:
 * flash_attention_cuda_supported says 1 when they take the case, and the launchers stop with a
 * message on anything else. cuBLAS (attention.cu): any dtype and head size, a chunk of heads'
 * T x T scores at a time in scratch (the backward recomputes them); the path for the rest. */
int flash_attention_cuda_supported(int C, int NH, enum dtype dt);
void flash_attention_forward_cuda(void *out, float *stats, const void *qkv, int B, int T, int C,
                                  int NH, enum dtype dt, cudaStream_t stream);
/* 2 * B*NH*T fp32 (rounded up to 256 bytes each): rowsum(dout * out) and the log-sum-exp. The
 * backward adds to dqkv (`add` 1) or writes it, the bits of the sum into zeros, without reading
 * it (`add` 0: no zero fill before). */
size_t flash_attention_backward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt);
void flash_attention_backward_cuda(void *dqkv, const void *dout, const void *qkv, const void *out,
                                   const float *stats, int B, int T, int C, int NH, enum dtype dt,
                                   int add, void *scratch, cudaStream_t stream);
size_t attention_forward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt);
void attention_forward_cuda(cublasHandle_t handle, void *out, float *stats, const void *qkv, int B,
                            int T, int C, int NH, enum dtype dt, void *scratch,
                            cudaStream_t stream);
size_t attention_backward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt);
void attention_backward_cuda(cublasHandle_t handle, void *dqkv, const void *dout, const void *qkv,
                             const float *stats, int B, int T, int C, int NH, enum dtype dt,
                             void *scratch, cudaStream_t stream);

void gelu_forward_cuda(void *out, const void *inp, size_t n, enum dtype dt, cudaStream_t stream);
void gelu_backward_cuda(void *dinp, const void *inp, const void *dout, size_t n, enum dtype dt,
                        cudaStream_t stream);

void add_forward_cuda(void *out, const void *a, const void *b, size_t n, enum dtype dt,
                      cudaStream_t stream);

void crossentropy_forward_cuda(float *losses, const void *logits, const int32_t *targets, int N,
                               int V, int Vp, enum dtype dt, cudaStream_t stream);
void crossentropy_backward_cuda(void *dlogits, const void *logits, const int32_t *targets,
                                float dloss, int N, int V, int Vp, enum dtype dt,
                                cudaStream_t stream);

size_t sumsq_cuda_scratch_bytes(size_t n);
/* ... and of sumsq_multi_cuda over n[0..ntensors). */
size_t sumsq_multi_cuda_scratch_bytes(const size_t *n, int ntensors);
/* out[0] = in[0] + ... + in[n-1] in double, in index order, one thread: sum_cpu's bits. */
void sum_cuda(float *out, const float *in, size_t n, cudaStream_t stream);
void sumsq_cuda(float *out, const void *grad, size_t n, enum dtype dt, void *scratch,
                cudaStream_t stream);
/* sumsq_cuda of grads[i] (n[i] elements, all of type dt) into out[i], i < ntensors <=
 * SUMSQ_MULTI_MAX, in two launches in all: each out[i] gets the bits sumsq_cuda gives it. */
void sumsq_multi_cuda(float *out, const void *const *grads, const size_t *n, int ntensors,
                      enum dtype dt, void *scratch, cudaStream_t stream);

/* hp is passed by value into the kernel; sumsq is a device pointer. */
void adamw_cuda(void *param, float *master, float *m, float *v, const void *grad,
                const float *sumsq, size_t n, const struct adamw_hparams *hp, enum dtype dt,
                cudaStream_t stream);

/* One tensor of a multi-tensor AdamW step (device pointers; param NULL: the master is the
 * parameter, as in adamw_cuda). weight_decay is this tensor's (0 for biases and LayerNorm
 * parameters), in place of hp->weight_decay. */
struct adamw_tensor {
    void *param;
    float *master, *m, *v;
    const void *grad;
    size_t n;
    float weight_decay;
};
/* adamw_cuda on each of tensors[0..ntensors) (a host array, read before returning), all of type
 * dt and sharing hp (its weight_decay unused) and sumsq, in a few launches of up to 64 tensors
 * each instead of one per tensor; each tensor gets adamw_cuda's bits. */
void adamw_multi_cuda(const struct adamw_tensor *tensors, int ntensors, const float *sumsq,
                      const struct adamw_hparams *hp, enum dtype dt, cudaStream_t stream);

void cast_cuda(void *dst, enum dtype dst_dt, const void *src, enum dtype src_dt, size_t n,
               cudaStream_t stream);
/* dst[0 .. bytes) = 0. */
void zero_cuda(void *dst, size_t bytes, cudaStream_t stream);

/* 1 when device `device` can run this build's kernels (SASS for it, or PTX its driver JITs), 0
 * when not. Leaves the current device as it was. */
int cuda_has_code(int device);

#ifdef __cplusplus
}
#endif

#endif
