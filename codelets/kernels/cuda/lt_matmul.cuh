/* lt_matmul.cuh: one row-major cuBLASLt product with an optional epilogue, whose algorithm is
 * chosen once per problem and cached; the GEMM launchers of matmul.cu are built on it.
 *
 *     D[M,N] = op(A) . op(B) + beta * D, then the epilogue, fp32 accumulation (no TF32)
 *
 * in gemm_rm's convention (common.cuh): op(A) is A[M,K] (lda), or with transA the transpose of A
 * stored as [K,M]; likewise B; D is [M,N] with rows ldd apart and is also the C operand. The
 * epilogue's vectors in these row-major terms (cuBLASLt is column-major, so its rows are our
 * columns):
 *   BIAS, GELU_BIAS, GELU_AUX_BIAS   bias[N] added to each row before the activation
 *   GELU_AUX*                        aux[M,N] (rows ldaux apart, a multiple of 8) receives
 *                                    the GELU input
 *   DGELU, DGELU_BGRAD               D = gelu'(aux) * product; DGELU_BGRAD writes the column
 *                                    sums of that D into bias[N]
 *   BGRADB                           bias[M] = sums over k of op(A)'s rows: for dW = dout^T . x
 *                                    (transA), the column sums of dout, the layer's dbias
 * Bias gradients are written, never accumulated: cuBLASLt has no beta for them.
 *
 * The cache: the first call of a problem (device, shape, transposes, leading dimensions, types,
 * epilogue, beta zero or not, the alignment of every pointer, the workspace size) asks cuBLASLt's
 * heuristic for its best algorithm and keeps it, or keeps that there is none; later calls build
 * the descriptors on the stack (no allocation) and launch. The cache is process-wide and guarded
 * by a mutex, so StarPU's CUDA workers (one thread each) share it; an algorithm found on one
 * handle serves every handle of the same device. No per-call heuristic, no allocation, no
 * synchronization. */
#ifndef GPT50B_LT_MATMUL_CUH
#define GPT50B_LT_MATMUL_CUH

#include <cublasLt.h>

#include "common.cuh"

struct lt_matmul {
    bool transA, transB;
    int M, N, K;
    const void *A;
    int lda;
    const void *B;
    int ldb;
    void *D;
    int ldd;
    float beta;
    cudaDataType_t ab, d; /* type of A and B, of D (C is D) */
    cublasLtEpilogue_t epilogue;
    void *bias; /* bias or bias gradient (see above), NULL when the epilogue has none */
    cudaDataType_t bias_type;
    void *aux; /* GELU input, type d, NULL when the epilogue has none */
    int ldaux;
};

/* Launches the product on `stream` and returns true, or returns false having launched nothing
 * when cuBLASLt has no algorithm for it (an epilogue or type pair it lacks): the caller then
 * takes its unfused path. workspace may be NULL (workspace_bytes 0); it must stay untouched by
 * other streams until this product has run. The handle must not be in use on another thread. */
bool lt_matmul_run(cublasLtHandle_t lt, const struct lt_matmul *g, void *workspace,
                   size_t workspace_bytes, cudaStream_t stream);

#endif
