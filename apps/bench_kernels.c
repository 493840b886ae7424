/* bench_kernels: the kernel layer's GEMM, fused and multi-tensor launchers against what they
 * replace or wrap, on one GPU, with no runtime in between (the codelet path is bench_gemm's).
 *
 * 1. GEMM at 8192^3 and at the 1.3B model's linear layers (N = 4096 tokens, C = 2048: QKV,
 * attention projection, FC, FC projection, LM head), forward and backward, fp16 and bf16. Forward:
 * the kernel with the 32 MiB workspace and without (what the codelets call today), a direct
 *    cublasLtMatmul with descriptors and algorithm made once (same epilogue, same workspace), the
 *    previous kernel's way (descriptors and heuristic on every call, no workspace), and
 *    cublasGemmEx without bias (the reference). Backward: the kernel (dinp, dweight and
 *    dbias through the BGRADB epilogue) with and without workspace, without dbias, and two
 *    cublasGemmEx calls (dinp, dweight; no bias gradient). Host microseconds per call too.
 * 2. The MLP at the 1.3B shape: FC product + bias + GELU fused in the epilogue (with the
 *    pre-activation kept, and without) against the product then gelu_forward; its backward with
 *    DGELU_BGRAD and BGRADB against the layer backwards with gelu_backward between them (and the
 *    zeroing of dinp buffers that the graph does for the accumulate contract).
 * 3. Residual add + LayerNorm fused against add_forward then layernorm_forward, C 2048 and 8192.
 * 4. AdamW over the 1.3B model's 292 tensors (24 layers x 12 + 4), bf16 parameters: one
 *    adamw_cuda launch per tensor against adamw_multi_cuda.
 * Every input is random (zeros and constants run faster than real data); each call is timed alone
 * between CUDA events after `warmup` untimed ones and the median of `iters` is reported, so an
 * idle GPU waiting on host-side work (descriptors, heuristics) shows in the time; the variants
 * of one case take turns. Prints tables
 * and writes a JSON result file.
 *
 *     bench_kernels [--iters 20] [--warmup 3] [--out FILE.json] */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cuda.h"
#include "check.h"
#include "cuda_check.h"
#include "dtype.h"
#include "kernels_cuda.h"
#include "timer.h"

static const enum dtype DTYPES[] = {DTYPE_FP16, DTYPE_BF16};

static cudaStream_t stream;
static cublasHandle_t blas;
static void *workspace; /* MATMUL_CUDA_WORKSPACE_BYTES */
static int warmup = 3, iters = 20;
static FILE *json;
static int json_rows;

/* ---- buffers ---- */

/* n elements of dt uniform in [lo, hi): a host block of up to 4 Mi elements, repeated on the
 * device by doubling copies (a 21 GB optimizer state fills in a second). */
static void *dev_random(size_t n, enum dtype dt, float lo, float hi, uint64_t seed)
{
    size_t es = dtype_size(dt), blk = n < ((size_t)4 << 20) ? n : ((size_t)4 << 20);
    float *tmp = malloc((blk ? blk : 1) * sizeof(float));
    void *h = malloc((blk ? blk : 1) * es);
    CHECK(tmp && h);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < blk; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tmp[i] = lo + (hi - lo) * (float)((s >> 40) / (double)(1 << 24));
    }
    dtype_from_f32(dt, tmp, h, blk);
    char *d;
    CUDA_CHECK(cudaMalloc((void **)&d, (n ? n : 1) * es));
    CUDA_CHECK(cudaMemcpy(d, h, blk * es, cudaMemcpyHostToDevice));
    for (size_t done = blk; done < n;) {
        size_t c = done < n - done ? done : n - done;
        CUDA_CHECK(cudaMemcpy(d + done * es, d, c * es, cudaMemcpyDeviceToDevice));
        done += c;
    }
    free(tmp);
    free(h);
    return d;
}

static void *dev_alloc(size_t bytes)
{
    void *d;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    return d;
}

/* ---- timing ---- */

typedef void (*op_fn)(void *ctx);

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of each of ops[0..nops) on ctx, every call alone between two events. After
 * nwarm calls of each, n rounds call every op once, each round starting one op further on, so
 * that an effect of the order (clocks, power, caches) falls on every variant alike. Run one after
 * another on an H100, cublasGemmEx at 8192^3 gave 640 TFLOP/s as the fifth variant, and 758 in
 * bench_gemm in the same call; the cause was not isolated. */
