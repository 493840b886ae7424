/* common.cuh: what every CUDA kernel file shares: error checks (cuda_check.h's and the launch
 * check), the dtype dispatch, fp32
 * load/store of the storage types, warp reductions, the deterministic column sum and a row-major
 * wrapper of cuBLAS's strided batched GEMM.
 *
 * Kernels are templates on the storage type S (float, __half or __nv_bfloat16) and compute in
 * fp32: they widen with to_f() and round once with from_f<S>() (round to nearest even, fp16
 * overflow to inf, like dtype.c). A launcher switches on `enum dtype` once, through
 * dtype_dispatch(), and never synchronizes: errors are caught by cudaGetLastError after each
 * launch and by the caller's next synchronization. Nothing here uses atomics: every reduction
 * runs in an order fixed by the sizes alone, so launches are deterministic. */
#ifndef GPT50B_CUDA_COMMON_CUH
#define GPT50B_CUDA_COMMON_CUH

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "check.h"
#include "cuda_check.h"
#include "cuda_scratch.h"
#include "kernels_cuda.h"

/* After every kernel launch: a bad configuration shows up here, not at the next sync. */
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

__device__ __forceinline__ float to_f(float x)
{
    return x;
}
__device__ __forceinline__ float to_f(__half x)
{
    return __half2float(x);
}
__device__ __forceinline__ float to_f(__nv_bfloat16 x)
{
    return __bfloat162float(x);
}

template <typename S> __device__ __forceinline__ S from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x)
{
    return x;
}
template <> __device__ __forceinline__ __half from_f<__half>(float x)
{
    return __float2half_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}

template <typename S> constexpr cudaDataType_t cuda_type();
template <> constexpr cudaDataType_t cuda_type<float>()
{
    return CUDA_R_32F;
}
template <> constexpr cudaDataType_t cuda_type<__half>()
{
    return CUDA_R_16F;
}
template <> constexpr cudaDataType_t cuda_type<__nv_bfloat16>()
{
    return CUDA_R_16BF;
}

template <typename S> struct dtype_tag {
    using type = S;
};

/* Calls f(dtype_tag<S>{}) with S the storage type of dt; f is a generic lambda. */
template <typename F> static inline void dtype_dispatch(enum dtype dt, F &&f)
{
    switch (dt) {
    case DTYPE_FP32:
        f(dtype_tag<float>{});
        return;
    case DTYPE_FP16:
        f(dtype_tag<__half>{});
        return;
    case DTYPE_BF16:
        f(dtype_tag<__nv_bfloat16>{});
        return;
    }
    CHECK_MSG(0, "unknown dtype");
}

static inline unsigned ceil_div(size_t a, size_t b)
{
    return (unsigned)((a + b - 1) / b);
}

/* Grid of a grid-stride loop over n items: enough blocks to fill an H100 several times over, few
 * enough that each thread does some work. */
static inline unsigned grid_stride_blocks(size_t n, int threads)
{
    size_t blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks < 1 ? 1 : blocks > 2048 ? 2048 : blocks);
}

/* Largest power of two (at most 256) dividing the address: what cuBLASLt may assume of it. */
static inline unsigned ptr_alignment(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned al = 1;
    while (al < 256 && a % (2 * al) == 0)
        al *= 2;
    return al;
}

/* P storage elements loaded or stored as one access; P * sizeof(S) == 16 is the vector width of
 * the memory-bound elementwise kernels. */
template <typename S, int P> struct alignas(P * sizeof(S)) Vec {
    S v[P];
};
template <typename S> constexpr int vec16()
{
    return 16 / (int)sizeof(S);
}

static inline bool aligned16(const void *p)
{
    return (uintptr_t)p % 16 == 0;
}

__device__ __forceinline__ float warp_sum(float x)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ __forceinline__ double warp_sum(double x)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Merges two (max, sum of exp(x - max)) softmax partials; a partial with max -inf is empty. */
__device__ __forceinline__ void softmax_merge(float &m, float &s, float m2, float s2)
{
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        s = s2;
        return;
    }
    float mx = fmaxf(m, m2);
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

