/* matmul.cu: the CUDA linear layer out[N,OC] = inp[N,C] . weight[OC,C]^T + bias[OC], its backward,
 * and the MLP's fused variants (bias and GELU in the forward product's epilogue, GELU's derivative
 * and both bias gradients in the backward's), on cuBLASLt with fp32 accumulation (no TF32: fp32
 * runs stay full fp32).
 *
 * Every product goes through lt_matmul.cuh: descriptors on the stack, the algorithm chosen once
 * per problem and cached, the alignments it assumes those of the actual pointers (tensors can be
 * carved from larger buffers and a tile's output starts at a column offset). out/dout rows are ldo
 * apart, so a tile of output channels reads and writes its columns of the whole layer's matrix in
 * place. The epilogue adds the bias in fp32 before the one rounding to the storage type, as the
 * CPU reference does. The backward GEMMs accumulate with beta = 1, or write with beta = 0 where
 * the caller's `set` bits say so (the heuristic sees no beta, so both get the same algorithm and
 * the same bits as adding to zeros).
 *
 * Bias gradients: cuBLASLt writes them (no beta), and ours accumulate, so the epilogue writes the
 * fp32 column sums into `scratch` and colsum_finish_kernel adds them to dbias, rounding once: the
 * bits of the column-sum path up to summation order. cuBLASLt 13.1 on an H100 offers an fp32 bias
 * gradient only with fp32 outputs, so fp16/bf16 layers take the column sum (a 16-bit gradient
 * vector would add a rounding, and was not tried). When cuBLASLt has no algorithm for a fused
 * epilogue (a type it lacks, a GELU buffer whose leading dimension is not a multiple of 8), the
 * launchers take the unfused path: plain product, then the map kernels of gelu.cuh and the
 * deterministic column sum of common.cuh; same contract, same scratch.
 *
 * Workspace: the caller's, passed per call (the codelet's STARPU_SCRATCH buffer of
 * MATMUL_CUDA_WORKSPACE_BYTES, one per worker, so streams never share it); NULL runs the
 * algorithms that need none. The launchers never allocate. */
#include "common.cuh"
#include "gelu.cuh"
#include "lt_matmul.cuh"

/* out[N,OC] (rows ldo apart) = inp[N,C] . weight[OC,C]^T, no epilogue yet */
static struct lt_matmul forward_product(void *out, const void *inp, const void *weight, int N,
                                        int C, int OC, int ldo, cudaDataType_t ty)
{
    struct lt_matmul g = {};
    g.transB = true;
    g.M = N;
    g.N = OC;
    g.K = C;
    g.A = inp;
    g.lda = C;
    g.B = weight;
    g.ldb = C;
    g.D = out;
    g.ldd = ldo;
    g.ab = g.d = ty;
    g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    return g;
}

static void run_or_fail(cublasHandle_t handle, const struct lt_matmul *g, void *ws, size_t wsb,
                        cudaStream_t stream)
{
    CHECK_MSG(lt_matmul_run((cublasLtHandle_t)handle, g, ws, wsb, stream),
              "cuBLASLt has no algorithm for this matmul (shape, dtype or alignment)");
}

extern "C" void matmul_forward_ws_cuda(cublasHandle_t handle, void *out, const void *inp,
                                       const void *weight, const void *bias, int N, int C, int OC,
                                       int ldo, enum dtype dt, void *workspace,
                                       size_t workspace_bytes, cudaStream_t stream)
{
    if (N == 0 || OC == 0) return;
    CHECK_MSG(C > 0 && ldo >= OC, "matmul_forward_cuda needs C > 0 and ldo >= OC");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        struct lt_matmul g = forward_product(out, inp, weight, N, C, OC, ldo, cuda_type<S>());
        if (bias) {
            g.epilogue = CUBLASLT_EPILOGUE_BIAS;
            g.bias = (void *)bias;
            g.bias_type = cuda_type<S>();
        }
        run_or_fail(handle, &g, workspace, workspace_bytes, stream);
    });
}

extern "C" void matmul_forward_cuda(cublasHandle_t handle, void *out, const void *inp,
                                    const void *weight, const void *bias, int N, int C, int OC,
                                    int ldo, enum dtype dt, cudaStream_t stream)
{
    matmul_forward_ws_cuda(handle, out, inp, weight, bias, N, C, OC, ldo, dt, NULL, 0, stream);
}