static void time_set(const op_fn *ops, int nops, void *ctx, int nwarm, int n, double *med)
{
    cudaEvent_t e0, e1;
    float *ms = malloc((size_t)nops * n * sizeof(float));
    CHECK(ms != NULL);
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < nwarm; i++)
        for (int v = 0; v < nops; v++)
            ops[v](ctx);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nops; k++) {
            int v = (i + k) % nops;
            CUDA_CHECK(cudaEventRecord(e0, stream));
            ops[v](ctx);
            CUDA_CHECK(cudaEventRecord(e1, stream));
            CUDA_CHECK(cudaEventSynchronize(e1));
            CUDA_CHECK(cudaEventElapsedTime(&ms[(size_t)v * n + i], e0, e1));
        }
    CUDA_CHECK(cudaGetLastError());
    for (int v = 0; v < nops; v++) {
        float *m = ms + (size_t)v * n;
        qsort(m, n, sizeof(float), cmp_float);
        med[v] = n % 2 ? m[n / 2] : 0.5 * (m[n / 2 - 1] + m[n / 2]);
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    free(ms);
}

/* Host microseconds per call of f over n calls queued back to back (the GPU runs behind). */
static double host_us(op_fn f, void *ctx, int n)
{
    CUDA_CHECK(cudaStreamSynchronize(stream));
    double t0 = timer_now_s();
    for (int i = 0; i < n; i++)
        f(ctx);
    double t = timer_now_s() - t0;
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return t / n * 1e6;
}

static void json_row(const char *section, const char *name, enum dtype dt, const char *pass,
                     const char *variant, double ms, const char *rate_key, double rate)
{
    if (!json) return;
    fprintf(json,
            "%s\n  {\"section\": \"%s\", \"case\": \"%s\", \"dtype\": \"%s\", \"pass\": \"%s\", "
            "\"variant\": \"%s\", \"ms\": %.5f, \"%s\": %.2f}",
            json_rows++ ? "," : "", section, name, dtype_name(dt), pass, variant, ms, rate_key,
            rate);
}

/* ---- 1. GEMM ---- */

struct gemm {
    const char *name;
    int M, C, OC, bias; /* out[M,OC] = inp[M,C] . W[OC,C]^T (+ bias) */
    enum dtype dt;
    void *inp, *w, *b, *out, *dout, *dinp, *dw, *db, *scratch;
    /* the direct cuBLASLt call, made once */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

static cudaDataType_t cuda_type(enum dtype dt)
{
    return dt == DTYPE_FP16 ? CUDA_R_16F : dt == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* The forward as one cublasLtMatmul: descriptors, layouts and the heuristic's algorithm for the
 * workspace ws (the way the kernel did it on every call before the cache, with ws 0). */
static void direct_lt_create(struct gemm *g, size_t ws)
{
    cudaDataType_t ty = cuda_type(g->dt);
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->b,
                                                    sizeof g->b));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ty,
                                                    sizeof ty));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&g->la, ty, g->C, g->OC, g->C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&g->lb, ty, g->C, g->M, g->C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&g->ld, ty, g->OC, g->M, g->OC));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)blas, g->op, g->la, g->lb, g->ld,
                                                g->ld, pref, 1, &heur, &found));
    CHECK_MSG(found > 0, "cuBLASLt has no algorithm for the direct call");
    g->algo = heur.algo;
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
}

static void direct_lt_destroy(struct gemm *g)
{
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(g->la));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(g->lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(g->ld));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(g->op));
}

static void direct_lt_call(struct gemm *g, size_t ws)
{
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul((cublasLtHandle_t)blas, g->op, &alpha, g->w, g->la, g->inp, g->lb,
                                &beta, g->out, g->ld, g->out, g->ld, &g->algo,
                                ws ? workspace : NULL, ws, stream));
}