/* Adds x to the running (max, sum) of one thread: the online softmax of Milakov & Gimelshein. */
__device__ __forceinline__ void softmax_push(float &m, float &s, float x)
{
    if (x > m) {
        s = s * expf(m - x) + 1.0f;
        m = x;
    } else {
        s += expf(x - m);
    }
}

__device__ __forceinline__ void warp_softmax_merge(float &m, float &s)
{
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        softmax_merge(m, s, m2, s2);
    }
}

/* Deterministic column sums of an [N, C] matrix (matmul dbias, layernorm dweight and dbias).
 * The rows are cut into colsum_chunks(N) chunks; colsum_partial_kernel writes one fp32 partial
 * per (value, chunk, column) into scratch, each summed in row order, and colsum_finish_kernel
 * adds the chunks in chunk order to the outputs, rounding once. The chunking depends on N only,
 * so the bits do not depend on the device or the launch. */
#define COLSUM_COLS  32 /* columns of one block: a warp reads 32 consecutive elements */
#define COLSUM_LANES 8  /* warps of one block, each taking every 8th row of the chunk */

/* Rows is a functor: rows(r, c, v) adds row r's contribution at column c to v[0..NV). */
template <int NV, typename Rows>
__global__ void __launch_bounds__(COLSUM_COLS *COLSUM_LANES)
    colsum_partial_kernel(float *partial, int N, int C, int chunk_rows, Rows rows)
{
    __shared__ float sh[NV][COLSUM_LANES][COLSUM_COLS];
    int c = blockIdx.x * COLSUM_COLS + threadIdx.x;
    int chunk = blockIdx.y;
    int r0 = chunk * chunk_rows;
    int r1 = min(N, r0 + chunk_rows);
    float v[NV] = {};
    if (c < C)
        for (int r = r0 + threadIdx.y; r < r1; r += COLSUM_LANES)
            rows(r, c, v);
    for (int k = 0; k < NV; k++)
        sh[k][threadIdx.y][threadIdx.x] = v[k];
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int k = 0; k < NV; k++) {
            float s = 0.0f;
            for (int l = 0; l < COLSUM_LANES; l++)
                s += sh[k][l][threadIdx.x];
            partial[((size_t)k * gridDim.y + chunk) * C + c] = s;
        }
    }
}

/* out_k[c] += sum over chunks of partial[k][chunk][c], for k < NV (out1 unused when NV == 1). */
template <typename S, int NV>
__global__ void colsum_finish_kernel(S *out0, S *out1, const float *partial, int nchunks, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int k = 0; k < NV; k++) {
        float s = 0.0f;
        for (int j = 0; j < nchunks; j++)
            s += partial[((size_t)k * nchunks + j) * C + c];
        S *out = k == 0 ? out0 : out1;
        out[c] = from_f<S>(to_f(out[c]) + s);
    }
}

/* Launches both stages of a column sum over the N rows of an [N, C] matrix. */
template <typename S, int NV, typename Rows>
static void colsum_launch(S *out0, S *out1, int N, int C, Rows rows, void *scratch,
                          cudaStream_t stream)
{
    CHECK_MSG(scratch != NULL, "column sum needs the scratch buffer of *_scratch_bytes()");
    int nchunks = colsum_chunks(N);
    int chunk_rows = (N + nchunks - 1) / nchunks;
    dim3 grid(ceil_div(C, COLSUM_COLS), nchunks);
    dim3 block(COLSUM_COLS, COLSUM_LANES);
    colsum_partial_kernel<NV><<<grid, block, 0, stream>>>((float *)scratch, N, C, chunk_rows, rows);
    CUDA_LAUNCH_CHECK();
    colsum_finish_kernel<S, NV>
        <<<ceil_div(C, 256), 256, 0, stream>>>(out0, out1, (const float *)scratch, nchunks, C);
    CUDA_LAUNCH_CHECK();
}

/* out[i] = op(a[i], b[i], c[i]) over n elements, op taking and returning fp32; unused inputs are
 * NULL. out may alias an input: a thread reads its elements before it writes them. VEC moves 16
 * bytes per access (every pointer 16-byte aligned); the n % P tail goes element by element. */