extern "C" void matmul_forward_gelu_cuda(cublasHandle_t handle, void *out, void *pre,
                                         const void *inp, const void *weight, const void *bias,
                                         int N, int C, int OC, int ldo, enum dtype dt,
                                         void *workspace, size_t workspace_bytes,
                                         cudaStream_t stream)
{
    if (N == 0 || OC == 0) return;
    CHECK_MSG(C > 0 && ldo >= OC, "matmul_forward_gelu_cuda needs C > 0 and ldo >= OC");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        const cudaDataType_t ty = cuda_type<S>();
        struct lt_matmul g = forward_product(out, inp, weight, N, C, OC, ldo, ty);
        g.epilogue = pre ? (bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                         : (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU);
        g.bias = (void *)bias;
        g.bias_type = ty;
        g.aux = pre;
        g.ldaux = ldo;
        if (lt_matmul_run((cublasLtHandle_t)handle, &g, workspace, workspace_bytes, stream)) return;
        /* unfused: the biased product into pre (or out), then GELU from there into out */
        S *x = (S *)(pre ? pre : out);
        matmul_forward_ws_cuda(handle, x, inp, weight, bias, N, C, OC, ldo, dt, workspace,
                               workspace_bytes, stream);
        map2d_launch<S>((S *)out, x, nullptr, nullptr, N, OC, ldo, gelu_forward_op{}, stream);
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

/* dbias[n] += scratch[n]: the epilogue's fp32 bias gradient, rounded once (one chunk) */
template <typename S>
static void bias_accumulate(S *dbias, const void *scratch, int n, cudaStream_t stream)
{
    colsum_finish_kernel<S, 1>
        <<<ceil_div(n, 256), 256, 0, stream>>>(dbias, (S *)nullptr, (const float *)scratch, 1, n);
    CUDA_LAUNCH_CHECK();
}

/* dweight[OC,C] += dout^T . inp[N,C] (= with set MATMUL_SET_DWEIGHT) and, with dbias,
 * dbias[OC] += column sums of dout: the epilogue BGRADB where cuBLASLt has it, else the column
 * sum. */
template <typename S>
static void dweight_product(cublasHandle_t handle, S *dweight, S *dbias, const S *dout,
                            const S *inp, int N, int C, int OC, int ldo, unsigned set,
                            void *scratch, void *workspace, size_t workspace_bytes,
                            cudaStream_t stream)
{
    struct lt_matmul g = {};
    g.transA = true;
    g.M = OC;
    g.N = C;
    g.K = N;
    g.A = dout;
    g.lda = ldo;
    g.B = inp;
    g.ldb = C;
    g.D = dweight;
    g.ldd = C;
    g.beta = set & MATMUL_SET_DWEIGHT ? 0.0f : 1.0f;
    g.ab = g.d = cuda_type<S>();
    g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    if (dbias) {
        CHECK_MSG(scratch != NULL, "matmul backward with dbias needs its scratch buffer");
        struct lt_matmul gb = g;
        gb.epilogue = CUBLASLT_EPILOGUE_BGRADB;
        gb.bias = scratch;
        gb.bias_type = CUDA_R_32F;
        if (lt_matmul_run((cublasLtHandle_t)handle, &gb, workspace, workspace_bytes, stream)) {
            bias_accumulate<S>(dbias, scratch, OC, stream);
            return;
        }
    }
    run_or_fail(handle, &g, workspace, workspace_bytes, stream);
    if (dbias)
        colsum_launch<S, 1>(dbias, (S *)nullptr, N, OC, matmul_bias_rows<S>{dout, ldo}, scratch,
                            stream);
}

extern "C" void matmul_backward_ws_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt,
                                        void *dweight, void *dbias, const void *dout,
                                        const void *inp, const void *weight, int N, int C, int OC,
                                        int ldo, enum dtype dt, unsigned set, void *scratch,
                                        void *workspace, size_t workspace_bytes,
                                        cudaStream_t stream)
{
    if (N == 0 || C == 0 || OC == 0) return;
    CHECK_MSG(ldo >= OC, "matmul_backward_cuda needs ldo >= OC");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        if (dinp) {
            /* dinp[N,C] += dout[N,OC] . weight[OC,C] (= with MATMUL_SET_DINP), dinp in dt or fp32
             * (a tiled layer's sum) */
            struct lt_matmul g = {};
            g.M = N;
            g.N = C;
            g.K = OC;
            g.A = dout;
            g.lda = ldo;
            g.B = weight;
            g.ldb = C;
            g.D = dinp;
            g.ldd = C;
            g.beta = set & MATMUL_SET_DINP ? 0.0f : 1.0f;
            g.ab = cuda_type<S>();
            g.d = dinp_dt == DTYPE_FP32 ? CUDA_R_32F : cuda_type<S>();
            g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
            run_or_fail(handle, &g, workspace, workspace_bytes, stream);
        }
        dweight_product<S>(handle, (S *)dweight, (S *)dbias, (const S *)dout, (const S *)inp, N, C,
                           OC, ldo, set, scratch, workspace, workspace_bytes, stream);
    });
}

