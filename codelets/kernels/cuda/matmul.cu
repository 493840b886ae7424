/* matmul.cu: the CUDA linear layer out[N,OC] = inp[N,C] . weight[OC,C]^T + bias[OC] and its
 * backward, on cuBLAS with fp32 accumulation (no TF32: fp32 runs stay full fp32).
 *
 * The forward goes through cuBLASLt so that the bias is added by the GEMM's epilogue in fp32,
 * before the one rounding to the storage type, as the CPU reference does. The cuBLAS handle is a
 * valid cuBLASLt handle (cuBLAS documents the cast); cuBLASLt takes the stream per call. No
 * workspace is given (launchers never allocate), and the alignments the heuristic may assume are
 * those of the actual pointers, since tensors can be carved from larger buffers and a tile's
 * output starts at a column offset (a bias or operands only 2-byte aligned gave the same bits as
 * aligned ones on an H100). out/dout rows are ldo apart, so a tile of output channels reads and
 * writes its columns of the whole layer's matrix in place. The backward GEMMs accumulate with
 * beta = 1; dbias is the deterministic column sum of common.cuh. */
#include <cublasLt.h>

#include "common.cuh"

template <typename S>
static void matmul_forward_typed(cublasLtHandle_t lt, S *out, const S *inp, const S *weight,
                                 const S *bias, int N, int C, int OC, int ldo, cudaStream_t stream)
{
    const cudaDataType_t ty = cuda_type<S>();
    cublasLtMatmulDesc_t op;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                    sizeof bias));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ty,
                                                    sizeof ty));
    }
    /* column-major view: out^T[OC,N] = (W^T)^T[OC,C] . inp^T[C,N] */
    cublasLtMatrixLayout_t la, lb, ld;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, ty, C, OC, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, ty, C, N, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, ty, OC, N, ldo));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = 0;
    uint32_t al_a = ptr_alignment(weight), al_b = ptr_alignment(inp), al_d = ptr_alignment(out);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    /* split-K partials, if any, in fp32: never rounded to a 16-bit output type */
    uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof schemes));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));

    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &heur, &found));
    CHECK_MSG(found > 0, "cuBLASLt has no algorithm for this matmul (shape, dtype or alignment)");
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(lt, op, &alpha, weight, la, inp, lb, &beta, out, ld, out, ld,
                                &heur.algo, NULL, 0, stream));

    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(ld));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(op));
}

extern "C" void matmul_forward_cuda(cublasHandle_t handle, void *out, const void *inp,
                                    const void *weight, const void *bias, int N, int C, int OC,
                                    int ldo, enum dtype dt, cudaStream_t stream)
{
    if (N == 0 || OC == 0) return;
    CHECK_MSG(C > 0 && ldo >= OC, "matmul_forward_cuda needs C > 0 and ldo >= OC");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        matmul_forward_typed<S>((cublasLtHandle_t)handle, (S *)out, (const S *)inp,
                                (const S *)weight, (const S *)bias, N, C, OC, ldo, stream);
    });
}

/* Row r's contribution at column c of the dbias sum. */
template <typename S> struct matmul_bias_rows {
    const S *dout;
    int ldo;
    __device__ void operator()(int r, int c, float *v) const
    {
        v[0] += to_f(dout[(size_t)r * ldo + c]);
    }
};

extern "C" size_t matmul_backward_cuda_scratch_bytes(int N, int OC)
{
    return colsum_scratch_bytes(N, OC, 1);
}

extern "C" void matmul_backward_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt,
                                     void *dweight, void *dbias, const void *dout, const void *inp,
                                     const void *weight, int N, int C, int OC, int ldo,
                                     enum dtype dt, void *scratch, cudaStream_t stream)
{
    if (N == 0 || C == 0 || OC == 0) return;
    CHECK_MSG(ldo >= OC, "matmul_backward_cuda needs ldo >= OC");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        const cudaDataType_t ty = cuda_type<S>();
        /* dinp[N,C] += dout[N,OC] . weight[OC,C], dinp in dt or fp32 (a tiled layer's sum) */
        if (dinp)
            gemm_rm(handle, false, false, N, C, OC, 1.0f, dout, ldo, 0, weight, C, 0, 1.0f, dinp, C,
                    0, 1, ty, dinp_dt == DTYPE_FP32 ? CUDA_R_32F : ty);
        /* dweight[OC,C] += dout^T . inp[N,C] */
        gemm_rm(handle, true, false, OC, C, N, 1.0f, dout, ldo, 0, inp, C, 0, 1.0f, dweight, C, 0,
                1, ty, ty);
        if (dbias)
            colsum_launch<S, 1>((S *)dbias, (S *)nullptr, N, OC,
                                matmul_bias_rows<S>{(const S *)dout, ldo}, scratch, stream);
    });
}