static void fwd_kernel_ws(void *ctx)
{
    struct gemm *g = ctx;
    matmul_forward_ws_cuda(blas, g->out, g->inp, g->w, g->bias ? g->b : NULL, g->M, g->C, g->OC,
                           g->OC, g->dt, workspace, MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

static void fwd_kernel(void *ctx)
{
    struct gemm *g = ctx;
    matmul_forward_cuda(blas, g->out, g->inp, g->w, g->bias ? g->b : NULL, g->M, g->C, g->OC, g->OC,
                        g->dt, stream);
}

static void fwd_direct_lt(void *ctx)
{
    direct_lt_call(ctx, MATMUL_CUDA_WORKSPACE_BYTES);
}

/* the kernel before the cache: everything made and destroyed around each call, no workspace */
static void fwd_per_call(void *ctx)
{
    struct gemm t = *(struct gemm *)ctx; /* its own descriptors: g's stay for fwd_direct_lt */
    direct_lt_create(&t, 0);
    direct_lt_call(&t, 0);
    direct_lt_destroy(&t);
}

static void fwd_gemmex(void *ctx)
{
    struct gemm *g = ctx;
    const float alpha = 1, beta = 0;
    cudaDataType_t ty = cuda_type(g->dt);
    CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, g->OC, g->M, g->C, &alpha, g->w, ty,
                              g->C, g->inp, ty, g->C, &beta, g->out, ty, g->OC, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
}

static void bwd_kernel_ws(void *ctx)
{
    struct gemm *g = ctx;
    matmul_backward_ws_cuda(blas, g->dinp, g->dt, g->dw, g->bias ? g->db : NULL, g->dout, g->inp,
                            g->w, g->M, g->C, g->OC, g->OC, g->dt, 0, g->scratch, workspace,
                            MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

static void bwd_kernel(void *ctx)
{
    struct gemm *g = ctx;
    matmul_backward_cuda(blas, g->dinp, g->dt, g->dw, g->bias ? g->db : NULL, g->dout, g->inp, g->w,
                         g->M, g->C, g->OC, g->OC, g->dt, 0, g->scratch, stream);
}

static void bwd_kernel_ws_nobias(void *ctx)
{
    struct gemm *g = ctx;
    matmul_backward_ws_cuda(blas, g->dinp, g->dt, g->dw, NULL, g->dout, g->inp, g->w, g->M, g->C,
                            g->OC, g->OC, g->dt, 0, NULL, workspace, MATMUL_CUDA_WORKSPACE_BYTES,
                            stream);
}

/* dinp[M,C] += dout[M,OC] . W[OC,C]; dW[OC,C] += dout^T . inp[M,C] (column-major views) */
static void bwd_gemmex(void *ctx)
{
    struct gemm *g = ctx;
    const float one = 1;
    cudaDataType_t ty = cuda_type(g->dt);
    CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, g->C, g->M, g->OC, &one, g->w, ty,
                              g->C, g->dout, ty, g->OC, &one, g->dinp, ty, g->C, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_T, g->C, g->OC, g->M, &one, g->inp, ty,
                              g->C, g->dout, ty, g->OC, &one, g->dw, ty, g->C, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
}

static void gemm_init(struct gemm *g, enum dtype dt, uint64_t seed)
{
    size_t nin = (size_t)g->M * g->C, nw = (size_t)g->OC * g->C, nout = (size_t)g->M * g->OC;
    g->dt = dt;
    g->inp = dev_random(nin, dt, -1, 1, seed);
    g->w = dev_random(nw, dt, -0.05f, 0.05f, seed + 1);
    g->b = dev_random(g->OC, dt, -1, 1, seed + 2);
    g->out = dev_alloc(nout * dtype_size(dt));
    g->dout = dev_random(nout, dt, -0.01f, 0.01f, seed + 3);
    g->dinp = dev_random(nin, dt, -1, 1, seed + 4);
    g->dw = dev_random(nw, dt, -1, 1, seed + 5);
    g->db = dev_random(g->OC, dt, -1, 1, seed + 6);
    g->scratch = dev_alloc(matmul_backward_cuda_scratch_bytes(g->M, g->OC));
    direct_lt_create(g, MATMUL_CUDA_WORKSPACE_BYTES);
}

static void gemm_free(struct gemm *g)
{
    direct_lt_destroy(g);
    void *bufs[] = {g->inp, g->w, g->b, g->out, g->dout, g->dinp, g->dw, g->db, g->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CUDA_CHECK(cudaFree(bufs[i]));
}

/* Host cost per call of each forward way, and the kernel's first call (its heuristic). */
static void bench_gemm_host(void)
{
    struct gemm g = {.name = "proj", .M = 4096, .C = 2048, .OC = 2048, .bias = 1};
    gemm_init(&g, DTYPE_FP16, 7);
    double t0 = timer_now_s();
    fwd_kernel_ws(&g);
    double first = (timer_now_s() - t0) * 1e6;
    const int n = 200;
    double k = host_us(fwd_kernel_ws, &g, n), old = host_us(fwd_per_call, &g, n);
    double lt = host_us(fwd_direct_lt, &g, n), ex = host_us(fwd_gemmex, &g, n);
    printf("\n| host us per call (%s fwd fp16 4096x2048x2048, bias) | us |\n|---|---|\n", g.name);
    printf("| kernel, first call (heuristic, then cached) | %.1f |\n", first);
    printf("| kernel, cached | %.2f |\n| previous kernel (create + heuristic + destroy each call) "
           "| %.2f |\n| direct cublasLtMatmul, made once | %.2f |\n| cublasGemmEx | %.2f |\n",
           k, old, lt, ex);
    const char *names[] = {"kernel_first_call", "kernel_cached", "per_call_heuristic", "direct_lt",
                           "cublas_gemmex"};
    double v[] = {first, k, old, lt, ex};
    for (int i = 0; i < 5; i++)
        json_row("gemm_host", g.name, DTYPE_FP16, "forward", names[i], 0, "host_us", v[i]);
    gemm_free(&g);
}

#define GEMM_SHAPES 6
#define GEMM_FWD    5
#define GEMM_BWD    4

static void bench_gemm(void)
{
    static const struct gemm SHAPES[GEMM_SHAPES] = {
        {.name = "8192^3", .M = 8192, .C = 8192, .OC = 8192, .bias = 0},
        {.name = "QKV", .M = 4096, .C = 2048, .OC = 6144, .bias = 1},
        {.name = "attn proj", .M = 4096, .C = 2048, .OC = 2048, .bias = 1},
        {.name = "FC", .M = 4096, .C = 2048, .OC = 8192, .bias = 1},
        {.name = "FC proj", .M = 4096, .C = 8192, .OC = 2048, .bias = 1},
        {.name = "LM head", .M = 4096, .C = 2048, .OC = 50304, .bias = 0}};
    static const op_fn fwd[GEMM_FWD] = {fwd_kernel_ws, fwd_kernel, fwd_direct_lt, fwd_per_call,
                                        fwd_gemmex};
    static const char *fwd_names[GEMM_FWD] = {"kernel_ws", "kernel_no_ws", "direct_lt",
                                              "per_call_heuristic", "cublas_gemmex"};
    static const op_fn bwd[GEMM_BWD] = {bwd_kernel_ws, bwd_kernel, bwd_kernel_ws_nobias,
                                        bwd_gemmex};
    static const char *bwd_names[GEMM_BWD] = {"kernel_ws", "kernel_no_ws", "kernel_ws_no_dbias",
                                              "cublas_gemmex_x2"};
    static double tf[GEMM_SHAPES][2][GEMM_FWD], tb[GEMM_SHAPES][2][GEMM_BWD];
    static char names[GEMM_SHAPES][64];
    for (int si = 0; si < GEMM_SHAPES; si++)
        for (int di = 0; di < 2; di++) {
            struct gemm g = SHAPES[si];
            gemm_init(&g, DTYPES[di], 100 * si + di);
            double flop = 2.0 * g.M * g.C * (double)g.OC;
            snprintf(names[si], sizeof names[si], "%s %dx%d->%d%s", g.name, g.M, g.C, g.OC,
                     g.bias ? " +bias" : "");
            double ms[GEMM_FWD];
            time_set(fwd, GEMM_FWD, &g, warmup, iters, ms);
            for (int v = 0; v < GEMM_FWD; v++) {
                tf[si][di][v] = flop / (ms[v] * 1e-3) / 1e12;
                json_row("gemm", names[si], g.dt, "forward", fwd_names[v], ms[v], "tflops",
                         tf[si][di][v]);
            }
            time_set(bwd, GEMM_BWD, &g, warmup, iters, ms);
            for (int v = 0; v < GEMM_BWD; v++) {
                tb[si][di][v] = 2 * flop / (ms[v] * 1e-3) / 1e12;
                json_row("gemm", names[si], g.dt, "backward", bwd_names[v], ms[v], "tflops",
                         tb[si][di][v]);
            }
            gemm_free(&g);
        }
    printf("\n| GEMM forward, TFLOP/s | dtype | kernel ws | kernel no ws | direct Lt | per-call "
           "heuristic | cublasGemmEx | kernel ws / direct Lt | kernel ws / GemmEx |\n"
           "|---|---|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < GEMM_SHAPES; si++)
        for (int di = 0; di < 2; di++) {
            const double *t = tf[si][di];
            printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f | %.3f |\n", names[si],
                   dtype_name(DTYPES[di]), t[0], t[1], t[2], t[3], t[4], t[0] / t[2], t[0] / t[4]);
        }
    printf("\n| GEMM backward (dinp + dweight [+ dbias]), TFLOP/s | dtype | kernel ws | kernel no "
           "ws | kernel ws, no dbias | 2 x cublasGemmEx, no dbias | no dbias / GemmEx |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < GEMM_SHAPES; si++)
        for (int di = 0; di < 2; di++) {
            const double *t = tb[si][di];
            printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.3f |\n", names[si],
                   dtype_name(DTYPES[di]), t[0], t[1], t[2], t[3], t[2] / t[3]);
        }
}

/* ---- 2. the MLP: bias and GELU in the epilogues ---- */

struct mlp {
    int M, C, H; /* tokens, channels, hidden = 4C */
    enum dtype dt;
    void *ln2, *wfc, *bfc, *fch, *fchg, *wproj, *bproj, *dres, *dfchg, *dfch, *dwfc, *dbfc, *dwproj,
        *dbproj, *dln2, *scratch;
};

static void mlp_fwd_separate(void *ctx)
{
    struct mlp *m = ctx;
    matmul_forward_ws_cuda(blas, m->fch, m->ln2, m->wfc, m->bfc, m->M, m->C, m->H, m->H, m->dt,
                           workspace, MATMUL_CUDA_WORKSPACE_BYTES, stream);
    gelu_forward_cuda(m->fchg, m->fch, (size_t)m->M * m->H, m->dt, stream);
}

static void mlp_fwd_fused(void *ctx)
{
    struct mlp *m = ctx;
    matmul_forward_gelu_cuda(blas, m->fchg, m->fch, m->ln2, m->wfc, m->bfc, m->M, m->C, m->H, m->H,
                             m->dt, workspace, MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

static void mlp_fwd_fused_no_pre(void *ctx)
{
    struct mlp *m = ctx;
    matmul_forward_gelu_cuda(blas, m->fchg, NULL, m->ln2, m->wfc, m->bfc, m->M, m->C, m->H, m->H,
                             m->dt, workspace, MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

/* graph/gpt.c's order: zero dfch_gelu, FC-proj backward, zero dfch, GELU backward, FC backward */
static void mlp_bwd_separate(void *ctx)
{
    struct mlp *m = ctx;
    size_t nh = (size_t)m->M * m->H, es = dtype_size(m->dt);
    zero_cuda(m->dfchg, nh * es, stream);
    matmul_backward_ws_cuda(blas, m->dfchg, m->dt, m->dwproj, m->dbproj, m->dres, m->fchg, m->wproj,
                            m->M, m->H, m->C, m->C, m->dt, 0, m->scratch, workspace,
                            MATMUL_CUDA_WORKSPACE_BYTES, stream);
    zero_cuda(m->dfch, nh * es, stream);
    gelu_backward_cuda(m->dfch, m->fch, m->dfchg, nh, m->dt, stream);
    matmul_backward_ws_cuda(blas, m->dln2, m->dt, m->dwfc, m->dbfc, m->dfch, m->ln2, m->wfc, m->M,
                            m->C, m->H, m->H, m->dt, 0, m->scratch, workspace,
                            MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

static void mlp_bwd_fused(void *ctx)
{
    struct mlp *m = ctx;
    matmul_backward_dgelu_cuda(blas, m->dfch, m->dwproj, m->dbproj, m->dbfc, m->dres, m->fchg,
                               m->wproj, m->fch, m->M, m->H, m->C, m->dt, 0, m->scratch, workspace,
                               MATMUL_CUDA_WORKSPACE_BYTES, stream);
    matmul_backward_ws_cuda(blas, m->dln2, m->dt, m->dwfc, NULL, m->dfch, m->ln2, m->wfc, m->M,
                            m->C, m->H, m->H, m->dt, 0, NULL, workspace,
                            MATMUL_CUDA_WORKSPACE_BYTES, stream);
}

static void bench_mlp(void)
{
    printf("\n| MLP 4096 x 2048 -> 8192 -> 2048 | dtype | pass | separate ms | fused ms | fused "
           "without pre ms | speed-up |\n|---|---|---|---|---|---|---|\n");
    for (size_t di = 0; di < sizeof DTYPES / sizeof DTYPES[0]; di++) {
        struct mlp m = {.M = 4096, .C = 2048, .H = 8192, .dt = DTYPES[di]};
        enum dtype dt = m.dt;
        size_t mc = (size_t)m.M * m.C, mh = (size_t)m.M * m.H, hc = (size_t)m.H * m.C;
        uint64_t s = 1000 + 100 * di;
        m.ln2 = dev_random(mc, dt, -1, 1, s);
        m.wfc = dev_random(hc, dt, -0.05f, 0.05f, s + 1);
        m.bfc = dev_random(m.H, dt, -0.5f, 0.5f, s + 2);
        m.wproj = dev_random(hc, dt, -0.05f, 0.05f, s + 3);
        m.bproj = dev_random(m.C, dt, -0.5f, 0.5f, s + 4);
        m.dres = dev_random(mc, dt, -0.01f, 0.01f, s + 5);
        m.dwfc = dev_random(hc, dt, -1, 1, s + 6);
        m.dbfc = dev_random(m.H, dt, -1, 1, s + 7);
        m.dwproj = dev_random(hc, dt, -1, 1, s + 8);
        m.dbproj = dev_random(m.C, dt, -1, 1, s + 9);
        m.dln2 = dev_random(mc, dt, -1, 1, s + 10);
        m.fch = dev_alloc(mh * dtype_size(dt));
        m.fchg = dev_alloc(mh * dtype_size(dt));
        m.dfchg = dev_alloc(mh * dtype_size(dt));
        m.dfch = dev_alloc(mh * dtype_size(dt));
        size_t sc = matmul_backward_dgelu_cuda_scratch_bytes(m.M, m.H, m.C);
        if (matmul_backward_cuda_scratch_bytes(m.M, m.H) > sc)
            sc = matmul_backward_cuda_scratch_bytes(m.M, m.H);
        m.scratch = dev_alloc(sc);
        static const op_fn fwd[3] = {mlp_fwd_separate, mlp_fwd_fused, mlp_fwd_fused_no_pre};
        static const op_fn bwd[2] = {mlp_bwd_separate, mlp_bwd_fused};
        double f[3], b[2];
        time_set(fwd, 3, &m, warmup, iters, f);
        mlp_fwd_fused(&m); /* the backward reads fch and fch_gelu */
        time_set(bwd, 2, &m, warmup, iters, b);
        double fs = f[0], ff = f[1], fn = f[2], bs = b[0], bf = b[1];
        printf("| FC + bias + GELU | %s | forward | %.3f | %.3f | %.3f | %.2fx |\n", dtype_name(dt),
               fs, ff, fn, fs / ff);
        printf("| FC-proj dgelu, both dbias + FC | %s | backward | %.3f | %.3f | - | %.2fx |\n",
               dtype_name(dt), bs, bf, bs / bf);
        double ffl = 2.0 * m.M * m.C * (double)m.H;
        json_row("mlp", "FC fwd", dt, "forward", "separate", fs, "tflops", ffl / fs / 1e9);
        json_row("mlp", "FC fwd", dt, "forward", "fused", ff, "tflops", ffl / ff / 1e9);
        json_row("mlp", "FC fwd", dt, "forward", "fused_no_pre", fn, "tflops", ffl / fn / 1e9);
        json_row("mlp", "MLP bwd", dt, "backward", "separate", bs, "tflops", 4 * ffl / bs / 1e9);
        json_row("mlp", "MLP bwd", dt, "backward", "fused", bf, "tflops", 4 * ffl / bf / 1e9);
        void *bufs[] = {m.ln2,    m.wfc,    m.bfc,  m.wproj, m.bproj, m.dres,  m.dwfc, m.dbfc,
                        m.dwproj, m.dbproj, m.dln2, m.fch,   m.fchg,  m.dfchg, m.dfch, m.scratch};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            CUDA_CHECK(cudaFree(bufs[i]));
    }
}

/* ---- 3. residual add + LayerNorm ---- */

struct addln {
    int N, C;
    enum dtype dt;
    void *a, *b, *res, *out, *w, *bias;
    float *mean, *rstd;
};

static void addln_separate(void *ctx)
{
    struct addln *x = ctx;
    add_forward_cuda(x->res, x->a, x->b, (size_t)x->N * x->C, x->dt, stream);
    layernorm_forward_cuda(x->out, x->mean, x->rstd, x->res, x->w, x->bias, x->N, x->C, x->dt,
                           stream);
}

static void addln_fused(void *ctx)
{
    struct addln *x = ctx;
    add_layernorm_forward_cuda(x->res, x->out, x->mean, x->rstd, x->a, x->b, x->w, x->bias, x->N,
                               x->C, x->dt, stream);
}

static void bench_addln(void)
{
    static const int CS[] = {2048, 8192};
    printf("\n| residual add + LayerNorm N x C | dtype | separate us | fused us | separate GB/s | "
           "fused GB/s | speed-up |\n|---|---|---|---|---|---|---|\n");
    for (int ci = 0; ci < 2; ci++)
        for (size_t di = 0; di < sizeof DTYPES / sizeof DTYPES[0]; di++) {
            struct addln x = {.N = 4096, .C = CS[ci], .dt = DTYPES[di]};
            size_t n = (size_t)x.N * x.C, es = dtype_size(x.dt);
            uint64_t s = 2000 + 10 * ci + di;
            x.a = dev_random(n, x.dt, -1, 1, s);
            x.b = dev_random(n, x.dt, -1, 1, s + 1);
            x.w = dev_random(x.C, x.dt, 0.5f, 1.5f, s + 2);
            x.bias = dev_random(x.C, x.dt, -0.5f, 0.5f, s + 3);
            x.res = dev_alloc(n * es);
            x.out = dev_alloc(n * es);
            x.mean = dev_alloc(x.N * sizeof(float));
            x.rstd = dev_alloc(x.N * sizeof(float));
            static const op_fn ops[2] = {addln_separate, addln_fused};
            double t[2];
            time_set(ops, 2, &x, warmup, iters, t);
            double ts = t[0], tf = t[1];
            /* the fewest bytes: a, b in, res, out out (each once) */
            double bytes = 4.0 * n * es;
            char name[32];
            snprintf(name, sizeof name, "%dx%d", x.N, x.C);
            printf("| %s | %s | %.1f | %.1f | %.0f | %.0f | %.2fx |\n", name, dtype_name(x.dt),
                   ts * 1e3, tf * 1e3, bytes / ts / 1e6, bytes / tf / 1e6, ts / tf);
            json_row("add_layernorm", name, x.dt, "forward", "separate", ts, "gbps",
                     bytes / ts / 1e6);
            json_row("add_layernorm", name, x.dt, "forward", "fused", tf, "gbps", bytes / tf / 1e6);
            void *bufs[] = {x.a, x.b, x.w, x.bias, x.res, x.out, x.mean, x.rstd};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                CUDA_CHECK(cudaFree(bufs[i]));
        }
}

/* ---- 4. AdamW over the 1.3B model's tensors ---- */

#define ADAM_LAYERS 24
#define ADAM_C      2048
#define ADAM_VP     50304
#define ADAM_MAXT   1024
#define ADAM_NT     (ADAM_LAYERS * 12 + 4)

struct adam {
    struct adamw_tensor t[ADAM_NT];
    int nt;
    size_t total;
    float *sumsq;
    struct adamw_hparams hp;
    enum dtype dt;
};

static void adam_per_tensor(void *ctx)
{
    struct adam *a = ctx;
    for (int i = 0; i < a->nt; i++) {
        struct adamw_hparams h = a->hp;
        h.weight_decay = a->t[i].weight_decay;
        adamw_cuda(a->t[i].param, a->t[i].master, a->t[i].m, a->t[i].v, a->t[i].grad, a->sumsq,
                   a->t[i].n, &h, a->dt, stream);
    }
}

static void adam_multi(void *ctx)
{
    struct adam *a = ctx;
    adamw_multi_cuda(a->t, a->nt, a->sumsq, &a->hp, a->dt, stream);
}

static void bench_adam(void)
{
    const size_t C = ADAM_C;
    /* graph/gpt.c's per-layer order: ln1 w b, qkv w b, proj w b, ln2 w b, fc w b, fcproj w b */
    const size_t layer[12] = {C, C, 3 * C * C, 3 * C, C * C,     C,
                              C, C, 4 * C * C, 4 * C, 4 * C * C, C};
    const int decay[12] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0};
    static struct adam a;
    a.dt = DTYPE_BF16;
    size_t sizes[ADAM_NT];
    int dec[ADAM_NT];
    a.nt = 0;
    /* wte, wpe, the layers, lnf w and b */
    const size_t ends[4] = {(size_t)ADAM_VP * C, (size_t)ADAM_MAXT * C, C, C};
    for (int i = 0; i < 2; i++) {
        sizes[a.nt] = ends[i];
        dec[a.nt++] = 1;
    }
    for (int l = 0; l < ADAM_LAYERS; l++)
        for (int k = 0; k < 12; k++) {
            sizes[a.nt] = layer[k];
            dec[a.nt++] = decay[k];
        }
    for (int i = 2; i < 4; i++) {
        sizes[a.nt] = ends[i];
        dec[a.nt++] = 0;
    }
    /* each tensor 256-byte aligned inside one buffer per state */
    size_t off[ADAM_NT];
    a.total = 0;
    size_t slots = 0;
    for (int i = 0; i < a.nt; i++) {
        off[i] = slots;
        slots += (sizes[i] + 63) / 64 * 64;
        a.total += sizes[i];
    }
    size_t es = dtype_size(a.dt);
    char *param = dev_alloc(slots * es), *grad = dev_random(slots, a.dt, -1000, 1000, 31);
    float *master = dev_random(slots, DTYPE_FP32, -1, 1, 32);
    float *m = dev_random(slots, DTYPE_FP32, -0.01f, 0.01f, 33);
    float *v = dev_random(slots, DTYPE_FP32, 0, 1e-4f, 34);
    for (int i = 0; i < a.nt; i++)
        a.t[i] = (struct adamw_tensor){param + off[i] * es, master + off[i],    m + off[i],
                                       v + off[i],          grad + off[i] * es, sizes[i],
                                       dec[i] ? 0.1f : 0.0f};
    /* a gradient norm over the clip: the clipped path, as in training with clip 1.0 */
    float sumsq = 4.0e12f;
    a.sumsq = dev_alloc(sizeof(float));
    CUDA_CHECK(cudaMemcpy(a.sumsq, &sumsq, sizeof sumsq, cudaMemcpyHostToDevice));
    a.hp = (struct adamw_hparams){.lr = 1e-4f,
                                  .beta1 = 0.9f,
                                  .beta2 = 0.95f,
                                  .eps = 1e-8f,
                                  .weight_decay = 0.1f,
                                  .step = 10,
                                  .inv_loss_scale = 1.0f / 1024,
                                  .clip_norm = 1.0f};
    int n = iters < 10 ? iters : 10;
    static const op_fn ops[2] = {adam_per_tensor, adam_multi};
    double t[2];
    time_set(ops, 2, &a, 2, n, t);
    double tp = t[0], tm = t[1];
    /* bf16 grad read, param written; fp32 master, m, v read and written */
    double bytes = (double)a.total * (2 + 2 + 3 * 8);
    printf("\n| AdamW, 1.3B model: %d tensors, %.3fB params, bf16 | ms | GB/s | launches |\n"
           "|---|---|---|---|\n",
           a.nt, a.total / 1e9);
    printf("| adamw_cuda per tensor | %.3f | %.0f | %d |\n", tp, bytes / tp / 1e6, a.nt);
    printf("| adamw_multi_cuda | %.3f | %.0f | %d |\n| speed-up | %.3fx | | |\n", tm,
           bytes / tm / 1e6, (a.nt + 63) / 64, tp / tm);
    json_row("adamw", "1.3B 292 tensors", a.dt, "step", "per_tensor", tp, "gbps", bytes / tp / 1e6);
    json_row("adamw", "1.3B 292 tensors", a.dt, "step", "multi_tensor", tm, "gbps",
             bytes / tm / 1e6);
    void *bufs[] = {param, grad, master, m, v, a.sumsq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CUDA_CHECK(cudaFree(bufs[i]));
}

int main(int argc, char **argv)
{
    struct bench_cuda bc;
    bench_cuda_start(&bc, "bench_kernels", argc, argv);
    iters = bc.iters;
    warmup = bc.warmup;
    json = bc.json;
    stream = bc.stream;
    blas = bc.blas;
    struct cudaDeviceProp prop = bc.prop;
    workspace = dev_alloc(MATMUL_CUDA_WORKSPACE_BYTES);
    if (json)
        fprintf(json,
                "{\"bench\": \"kernels\", \"device\": \"%s\", \"cublaslt_version\": %zu, "
                "\"iters\": %d, \"warmup\": %d, \"rows\": [",
                prop.name, cublasLtGetVersion(), iters, warmup);
    printf("device: %s, cuBLASLt %zu, median of %d calls after %d\n", prop.name,
           cublasLtGetVersion(), iters, warmup);
    bench_gemm_host();
    bench_gemm();
    bench_mlp();
    bench_addln();
    bench_adam();
    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    printf("\ncuBLASLt products cached: %d, of which without an algorithm (unfused path): %d\n",
           problems, unfused);
    if (json) {
        fprintf(json, "\n], \"lt_products\": %d, \"lt_unfused\": %d}\n", problems, unfused);
        CHECK_MSG(fclose(json) == 0, "cannot write the --out file");
    }
    printf("device: %s\n", prop.name);
    CUDA_CHECK(cudaFree(workspace));
    cublasDestroy(blas);
    cudaStreamDestroy(stream);
    return 0;
}