extern "C" void matmul_backward_cuda(cublasHandle_t handle, void *dinp, enum dtype dinp_dt,
                                     void *dweight, void *dbias, const void *dout, const void *inp,
                                     const void *weight, int N, int C, int OC, int ldo,
                                     enum dtype dt, unsigned set, void *scratch,
                                     cudaStream_t stream)
{
    matmul_backward_ws_cuda(handle, dinp, dinp_dt, dweight, dbias, dout, inp, weight, N, C, OC, ldo,
                            dt, set, scratch, NULL, 0, stream);
}

extern "C" void matmul_backward_dgelu_cuda(cublasHandle_t handle, void *dpre, void *dweight,
                                           void *dbias, void *dbias_pre, const void *dout,
                                           const void *inp, const void *weight, const void *pre,
                                           int N, int C, int OC, enum dtype dt, unsigned set,
                                           void *scratch, void *workspace, size_t workspace_bytes,
                                           cudaStream_t stream)
{
    if (N == 0 || C == 0 || OC == 0) return;
    CHECK_MSG(!dbias_pre || scratch, "matmul_backward_dgelu_cuda with dbias_pre needs scratch");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        /* dpre[N,C] = gelu'(pre) * (dout[N,OC] . weight[OC,C]); overwrites. Three ways, the
         * first that cuBLASLt has: DGELU_BGRAD (dbias_pre from the epilogue, in fp32), DGELU and
         * the column sum of dpre, the plain product then gelu' and the column sum. */
        struct lt_matmul g = {};
        g.M = N;
        g.N = C;
        g.K = OC;
        g.A = dout;
        g.lda = OC;
        g.B = weight;
        g.ldb = C;
        g.D = dpre;
        g.ldd = C;
        g.ab = g.d = cuda_type<S>();
        g.epilogue = CUBLASLT_EPILOGUE_DGELU;
        g.aux = (void *)pre;
        g.ldaux = C;
        cublasLtHandle_t lt = (cublasLtHandle_t)handle;
        bool fused = false, bias_done = !dbias_pre;
        if (dbias_pre) {
            struct lt_matmul gb = g;
            gb.epilogue = CUBLASLT_EPILOGUE_DGELU_BGRAD;
            gb.bias = scratch;
            gb.bias_type = CUDA_R_32F;
            fused = bias_done = lt_matmul_run(lt, &gb, workspace, workspace_bytes, stream);
            if (fused) bias_accumulate<S>((S *)dbias_pre, scratch, C, stream);
        }
        if (!fused) fused = lt_matmul_run(lt, &g, workspace, workspace_bytes, stream);
        if (!fused) {
            g.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
            g.aux = NULL;
            run_or_fail(handle, &g, workspace, workspace_bytes, stream);
            /* dpre = gelu'(pre) * dpre: the backward op with nothing to accumulate onto */
            map_launch<S>((S *)dpre, nullptr, (const S *)pre, (const S *)dpre, (size_t)N * C,
                          gelu_backward_op{}, stream);
        }
        if (!bias_done)
            colsum_launch<S, 1>((S *)dbias_pre, (S *)nullptr, N, C,
                                matmul_bias_rows<S>{(const S *)dpre, C}, scratch, stream);
        dweight_product<S>(handle, (S *)dweight, (S *)dbias, (const S *)dout, (const S *)inp, N, C,
                           OC, OC, set, scratch, workspace, workspace_bytes, stream);
    });
}