template <typename S, bool VEC, typename Op>
__global__ void map_kernel(S *out, const S *a, const S *b, const S *c, size_t n, Op op)
{
    constexpr int P = VEC ? vec16<S>() : 1;
    using V = Vec<S, P>;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t nvec = n / P;
    for (size_t i = first; i < nvec; i += stride) {
        V va, vb, vc, vo;
        if (a) va = ((const V *)a)[i];
        if (b) vb = ((const V *)b)[i];
        if (c) vc = ((const V *)c)[i];
        for (int k = 0; k < P; k++)
            vo.v[k] = from_f<S>(
                op(a ? to_f(va.v[k]) : 0.0f, b ? to_f(vb.v[k]) : 0.0f, c ? to_f(vc.v[k]) : 0.0f));
        ((V *)out)[i] = vo;
    }
    for (size_t i = nvec * P + first; i < n; i += stride)
        out[i] = from_f<S>(op(a ? to_f(a[i]) : 0.0f, b ? to_f(b[i]) : 0.0f, c ? to_f(c[i]) : 0.0f));
}

template <typename S, typename Op>
static void map_launch(S *out, const S *a, const S *b, const S *c, size_t n, Op op,
                       cudaStream_t stream)
{
    if (n == 0) return;
    const int threads = 256;
    bool vec =
        aligned16(out) && (!a || aligned16(a)) && (!b || aligned16(b)) && (!c || aligned16(c));
    if (vec)
        map_kernel<S, true><<<grid_stride_blocks(n / vec16<S>(), threads), threads, 0, stream>>>(
            out, a, b, c, n, op);
    else
        map_kernel<S, false>
            <<<grid_stride_blocks(n, threads), threads, 0, stream>>>(out, a, b, c, n, op);
    CUDA_LAUNCH_CHECK();
}

/* map_launch over the [rows, cols] block of matrices whose rows are ld >= cols elements apart (a
 * tile of output channels inside a wider layer); one contiguous map when ld == cols. */
template <typename S, typename Op>
__global__ void map2d_kernel(S *out, const S *a, const S *b, const S *c, int rows, int cols, int ld,
                             Op op)
{
    size_t n = (size_t)rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t j = i / cols * ld + i % cols;
        out[j] = from_f<S>(op(a ? to_f(a[j]) : 0.0f, b ? to_f(b[j]) : 0.0f, c ? to_f(c[j]) : 0.0f));
    }
}

template <typename S, typename Op>
static void map2d_launch(S *out, const S *a, const S *b, const S *c, int rows, int cols, int ld,
                         Op op, cudaStream_t stream)
{
    if (ld == cols) {
        map_launch<S>(out, a, b, c, (size_t)rows * cols, op, stream);
        return;
    }
    if (rows == 0 || cols == 0) return;
    map2d_kernel<S><<<grid_stride_blocks((size_t)rows * cols, 256), 256, 0, stream>>>(
        out, a, b, c, rows, cols, ld, op);
    CUDA_LAUNCH_CHECK();
}

/* Row-major strided batched GEMM with fp32 accumulation and fp32 alpha/beta, for batch i:
 *   C_i[M,N] = alpha * op(A_i) . op(B_i) + beta * C_i
 * where op(A) is A[M,K] (lda) or, if transA, the transpose of A stored as [K,M]; likewise B.
 * A and B have type ab, C type c. cuBLAS is column-major, so it computes C^T = op(B)^T op(A)^T:
 * the operands swap and the transpose flags carry over unchanged. CUBLAS_COMPUTE_32F and the
 * default math mode keep fp32 operands in full fp32 (no TF32), so fp32 runs match the CPU
 * reference closely; the handle's math mode is set on every call for that reason. */
static inline void gemm_rm(cublasHandle_t handle, bool transA, bool transB, int M, int N, int K,
                           float alpha, const void *A, int lda, long long strideA, const void *B,
                           int ldb, long long strideB, float beta, void *C, int ldc,
                           long long strideC, int batch, cudaDataType_t ab, cudaDataType_t c)
{
    /* Reduced-precision split-K reductions would round partial sums to a 16-bit output type. */
    CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
        &alpha, B, ab, ldb, strideB, A, ab, lda, strideA, &beta, C, c, ldc, strideC, batch,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

#endif
