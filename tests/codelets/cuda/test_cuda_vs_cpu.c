/* test_cuda_vs_cpu.c: every CUDA launcher of kernels_cuda.h against its CPU reference in
 * kernels_cpu.h, for fp32, fp16 and bf16.
 *
 * Each case fills its inputs from a fixed seed (different per case), runs the CPU kernel on host
 * copies and the CUDA launcher on device copies (one stream, one cuBLAS handle bound to it),
 * and compares every output element: |got - ref| <= atol + rtol * |ref|, with explicit
 * tolerances per dtype. Gradient buffers start non-zero, so the accumulate (+=) contracts are
 * checked; scratch and overwritten outputs start as NaN garbage, so a kernel that reads either
 * fails. Shapes are deliberately not multiples of 32 or 128 (T=37, C=96, NH=3, V=1000, Vp=1024)
 * plus one larger shape (B=2, T=256, C=256, NH=4). Prints one line per comparison and, on a
 * failure, the worst element. Exit 0 pass, 1 fail, 77 when there is no CUDA device. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_check.h"
#include "dtype.h"
#include "kernels_cpu.h"
#include "kernels_cuda.h"

static const enum dtype DTYPES[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};

/* Tolerance atol + rtol * |ref|, indexed by dtype. */
struct tol {
    double atol, rtol;
};

/* One rounding of the same fp32 value (or a few fp32 ulp apart before it, relative to operands of
 * magnitude up to 4, hence the fp32 atol): 2 ulp of the type. */
static const struct tol TOL_ELEMENTWISE[] = {{5e-6, 1e-6}, {1e-5, 2e-3}, {1e-5, 1.6e-2}};
/* Sums of up to 512 products of O(1) terms in another order (fp32 atol: the partial sums reach
 * ~30), 1-2 ulp of the storage type, and the GPU's roundings of att and dpreatt to it. On an H100
 * the worst element used at most 0.5 of these. */
static const struct tol TOL_REDUCTION[] = {{2e-5, 1e-4}, {2e-3, 3e-3}, {1.6e-2, 2e-2}};
/* fp32 statistics computed with different summation orders. */
static const struct tol TOL_STATS = {1e-5, 1e-5};
/* Attention's row max and sum of exponentials: the max of scores that sum up to 128 products in
 * another order (cuBLAS against the CPU's loop), partial sums up to ~30 in fp32. */
static const struct tol TOL_ATT_STATS = {1e-4, 1e-4};
/* The AdamW math is the same operation sequence on both sides (no FMA contraction). */
static const struct tol TOL_ADAMW_FP32 = {1e-7, 1e-6};

struct shape {
    int B, T, C, NH;
};
static const struct shape SHAPES[] = {{2, 37, 96, 3}, {2, 256, 256, 4}};

static cudaStream_t stream;
static cublasHandle_t blas;
static int failures;

/* ---- allocations, released together at the end of each case ---- */

#define MAX_ALLOCS 4096
static void *host_allocs[MAX_ALLOCS], *dev_allocs[MAX_ALLOCS];
static int nhost, ndev;

static void *hmalloc(size_t bytes)
{
    CHECK(nhost < MAX_ALLOCS);
    void *p = malloc(bytes ? bytes : 1);
    CHECK_MSG(p != NULL, "out of host memory");
    return host_allocs[nhost++] = p;
}

/* Device buffer filled with 0xff bytes: NaN in every dtype, so unwritten outputs show. */
static void *dmalloc(size_t bytes)
{
    CHECK(ndev < MAX_ALLOCS);
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_CHECK(cudaMemset(p, 0xff, bytes ? bytes : 1));
    return dev_allocs[ndev++] = p;
}

static void release(void)
{
    while (nhost > 0)
        free(host_allocs[--nhost]);
    while (ndev > 0)
        CUDA_CHECK(cudaFree(dev_allocs[--ndev]));
}

/* A device copy that starts `off` bytes into its allocation (to test unaligned tensors). */
static void *upload_at(const void *h, size_t bytes, size_t off)
{
    char *d = (char *)dmalloc(bytes + off) + off;
    CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

static void *upload(const void *h, size_t bytes)
{
    return upload_at(h, bytes, 0);
}

/* Waits for the stream, then copies a device buffer back into a new host buffer. */
static void *download(const void *d, size_t bytes)
{
    CUDA_CHECK(cudaStreamSynchronize(stream));
    CUDA_CHECK(cudaGetLastError());
    void *h = hmalloc(bytes);
    CUDA_CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return h;
}

static void *hclone(const void *h, size_t bytes)
{
    return memcpy(hmalloc(bytes), h, bytes);
}

/* ---- random inputs ---- */

static uint64_t rng;

static void rng_seed(uint64_t seed)
{
    rng = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
}

static uint32_t rng_u32(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (rng_u32() * 0x1p-32f);
}

/* n elements of dt, uniform in [lo, hi) then rounded to dt. */
static void *hrand(enum dtype dt, size_t n, float lo, float hi)
{
    void *p = hmalloc(n * dtype_size(dt));
    for (size_t i = 0; i < n; i++)
        dtype_store(dt, p, i, rng_uniform(lo, hi));
    return p;
}

static int32_t *hrand_tokens(size_t n, int32_t bound)
{
    int32_t *p = hmalloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        p[i] = (int32_t)(rng_u32() % (uint32_t)bound);
    return p;
}

/* ---- comparison ---- */

/* Compares n elements of got with ref (both of type dt). Equal values (infinities included) and
 * two NaNs match; otherwise |got - ref| <= atol + rtol * |ref| (+ extra[i] when extra is set). */
static void compare_extra(const char *what, enum dtype dt, const void *got, const void *ref,
                          size_t n, struct tol tol, const double *extra)
{
    double maxerr = 0.0, worst_ratio = -1.0;
    size_t worst = 0, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = dtype_load(dt, got, i), r = dtype_load(dt, ref, i);
        if (g == r || (isnan(g) && isnan(r))) continue;
        double err = fabs(g - r);
        double bound = tol.atol + tol.rtol * fabs(r) + (extra ? extra[i] : 0.0);
        double ratio = isnan(err) || isinf(err) ? INFINITY : err / bound;
        if (!(err <= bound)) nbad++;
        if (err > maxerr || isnan(err)) maxerr = isnan(err) ? INFINITY : err;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    /* worst_ratio: the worst element's error as a fraction of its tolerance */
    printf("%-44s %s  max |err| %-9.3g worst %5.2f of tol  %s\n", what, dtype_name(dt), maxerr,
           worst_ratio < 0 ? 0.0 : worst_ratio, nbad ? "FAIL" : "ok");
    if (nbad) {
        printf("    %zu of %zu elements outside %g + %g*|ref|; worst [%zu]: got %.9g, ref %.9g\n",
               nbad, n, tol.atol, tol.rtol, worst, dtype_load(dt, got, worst),
               dtype_load(dt, ref, worst));
        failures++;
    }
}

static void compare(const char *what, enum dtype dt, const void *got, const void *ref, size_t n,
                    struct tol tol)
{
    compare_extra(what, dt, got, ref, n, tol, NULL);
}

static void expect(int cond, const char *what)
{
    printf("%-44s       %s\n", what, cond ? "ok" : "FAIL");
    if (!cond) failures++;
}

static const char *label(const char *op, const struct shape *s)
{
    static char buf[96];
    snprintf(buf, sizeof buf, "%s B%d T%d C%d NH%d", op, s->B, s->T, s->C, s->NH);
    return buf;
}

/* ---- cases ---- */

static void test_encoder(enum dtype dt, const struct shape *s, uint64_t seed)
{
    rng_seed(seed);
    int B = s->B, T = s->T, C = s->C, N = B * T, Vp = 1024, maxT = T + 27;
    size_t es = dtype_size(dt);
    /* 20 distinct tokens over N positions: many repeats for the scatter */
    int32_t *tok = hrand_tokens(N, 20);
    for (int n = 0; n < N; n++)
        tok[n] = tok[n] * 47 + 3;
    void *wte = hrand(dt, (size_t)Vp * C, -1, 1), *wpe = hrand(dt, (size_t)maxT * C, -1, 1);
    void *out = hmalloc((size_t)N * C * es);
    encoder_forward_cpu(out, tok, wte, wpe, B, T, C, dt);
    void *d_out = dmalloc((size_t)N * C * es);
    int32_t *d_tok = upload(tok, N * sizeof(int32_t));
    encoder_forward_cuda(d_out, d_tok, upload(wte, (size_t)Vp * C * es),
                         upload(wpe, (size_t)maxT * C * es), B, T, C, dt, stream);
    compare(label("encoder_forward out", s), dt, download(d_out, (size_t)N * C * es), out,
            (size_t)N * C, TOL_ELEMENTWISE[dt]);

    void *dwte = hrand(dt, (size_t)Vp * C, -1, 1), *dwpe = hrand(dt, (size_t)maxT * C, -1, 1);
    void *dout = hrand(dt, (size_t)N * C, -1, 1);
    void *d_dwte = upload(dwte, (size_t)Vp * C * es), *d_dwpe = upload(dwpe, (size_t)maxT * C * es);
    encoder_backward_cpu(dwte, dwpe, dout, tok, B, T, C, dt);
    encoder_backward_cuda(d_dwte, d_dwpe, upload(dout, (size_t)N * C * es), d_tok, B, T, C, dt,
                          stream);
    compare(label("encoder_backward dwte", s), dt, download(d_dwte, (size_t)Vp * C * es), dwte,
            (size_t)Vp * C, TOL_ELEMENTWISE[dt]);
    compare(label("encoder_backward dwpe", s), dt, download(d_dwpe, (size_t)maxT * C * es), dwpe,
            (size_t)maxT * C, TOL_ELEMENTWISE[dt]);
    release();
}

static void test_layernorm(enum dtype dt, const struct shape *s, uint64_t seed)
{
    rng_seed(seed);
    int N = s->B * s->T, C = s->C;
    size_t es = dtype_size(dt), nx = (size_t)N * C;
    void *inp = hrand(dt, nx, -1.5f, 2.5f), *w = hrand(dt, C, 0.5f, 1.5f);
    void *b = hrand(dt, C, -0.5f, 0.5f);
    void *out = hmalloc(nx * es);
    float *mean = hmalloc(N * sizeof(float)), *rstd = hmalloc(N * sizeof(float));
    layernorm_forward_cpu(out, mean, rstd, inp, w, b, N, C, dt);
    void *d_inp = upload(inp, nx * es), *d_w = upload(w, C * es), *d_out = dmalloc(nx * es);
    float *d_mean = dmalloc(N * sizeof(float)), *d_rstd = dmalloc(N * sizeof(float));
    layernorm_forward_cuda(d_out, d_mean, d_rstd, d_inp, d_w, upload(b, C * es), N, C, dt, stream);
    compare(label("layernorm_forward out", s), dt, download(d_out, nx * es), out, nx,
            TOL_REDUCTION[dt]);
    compare(label("layernorm_forward mean", s), DTYPE_FP32, download(d_mean, N * sizeof(float)),
            mean, N, TOL_STATS);
    compare(label("layernorm_forward rstd", s), DTYPE_FP32, download(d_rstd, N * sizeof(float)),
            rstd, N, TOL_STATS);

    /* the backward uses the CPU's statistics on both sides, so only the backward is compared */
    void *dinp = hrand(dt, nx, -1, 1), *dw = hrand(dt, C, -1, 1), *db = hrand(dt, C, -1, 1);
    void *dout = hrand(dt, nx, -1, 1);
    void *d_dinp = upload(dinp, nx * es), *d_dw = upload(dw, C * es), *d_db = upload(db, C * es);
    void *d_dw2 = upload(dw, C * es), *d_db2 = upload(db, C * es), *d_dinp2 = upload(dinp, nx * es);
    void *d_dout = upload(dout, nx * es),
         *scratch = dmalloc(layernorm_backward_cuda_scratch_bytes(N, C));
    float *d_mean2 = upload(mean, N * sizeof(float)), *d_rstd2 = upload(rstd, N * sizeof(float));
    layernorm_backward_cpu(dinp, dw, db, dout, inp, w, mean, rstd, N, C, dt);
    layernorm_backward_cuda(d_dinp, d_dw, d_db, d_dout, d_inp, d_w, d_mean2, d_rstd2, N, C, dt,
                            scratch, stream);
    /* a second run from the same inputs must give the same bits */
    layernorm_backward_cuda(d_dinp2, d_dw2, d_db2, d_dout, d_inp, d_w, d_mean2, d_rstd2, N, C, dt,
                            scratch, stream);
    expect(memcmp(download(d_dw, C * es), download(d_dw2, C * es), C * es) == 0 &&
               memcmp(download(d_db, C * es), download(d_db2, C * es), C * es) == 0,
           label("layernorm_backward deterministic", s));
    compare(label("layernorm_backward dinp", s), dt, download(d_dinp, nx * es), dinp, nx,
            TOL_REDUCTION[dt]);
    compare(label("layernorm_backward dweight", s), dt, download(d_dw, C * es), dw, C,
            TOL_REDUCTION[dt]);
    compare(label("layernorm_backward dbias", s), dt, download(d_db, C * es), db, C,
            TOL_REDUCTION[dt]);
    release();
}

/* with_bias: forward with bias and backward with dinp and dbias; otherwise neither. out and dout
 * are column blocks whose rows are ldo >= OC apart (one tile of a wider layer, starting `col`
 * columns in): the columns outside the block must come back untouched. */
static void *workspace; /* MATMUL_CUDA_WORKSPACE_BYTES of device memory for cuBLASLt */

/* The cuBLASLt workspace of a case: none, or the whole buffer. */
static void *ws_ptr(int ws)
{
    return ws ? workspace : NULL;
}

static size_t ws_bytes(int ws)
{
    return ws ? MATMUL_CUDA_WORKSPACE_BYTES : 0;
}

/* What the launcher called since the stats were read found in cuBLASLt: every epilogue it asked
 * for ("fused"), a number it lacked (their unfused paths ran), or nothing new ("cached"). */
static const char *fusion(int problems_before, int unfused_before)
{
    static char buf[32];
    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    if (unfused > unfused_before)
        snprintf(buf, sizeof buf, "%d unfused", unfused - unfused_before);
    else
        snprintf(buf, sizeof buf, "%s", problems > problems_before ? "fused" : "cached");
    return buf;
}

static void test_matmul(enum dtype dt, const struct shape *s, int OC, int ldo, int with_bias,
                        int ws, uint64_t seed)
{
    rng_seed(seed);
    int N = s->B * s->T, C = s->C;
    size_t es = dtype_size(dt), nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * ldo;
    size_t col = (size_t)(ldo - OC) / 2 * es;
    char name[64];
    void *inp = hrand(dt, nin, -1, 1), *w = hrand(dt, nw, -0.2f, 0.2f);
    void *b = with_bias ? hrand(dt, OC, -1, 1) : NULL;
    void *out = hrand(dt, nout, -1, 1);
    void *d_inp = upload(inp, nin * es), *d_w = upload(w, nw * es), *d_out = upload(out, nout * es);
    matmul_forward_cpu((char *)out + col, inp, w, b, N, C, OC, ldo, dt);
    /* bias one element into its buffer: tensors carved from a flat buffer may be unaligned */
    matmul_forward_ws_cuda(blas, (char *)d_out + col, d_inp, d_w,
                           b ? upload_at(b, OC * es, es) : NULL, N, C, OC, ldo, dt, ws_ptr(ws),
                           ws_bytes(ws), stream);
    snprintf(name, sizeof name, "matmul_forward OC%d ldo%d%s%s", OC, ldo, with_bias ? " bias" : "",
             ws ? " ws" : "");
    compare(label(name, s), dt, download(d_out, nout * es), out, nout, TOL_REDUCTION[dt]);

    void *dout = hrand(dt, nout, -1, 1), *dw = hrand(dt, nw, -1, 1);
    void *dinp = with_bias ? hrand(dt, nin, -1, 1) : NULL;
    void *db = with_bias ? hrand(dt, OC, -1, 1) : NULL;
    void *d_dw = upload(dw, nw * es);
    void *d_dinp = dinp ? upload(dinp, nin * es) : NULL, *d_db = db ? upload(db, OC * es) : NULL;
    void *scratch = dmalloc(matmul_backward_cuda_scratch_bytes(N, OC));
    void *d_dw2 = upload(dw, nw * es), *d_db2 = db ? upload(db, OC * es) : NULL;
    matmul_backward_cpu(dinp, dt, dw, db, (char *)dout + col, inp, w, N, C, OC, ldo, dt, 0);
    void *d_dout = (char *)upload(dout, nout * es) + col;
    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    matmul_backward_ws_cuda(blas, d_dinp, dt, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC, ldo, dt, 0,
                            scratch, ws_ptr(ws), ws_bytes(ws), stream);
    const char *how = fusion(problems, unfused);
    /* a second run from the same inputs must give the same bits (the epilogue's bias sums too) */
    matmul_backward_ws_cuda(blas, NULL, dt, d_dw2, d_db2, d_dout, d_inp, d_w, N, C, OC, ldo, dt, 0,
                            scratch, ws_ptr(ws), ws_bytes(ws), stream);
    snprintf(name, sizeof name, "matmul_backward OC%d ldo%d%s deterministic", OC, ldo,
             ws ? " ws" : "");
    expect(memcmp(download(d_dw, nw * es), download(d_dw2, nw * es), nw * es) == 0 &&
               (!db || memcmp(download(d_db, OC * es), download(d_db2, OC * es), OC * es) == 0),
           label(name, s));
    snprintf(name, sizeof name, "matmul_backward OC%d ldo%d dweight", OC, ldo);
    compare(label(name, s), dt, download(d_dw, nw * es), dw, nw, TOL_REDUCTION[dt]);
    if (with_bias) {
        snprintf(name, sizeof name, "matmul_backward OC%d ldo%d dinp", OC, ldo);
        compare(label(name, s), dt, download(d_dinp, nin * es), dinp, nin, TOL_REDUCTION[dt]);
        snprintf(name, sizeof name, "matmul_backward OC%d ldo%d dbias (%s)", OC, ldo, how);
        compare(label(name, s), dt, download(d_db, OC * es), db, OC, TOL_REDUCTION[dt]);
    }
    if (dt != DTYPE_FP32) { /* a tiled layer's fp32 sum of dinp (codelets/matmul.c's acc) */
        void *acc = hrand(DTYPE_FP32, nin, -1, 1), *d_acc = upload(acc, nin * 4);
        matmul_backward_cpu(acc, DTYPE_FP32, dw, NULL, (char *)dout + col, inp, w, N, C, OC, ldo,
                            dt, 0);
        matmul_backward_ws_cuda(blas, d_acc, DTYPE_FP32, d_dw, NULL, d_dout, d_inp, d_w, N, C, OC,
                                ldo, dt, 0, NULL, ws_ptr(ws), ws_bytes(ws), stream);
        snprintf(name, sizeof name, "matmul_backward OC%d ldo%d dinp into fp32", OC, ldo);
        compare(label(name, s), DTYPE_FP32, download(d_acc, nin * 4), acc, nin,
                TOL_REDUCTION[DTYPE_FP32]);
    }
    /* the set bits: dinp and dweight written over NaNs (dmalloc's) with the bits of the same
     * product added onto zeros; dbias still adds */
    void *d_si = dmalloc(nin * es), *d_sw = dmalloc(nw * es);
    void *d_zi = dmalloc(nin * es), *d_zw = dmalloc(nw * es);
    CUDA_CHECK(cudaMemset(d_zi, 0, nin * es));
    CUDA_CHECK(cudaMemset(d_zw, 0, nw * es));
    void *d_sb = db ? upload(db, OC * es) : NULL, *d_zb = db ? upload(db, OC * es) : NULL;
    matmul_backward_ws_cuda(blas, d_si, dt, d_sw, d_sb, d_dout, d_inp, d_w, N, C, OC, ldo, dt,
                            MATMUL_SET_DINP | MATMUL_SET_DWEIGHT, scratch, ws_ptr(ws), ws_bytes(ws),
                            stream);
    matmul_backward_ws_cuda(blas, d_zi, dt, d_zw, d_zb, d_dout, d_inp, d_w, N, C, OC, ldo, dt, 0,
                            scratch, ws_ptr(ws), ws_bytes(ws), stream);
    snprintf(name, sizeof name, "matmul_backward OC%d ldo%d%s set: as added onto zeros", OC, ldo,
             ws ? " ws" : "");
    expect(memcmp(download(d_si, nin * es), download(d_zi, nin * es), nin * es) == 0 &&
               memcmp(download(d_sw, nw * es), download(d_zw, nw * es), nw * es) == 0 &&
               (!db || memcmp(download(d_sb, OC * es), download(d_zb, OC * es), OC * es) == 0),
           label(name, s));
    release();
}

/* matmul_forward_gelu_cuda against matmul_forward_cpu then gelu_forward_cpu (row by row: out and
 * pre are column blocks of rows ldo apart, and the columns outside must come back untouched).
 * with_pre 0: the GELU_BIAS form that writes out alone. In fp32 the tolerance is tight enough to
 * tell the tanh form from erf's (they differ by up to 4.7e-4 near x = -2.7). */
static void test_matmul_gelu(enum dtype dt, const struct shape *s, int OC, int ldo, int with_bias,
                             int with_pre, int ws, uint64_t seed)
{
    rng_seed(seed);
    int N = s->B * s->T, C = s->C;
    size_t es = dtype_size(dt), nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * ldo;
    size_t col = (size_t)(ldo - OC) / 2;
    char name[96];
    /* weights of this range give pre-activations of standard deviation about 2 */
    void *inp = hrand(dt, nin, -1, 1), *w = hrand(dt, nw, -0.6f, 0.6f);
    void *b = with_bias ? hrand(dt, OC, -1, 1) : NULL;
    void *out = hrand(dt, nout, -1, 1), *pre = hrand(dt, nout, -1, 1);
    void *d_out = upload(out, nout * es), *d_pre = with_pre ? upload(pre, nout * es) : NULL;
    matmul_forward_cpu((char *)pre + col * es, inp, w, b, N, C, OC, ldo, dt);
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * ldo + col) * es;
        gelu_forward_cpu((char *)out + off, (char *)pre + off, OC, dt);
    }
    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    matmul_forward_gelu_cuda(blas, (char *)d_out + col * es,
                             d_pre ? (char *)d_pre + col * es : NULL, upload(inp, nin * es),
                             upload(w, nw * es), b ? upload(b, OC * es) : NULL, N, C, OC, ldo, dt,
                             ws_ptr(ws), ws_bytes(ws), stream);
    const char *how = fusion(problems, unfused);
    snprintf(name, sizeof name, "matmul_forward_gelu OC%d ldo%d%s%s%s out (%s)", OC, ldo,
             with_bias ? " bias" : "", with_pre ? " pre" : "", ws ? " ws" : "", how);
    compare(label(name, s), dt, download(d_out, nout * es), out, nout, TOL_REDUCTION[dt]);
    if (with_pre) {
        snprintf(name, sizeof name, "matmul_forward_gelu OC%d ldo%d pre", OC, ldo);
        compare(label(name, s), dt, download(d_pre, nout * es), pre, nout, TOL_REDUCTION[dt]);
    }
    release();
}

/* matmul_backward_dgelu_cuda (the MLP's second layer, C inputs, OC outputs) against
 * matmul_backward_cpu into a zeroed dinp, gelu_backward_cpu into a zeroed dpre, and the column
 * sums of dpre added to dbias_pre. dpre starts as NaN: it must be overwritten. */
static void test_matmul_dgelu(enum dtype dt, const struct shape *s, int C, int OC, int with_bias,
                              int ws, uint64_t seed)
{
    rng_seed(seed);
    int N = s->B * s->T;
    size_t es = dtype_size(dt), nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
    char name[96];
    void *pre = hrand(dt, nin, -3, 3), *inp = hmalloc(nin * es);
    gelu_forward_cpu(inp, pre, nin, dt);
    void *w = hrand(dt, nw, -0.2f, 0.2f), *dout = hrand(dt, nout, -1, 1);
    void *dw = hrand(dt, nw, -1, 1);
    void *db = with_bias ? hrand(dt, OC, -1, 1) : NULL;
    void *dbp = with_bias ? hrand(dt, C, -1, 1) : NULL;
    void *d_dw = upload(dw, nw * es), *d_dw2 = upload(dw, nw * es);
    void *d_db = db ? upload(db, OC * es) : NULL, *d_db2 = db ? upload(db, OC * es) : NULL;
    void *d_dbp = dbp ? upload(dbp, C * es) : NULL, *d_dbp2 = dbp ? upload(dbp, C * es) : NULL;
    void *d_dpre = dmalloc(nin * es), *d_dpre2 = dmalloc(nin * es);
    void *d_dout = upload(dout, nout * es), *d_inp = upload(inp, nin * es);
    void *d_w = upload(w, nw * es), *d_pre = upload(pre, nin * es);
    void *scratch = dmalloc(matmul_backward_dgelu_cuda_scratch_bytes(N, C, OC));

    void *dinp = hmalloc(nin * es), *dpre = hmalloc(nin * es);
    memset(dinp, 0, nin * es); /* zero in every dtype */
    memset(dpre, 0, nin * es);
    matmul_backward_cpu(dinp, dt, dw, db, dout, inp, w, N, C, OC, OC, dt, 0);
    gelu_backward_cpu(dpre, pre, dinp, nin, dt);
    if (dbp)
        for (int c = 0; c < C; c++) {
            float sum = 0.0f;
            for (int n = 0; n < N; n++)
                sum += (float)dtype_load(dt, dpre, (size_t)n * C + c);
            dtype_store(dt, dbp, c, (float)dtype_load(dt, dbp, c) + sum);
        }

    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    matmul_backward_dgelu_cuda(blas, d_dpre, d_dw, d_db, d_dbp, d_dout, d_inp, d_w, d_pre, N, C, OC,
                               dt, 0, scratch, ws_ptr(ws), ws_bytes(ws), stream);
    const char *how = fusion(problems, unfused);
    matmul_backward_dgelu_cuda(blas, d_dpre2, d_dw2, d_db2, d_dbp2, d_dout, d_inp, d_w, d_pre, N, C,
                               OC, dt, 0, scratch, ws_ptr(ws), ws_bytes(ws), stream);
    snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d%s deterministic", C, OC,
             ws ? " ws" : "");
    expect(memcmp(download(d_dpre, nin * es), download(d_dpre2, nin * es), nin * es) == 0 &&
               memcmp(download(d_dw, nw * es), download(d_dw2, nw * es), nw * es) == 0 &&
               (!db || memcmp(download(d_db, OC * es), download(d_db2, OC * es), OC * es) == 0) &&
               (!dbp || memcmp(download(d_dbp, C * es), download(d_dbp2, C * es), C * es) == 0),
           label(name, s));
    /* set MATMUL_SET_DWEIGHT: dweight written over NaNs, the bits of adding onto zeros */
    void *d_sw = dmalloc(nw * es), *d_zw = dmalloc(nw * es);
    CUDA_CHECK(cudaMemset(d_zw, 0, nw * es));
    matmul_backward_dgelu_cuda(blas, d_dpre2, d_sw, NULL, NULL, d_dout, d_inp, d_w, d_pre, N, C, OC,
                               dt, MATMUL_SET_DWEIGHT, scratch, ws_ptr(ws), ws_bytes(ws), stream);
    matmul_backward_dgelu_cuda(blas, d_dpre2, d_zw, NULL, NULL, d_dout, d_inp, d_w, d_pre, N, C, OC,
                               dt, 0, scratch, ws_ptr(ws), ws_bytes(ws), stream);
    snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d%s set: as added onto zeros", C, OC,
             ws ? " ws" : "");
    expect(memcmp(download(d_sw, nw * es), download(d_zw, nw * es), nw * es) == 0, label(name, s));
    snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d%s dpre (%s)", C, OC,
             ws ? " ws" : "", how);
    compare(label(name, s), dt, download(d_dpre, nin * es), dpre, nin, TOL_REDUCTION[dt]);
    /* fp32 only: the activations reach 3, so dweight's partial sums are about three times those
     * of test_matmul (7.3e-5 off on an H100 at N 512), and dbias_pre sums N rows of dpre, each a
     * little off the CPU's (cuBLASLt computes its own gelu' in the epilogue): 2.3e-4 off there.
     * 16-bit types keep TOL_REDUCTION, and dbias_pre gets more: cuBLASLt's DGELU_BGRAD sums the
     * fp32 products before they are rounded, the reference the rounded dpre, whose every term is
     * two roundings (dinp's and dpre's, 2^-11 each in fp16, 2^-8 in bf16) from the unrounded
     * one: at most that share of the column's sum of |dpre| apart (1.6 and 5.5 times
     * TOL_REDUCTION over 74 and 512 rows on an H100 before this bound). */
    struct tol tw = dt == DTYPE_FP32 ? (struct tol){1.5e-4, 1e-4} : TOL_REDUCTION[dt];
    struct tol tbp = dt == DTYPE_FP32 ? (struct tol){5e-4, 1e-4} : TOL_REDUCTION[dt];
    double *abs_sums = calloc((size_t)C, sizeof *abs_sums);
    double u = dt == DTYPE_FP32 ? 0.0 : dt == DTYPE_FP16 ? 0x1p-10 : 0x1p-7; /* 2 roundings */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            abs_sums[c] += u * fabs(dtype_load(dt, dpre, (size_t)n * C + c));
    snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d dweight", C, OC);
    compare(label(name, s), dt, download(d_dw, nw * es), dw, nw, tw);
    if (with_bias) {
        snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d dbias", C, OC);
        compare(label(name, s), dt, download(d_db, OC * es), db, OC, TOL_REDUCTION[dt]);
        snprintf(name, sizeof name, "matmul_backward_dgelu C%d OC%d dbias_pre", C, OC);
        compare_extra(label(name, s), dt, download(d_dbp, C * es), dbp, C, tbp, abs_sums);
    }
    free(abs_sums);
    release();
}

/* add_layernorm_forward_cuda against add_layernorm_forward_cpu: res to the bit (one rounding of
 * the same sum), out and the statistics within the reduction tolerances. in_place: res is a.
 * off = 1 shifts every tensor one element, off the 16-byte path. */
static void test_add_layernorm(enum dtype dt, const struct shape *s, int in_place, size_t off,
                               uint64_t seed)
{
    rng_seed(seed);
    int N = s->B * s->T, C = s->C;
    size_t es = dtype_size(dt), nx = (size_t)N * C, bx = nx * es;
    char name[96];
    void *a = hrand(dt, nx, -1.5f, 2.5f), *b = hrand(dt, nx, -1, 1);
    void *w = hrand(dt, C, 0.5f, 1.5f), *bias = hrand(dt, C, -0.5f, 0.5f);
    void *d_a = upload_at(a, bx, off * es), *d_b = upload_at(b, bx, off * es);
    void *d_res = in_place ? d_a : (char *)dmalloc(bx + off * es) + off * es;
    void *d_out = (char *)dmalloc(bx + off * es) + off * es;
    float *d_mean = dmalloc(N * sizeof(float)), *d_rstd = dmalloc(N * sizeof(float));
    add_layernorm_forward_cuda(d_res, d_out, d_mean, d_rstd, d_a, d_b,
                               upload_at(w, C * es, off * es), upload_at(bias, C * es, off * es), N,
                               C, dt, stream);
    void *res = in_place ? a : hmalloc(bx), *out = hmalloc(bx);
    float *mean = hmalloc(N * sizeof(float)), *rstd = hmalloc(N * sizeof(float));
    add_layernorm_forward_cpu(res, out, mean, rstd, a, b, w, bias, N, C, dt);
    snprintf(name, sizeof name, "add_layernorm res%s off%zu", in_place ? " in place" : "", off);
    compare(label(name, s), dt, download(d_res, bx), res, nx, (struct tol){0.0, 0.0});
    snprintf(name, sizeof name, "add_layernorm out%s off%zu", in_place ? " in place" : "", off);
    compare(label(name, s), dt, download(d_out, bx), out, nx, TOL_REDUCTION[dt]);
    compare(label("add_layernorm mean", s), DTYPE_FP32, download(d_mean, N * sizeof(float)), mean,
            N, TOL_STATS);
    compare(label("add_layernorm rstd", s), DTYPE_FP32, download(d_rstd, N * sizeof(float)), rstd,
            N, TOL_STATS);
    release();
}

/* attention.cu's cuBLAS path (the one for what the flash kernels do not take; those have
 * test_flash_attention) against flash_attention_*_cpu, on the same out and stats contract */
static void test_attention(enum dtype dt, const struct shape *s, uint64_t seed)
{
    rng_seed(seed);
    int B = s->B, T = s->T, C = s->C, NH = s->NH, N = B * T;
    size_t es = dtype_size(dt), nqkv = (size_t)N * 3 * C, nout = (size_t)N * C;
    size_t nstats = (size_t)B * NH * T * 2, sbytes = nstats * sizeof(float);
    /* q and k of this range give scores of standard deviation about 1: peaked but not one-hot */
    void *qkv = hrand(dt, nqkv, -2, 2);
    void *out = hmalloc(nout * es);
    float *stats = hmalloc(sbytes);
    flash_attention_forward_cpu(out, stats, qkv, B, T, C, NH, dt);
    void *d_qkv = upload(qkv, nqkv * es), *d_out = dmalloc(nout * es);
    float *d_stats = dmalloc(sbytes);
    attention_forward_cuda(blas, d_out, d_stats, d_qkv, B, T, C, NH, dt,
                           dmalloc(attention_forward_cuda_scratch_bytes(B, T, C, NH, dt)), stream);
    compare(label("attention_forward out", s), dt, download(d_out, nout * es), out, nout,
            TOL_REDUCTION[dt]);
    compare(label("attention_forward stats", s), DTYPE_FP32, download(d_stats, sbytes), stats,
            nstats, TOL_ATT_STATS);

    /* both backwards read the CPU's out and stats, so only the backward is compared */
    void *dqkv = hrand(dt, nqkv, -1, 1), *dout = hrand(dt, nout, -1, 1);
    void *d_dqkv = upload(dqkv, nqkv * es);
    flash_attention_backward_cpu(dqkv, dout, qkv, out, stats, B, T, C, NH, dt);
    attention_backward_cuda(
        blas, d_dqkv, upload(dout, nout * es), d_qkv, upload(stats, sbytes), B, T, C, NH, dt,
        dmalloc(attention_backward_cuda_scratch_bytes(B, T, C, NH, dt)), stream);
    compare(label("attention_backward dqkv", s), dt, download(d_dqkv, nqkv * es), dqkv, nqkv,
            TOL_REDUCTION[dt]);
    release();
}

/* off = 1 shifts every pointer by one element, off the 16-byte vector path. */
static void test_elementwise(enum dtype dt, size_t off, uint64_t seed)
{
    rng_seed(seed);
    size_t n = 10007, es = dtype_size(dt), bytes = (n + off) * es;
    char name[64];
    void *x = hrand(dt, n + off, -4, 4), *y = hrand(dt, n + off, -4, 4);
    void *acc = hrand(dt, n + off, -1, 1);
    void *d_x = upload(x, bytes), *d_y = upload(y, bytes);
    char *hx = (char *)x + off * es, *hy = (char *)y + off * es;
    char *dx = (char *)d_x + off * es, *dy = (char *)d_y + off * es;

    void *out = hmalloc(bytes), *d_out = dmalloc(bytes);
    gelu_forward_cpu((char *)out + off * es, hx, n, dt);
    gelu_forward_cuda((char *)d_out + off * es, dx, n, dt, stream);
    snprintf(name, sizeof name, "gelu_forward n%zu offset %zu", n, off);
    compare(name, dt, (char *)download(d_out, bytes) + off * es, (char *)out + off * es, n,
            TOL_ELEMENTWISE[dt]);

    void *dinp = hclone(acc, bytes), *d_dinp = upload(acc, bytes);
    gelu_backward_cpu((char *)dinp + off * es, hx, hy, n, dt);
    gelu_backward_cuda((char *)d_dinp + off * es, dx, dy, n, dt, stream);
    snprintf(name, sizeof name, "gelu_backward n%zu offset %zu", n, off);
    compare(name, dt, (char *)download(d_dinp, bytes) + off * es, (char *)dinp + off * es, n,
            TOL_ELEMENTWISE[dt]);

    add_forward_cpu((char *)out + off * es, hx, hy, n, dt);
    add_forward_cuda((char *)d_out + off * es, dx, dy, n, dt, stream);
    snprintf(name, sizeof name, "add_forward n%zu offset %zu", n, off);
    compare(name, dt, (char *)download(d_out, bytes) + off * es, (char *)out + off * es, n,
            TOL_ELEMENTWISE[dt]);
    release();
}

static void test_crossentropy(enum dtype dt, int N, int V, int Vp, uint64_t seed)
{
    rng_seed(seed);
    size_t es = dtype_size(dt), nl = (size_t)N * Vp;
    char name[64];
    void *logits = hrand(dt, nl, -4, 4);
    /* padding columns hold huge logits: any that takes part ruins the softmax */
    for (int n = 0; n < N; n++)
        for (int v = V; v < Vp; v++)
            dtype_store(dt, logits, (size_t)n * Vp + v, 30000.0f);
    int32_t *tgt = hrand_tokens(N, V);
    float *loss = hmalloc(N * sizeof(float));
    crossentropy_forward_cpu(loss, logits, tgt, N, V, Vp, dt);
    void *d_logits = upload(logits, nl * es);
    int32_t *d_tgt = upload(tgt, N * sizeof(int32_t));
    float *d_loss = dmalloc(N * sizeof(float));
    crossentropy_forward_cuda(d_loss, d_logits, d_tgt, N, V, Vp, dt, stream);
    snprintf(name, sizeof name, "crossentropy_forward N%d V%d Vp%d", N, V, Vp);
    compare(name, DTYPE_FP32, download(d_loss, N * sizeof(float)), loss, N, TOL_STATS);

    float dloss = 1.7f / N;
    void *dl = hmalloc(nl * es), *d_dl = dmalloc(nl * es);
    crossentropy_backward_cpu(dl, logits, tgt, dloss, N, V, Vp, dt);
    crossentropy_backward_cuda(d_dl, d_logits, d_tgt, dloss, N, V, Vp, dt, stream);
    snprintf(name, sizeof name, "crossentropy_backward N%d V%d Vp%d", N, V, Vp);
    compare(name, dt, download(d_dl, nl * es), dl, nl, TOL_ELEMENTWISE[dt]);
    crossentropy_backward_cuda(d_logits, d_logits, d_tgt, dloss, N, V, Vp, dt, stream);
    snprintf(name, sizeof name, "crossentropy_backward in place N%d V%d", N, V);
    compare(name, dt, download(d_logits, nl * es), dl, nl, TOL_ELEMENTWISE[dt]);
    release();
}

/* bad: 0 finite inputs, 1 one +inf, 2 one NaN. */
static void test_sumsq(enum dtype dt, size_t off, int bad, uint64_t seed)
{
    rng_seed(seed);
    size_t n = 100003, es = dtype_size(dt);
    char name[64];
    void *g = hrand(dt, n + off, -1, 1);
    if (bad) dtype_store(dt, g, off + n / 3, bad == 1 ? INFINITY : NAN);
    float out = 1.5f;
    sumsq_cpu(&out, (char *)g + off * es, n, dt);
    float start = 1.5f;
    float *d_out = upload(&start, sizeof(float));
    void *d_g = upload(g, (n + off) * es);
    void *scratch = dmalloc(sumsq_cuda_scratch_bytes(n));
    sumsq_cuda(d_out, (char *)d_g + off * es, n, dt, scratch, stream);
    float got = *(float *)download(d_out, sizeof(float));
    /* a second run from the same start must give the same bits */
    CUDA_CHECK(cudaMemcpy(d_out, &start, sizeof(float), cudaMemcpyHostToDevice));
    sumsq_cuda(d_out, (char *)d_g + off * es, n, dt, scratch, stream);
    float again = *(float *)download(d_out, sizeof(float));
    snprintf(name, sizeof name, "sumsq n%zu offset %zu%s", n, off,
             bad == 1   ? " with inf"
             : bad == 2 ? " with nan"
                        : "");
    if (bad) {
        char what[96];
        snprintf(what, sizeof what, "%s %s non-finite", name, dtype_name(dt));
        expect(!isfinite(got) && !isfinite(out), what);
    } else {
        compare(name, DTYPE_FP32, &got, &out, 1, TOL_STATS);
        char what[96];
        snprintf(what, sizeof what, "%s %s deterministic", name, dtype_name(dt));
        expect(memcmp(&got, &again, sizeof got) == 0, what);
    }
    release();
}

/* sumsq_multi_cuda over a layer-like group (sizes from 1 element to several grid-fulls, one empty,
 * some at unaligned addresses, one past SUMSQ_BLOCKS_MAX blocks) gives each slot the bits of
 * sumsq_cuda on that tensor alone, and the CPU's sum within TOL_STATS. */
static void test_sumsq_multi(enum dtype dt, uint64_t seed)
{
    enum { K = 7 };
    static const size_t n[K] = {4097 * 1024 + 5, 1, 0, 3 * 1024, 100003, 64, 20000000};
    static const size_t off[K] = {0, 1, 0, 3, 0, 5, 0};
    size_t es = dtype_size(dt), total = 0, at[K];
    rng_seed(seed);
    for (int i = 0; i < K; i++) {
        at[i] = total;
        total += n[i] + off[i] + 8;
    }
    void *g = hrand(dt, total, -1, 1);
    void *d_g = upload(g, total * es);
    float start[K], cpu[K];
    const void *grads[K];
    for (int i = 0; i < K; i++) {
        start[i] = 0.25f * (float)i;
        cpu[i] = start[i];
        sumsq_cpu(&cpu[i], (char *)g + (at[i] + off[i]) * es, n[i], dt);
        grads[i] = (char *)d_g + (at[i] + off[i]) * es;
    }
    float *d_multi = upload(start, sizeof start), *d_one = upload(start, sizeof start);
    void *scratch = dmalloc(sumsq_multi_cuda_scratch_bytes(n, K));
    sumsq_multi_cuda(d_multi, grads, n, K, dt, scratch, stream);
    for (int i = 0; i < K; i++)
        sumsq_cuda(d_one + i, grads[i], n[i], dt, scratch, stream);
    float *multi = download(d_multi, sizeof start), *one = download(d_one, sizeof start);
    char what[96];
    snprintf(what, sizeof what, "sumsq_multi %d tensors %s: each slot as sumsq_cuda alone", K,
             dtype_name(dt));
    expect(memcmp(multi, one, sizeof start) == 0, what);
    compare("sumsq_multi against the CPU", DTYPE_FP32, multi, cpu, K, TOL_STATS);
    release();
}

/* The sum of the per-tensor slots into the global sum of squares: the same bits on both. */
static void test_sum(uint64_t seed)
{
    rng_seed(seed);
    size_t n = 341;
    float *x = hrand(DTYPE_FP32, n, 0, 1000), out = 0, *d_out = dmalloc(sizeof(float));
    sum_cpu(&out, x, n);
    sum_cuda(d_out, upload(x, n * sizeof(float)), n, stream);
    expect(memcmp(download(d_out, sizeof(float)), &out, sizeof out) == 0,
           "sum of 341 slots: the same bits on GPU and CPU");
    release();
}

enum adamw_case { ADAMW_PLAIN, ADAMW_CLIP, ADAMW_SKIP, ADAMW_NO_PARAM, ADAMW_NO_NORM };

static void test_adamw(enum dtype dt, enum adamw_case which, uint64_t seed)
{
    static const char *names[] = {"adamw", "adamw clip", "adamw skip (inf norm)",
                                  "adamw master only", "adamw without a norm (sumsq NULL)"};
    rng_seed(seed);
    size_t n = 10007, es = dtype_size(dt), fb = n * sizeof(float);
    const float loss_scale = 1024.0f;
    void *grad = hrand(dt, n, -loss_scale, loss_scale);
    float *master = hrand(DTYPE_FP32, n, -1, 1), *m = hrand(DTYPE_FP32, n, -0.01f, 0.01f);
    float *v = hrand(DTYPE_FP32, n, 0.0f, 1e-4f);
    void *param = hmalloc(n * es);
    dtype_from_f32(dt, master, param, n);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = dtype_load(dt, grad, i);
        ss += x * x;
    }
    float sumsq = which == ADAMW_SKIP ? INFINITY : (float)ss;
    float norm = sqrtf((float)ss) / loss_scale;
    struct adamw_hparams hp = {.lr = 1e-3f,
                               .beta1 = 0.9f,
                               .beta2 = 0.95f,
                               .eps = 1e-8f,
                               .weight_decay = 0.1f,
                               .step = 3,
                               .inv_loss_scale = 1.0f / loss_scale,
                               .clip_norm = which == ADAMW_CLIP ? 0.25f * norm : 0.0f};
    void *d_param = which == ADAMW_NO_PARAM ? NULL : upload(param, n * es);
    float *d_master = upload(master, fb), *d_m = upload(m, fb), *d_v = upload(v, fb);
    int no_norm = which == ADAMW_NO_NORM;
    adamw_cpu(which == ADAMW_NO_PARAM ? NULL : param, master, m, v, grad, no_norm ? NULL : &sumsq,
              n, &hp, dt);
    adamw_cuda(d_param, d_master, d_m, d_v, upload(grad, n * es),
               no_norm ? NULL : upload(&sumsq, sizeof(float)), n, &hp, dt, stream);
    char name[64];
    struct tol tf = dt == DTYPE_FP32 ? TOL_ADAMW_FP32 : TOL_STATS;
    snprintf(name, sizeof name, "%s master", names[which]);
    compare(name, DTYPE_FP32, download(d_master, fb), master, n, tf);
    snprintf(name, sizeof name, "%s m", names[which]);
    compare(name, DTYPE_FP32, download(d_m, fb), m, n, tf);
    snprintf(name, sizeof name, "%s v", names[which]);
    compare(name, DTYPE_FP32, download(d_v, fb), v, n, tf);
    if (d_param) {
        snprintf(name, sizeof name, "%s param", names[which]);
        compare(name, dt, download(d_param, n * es), param, n, TOL_ELEMENTWISE[dt]);
    }
    release();
}

/* adamw_multi_cuda over 70 tensors (two launches; sizes from 0 to several chunks, not multiples
 * of 4, some without param, some not aligned for its 4-element loads, weight decay on every other
 * one) against adamw_cuda on each: the same bits; and against adamw_cpu on each within the adamw
 * tolerances. */
static void test_adamw_multi(enum dtype dt, enum adamw_case which, uint64_t seed)
{
    enum { NT = 70 };
    static const size_t sizes[] = {2048, 1, 0, 65536, 65537, 200003, 777, 6144};
    rng_seed(seed);
    size_t es = dtype_size(dt);
    const float loss_scale = 1024.0f;
    struct adamw_tensor multi[NT], single[NT];
    void *h_param[NT], *h_grad[NT];
    float *h_master[NT], *h_m[NT], *h_v[NT];
    double ss = 0.0;
    for (int t = 0; t < NT; t++) {
        size_t n = sizes[t % 8] + (size_t)t;
        if (t % 8 == 2) n = 0;
        size_t fb = n * sizeof(float);
        h_grad[t] = hrand(dt, n, -loss_scale, loss_scale);
        h_master[t] = hrand(DTYPE_FP32, n, -1, 1);
        h_m[t] = hrand(DTYPE_FP32, n, -0.01f, 0.01f);
        h_v[t] = hrand(DTYPE_FP32, n, 0.0f, 1e-4f);
        h_param[t] = t % 5 == 4 ? NULL : hmalloc(n * es);
        if (h_param[t]) dtype_from_f32(dt, h_master[t], h_param[t], n);
        for (size_t i = 0; i < n; i++) {
            double x = dtype_load(dt, h_grad[t], i);
            ss += x * x;
        }
        for (int k = 0; k < 2; k++) {
            struct adamw_tensor *x = k ? &single[t] : &multi[t];
            x->param = h_param[t] ? upload(h_param[t], n * es) : NULL;
            /* every 7th tensor's master one element off 16-byte alignment: one element a thread */
            x->master = upload_at(h_master[t], fb, t % 7 == 3 ? sizeof(float) : 0);
            x->m = upload(h_m[t], fb);
            x->v = upload(h_v[t], fb);
            x->grad = upload(h_grad[t], n * es);
            x->n = n;
            x->weight_decay = t % 2 ? 0.1f : 0.0f;
        }
    }
    float norm = sqrtf((float)ss) / loss_scale;
    float sumsq = which == ADAMW_SKIP ? INFINITY : (float)ss;
    struct adamw_hparams hp = {.lr = 1e-3f,
                               .beta1 = 0.9f,
                               .beta2 = 0.95f,
                               .eps = 1e-8f,
                               .weight_decay = 12345.0f, /* unused by the multi-tensor step */
                               .step = 5,
                               .inv_loss_scale = 1.0f / loss_scale,
                               .clip_norm = which == ADAMW_CLIP ? 0.25f * norm : 0.0f};
    const float *d_sumsq = which == ADAMW_NO_NORM ? NULL : upload(&sumsq, sizeof sumsq);
    adamw_multi_cuda(multi, NT, d_sumsq, &hp, dt, stream);
    int same = 1;
    for (int t = 0; t < NT; t++) {
        struct adamw_hparams h = hp;
        h.weight_decay = single[t].weight_decay;
        struct adamw_tensor *x = &single[t], *y = &multi[t];
        adamw_cuda(x->param, x->master, x->m, x->v, x->grad, d_sumsq, x->n, &h, dt, stream);
        adamw_cpu(h_param[t], h_master[t], h_m[t], h_v[t], h_grad[t],
                  which == ADAMW_NO_NORM ? NULL : &sumsq, x->n, &h, dt);
        size_t fb = x->n * sizeof(float);
        float *ptrs[3][2] = {{x->master, y->master}, {x->m, y->m}, {x->v, y->v}};
        for (int k = 0; k < 3; k++)
            same &= memcmp(download(ptrs[k][0], fb), download(ptrs[k][1], fb), fb) == 0;
        if (x->param)
            same &= memcmp(download(x->param, x->n * es), download(y->param, x->n * es),
                           x->n * es) == 0;
        struct tol tf = dt == DTYPE_FP32 ? TOL_ADAMW_FP32 : TOL_STATS;
        char name[64];
        snprintf(name, sizeof name, "adamw_multi tensor %d master", t);
        if (t % 16 == 5) /* a sample of the tensors against the CPU: printing all is noise */
            compare(name, DTYPE_FP32, download(y->master, fb), h_master[t], x->n, tf);
    }
    static const char *names[] = {"", " clip", " skip (inf norm)", "", " without a norm"};
    char what[96];
    snprintf(what, sizeof what, "adamw_multi%s = adamw_cuda, bits %s", names[which],
             dtype_name(dt));
    expect(same, what);
    release();
}

static void test_cast(enum dtype dst_dt, enum dtype src_dt, uint64_t seed)
{
    rng_seed(seed);
    size_t n = 1001;
    /* some values overflow fp16 (to inf) and some are tiny (fp16 subnormals) */
    void *src = hrand(src_dt, n, -1, 1);
    for (size_t i = 0; i < n; i += 7)
        dtype_store(src_dt, src, i, rng_uniform(-90000, 90000));
    for (size_t i = 3; i < n; i += 11)
        dtype_store(src_dt, src, i, rng_uniform(-1e-6f, 1e-6f));
    size_t db = n * dtype_size(dst_dt);
    void *dst = hmalloc(db), *d_dst = dmalloc(db);
    cast_cpu(dst, dst_dt, src, src_dt, n);
    cast_cuda(d_dst, dst_dt, upload(src, n * dtype_size(src_dt)), src_dt, n, stream);
    char name[64];
    snprintf(name, sizeof name, "cast from %s", dtype_name(src_dt));
    compare(name, dst_dt, download(d_dst, db), dst, n, (struct tol){0.0, 0.0});
    release();
}

int main(void)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        printf("test_cuda_vs_cpu: skipped: no CUDA device (%s)\n",
               err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
        return 77;
    }
    CUDA_CHECK(cudaStreamCreate(&stream));
    CHECK_MSG(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
    CHECK_MSG(cublasSetStream(blas, stream) == CUBLAS_STATUS_SUCCESS, "cublasSetStream failed");
    CUDA_CHECK(cudaMalloc(&workspace, MATMUL_CUDA_WORKSPACE_BYTES));

    for (int d = 0; d < 3; d++) {
        enum dtype dt = DTYPES[d];
        uint64_t base = 1000 * (uint64_t)(d + 1);
        for (int k = 0; k < 2; k++) {
            const struct shape *s = &SHAPES[k];
            test_encoder(dt, s, base + 10 + k);
            test_layernorm(dt, s, base + 20 + k);
            test_matmul(dt, s, 3 * s->C, 3 * s->C, 1, 0, base + 30 + k);
            test_matmul(dt, s, 3 * s->C, 3 * s->C, 1, 1, base + 35 + k);
            test_matmul(dt, s, s->C + 7, s->C + 7, 0, k, base + 40 + k);
            test_matmul(dt, s, s->C + 7, 3 * s->C + 5, 1, k, base + 45 + k);
            test_matmul_gelu(dt, s, 4 * s->C, 4 * s->C, 1, 1, 1, base + 110 + k);
            test_matmul_gelu(dt, s, 4 * s->C, 4 * s->C, 1, 0, 0, base + 112 + k);
            test_matmul_gelu(dt, s, 2 * s->C, 4 * s->C + 8, 0, 1, k, base + 114 + k);
            /* pre's rows 4C + 4 apart: not a multiple of 8, cuBLASLt's GELU buffer needs one */
            test_matmul_gelu(dt, s, 2 * s->C, 4 * s->C + 4, 1, 1, 1, base + 116 + k);
            test_matmul_dgelu(dt, s, 4 * s->C, s->C, 1, 1, base + 120 + k);
            test_matmul_dgelu(dt, s, 4 * s->C, s->C, 0, 0, base + 122 + k);
            test_matmul_dgelu(dt, s, 4 * s->C + 4, s->C, 1, k, base + 124 + k);
            test_add_layernorm(dt, s, 0, 0, base + 130 + k);
            test_add_layernorm(dt, s, 1, 0, base + 132 + k);
            test_add_layernorm(dt, s, 0, 1, base + 134 + k);
            test_attention(dt, s, base + 50 + k);
        }
        test_elementwise(dt, 0, base + 60);
        test_elementwise(dt, 1, base + 61);
        test_crossentropy(dt, SHAPES[0].B * SHAPES[0].T, 1000, 1024, base + 70);
        test_crossentropy(dt, 64, 50257, 50304, base + 71);
        test_sumsq(dt, 0, 0, base + 80);
        test_sumsq(dt, 1, 0, base + 81);
        test_sumsq(dt, 0, 1, base + 82);
        test_sumsq(dt, 0, 2, base + 83);
        test_sumsq_multi(dt, base + 84);
        test_adamw(dt, ADAMW_PLAIN, base + 90);
        test_adamw(dt, ADAMW_CLIP, base + 91);
        test_adamw(dt, ADAMW_SKIP, base + 92);
        test_adamw(dt, ADAMW_NO_PARAM, base + 93);
        test_adamw(dt, ADAMW_NO_NORM, base + 94);
        test_adamw_multi(dt, ADAMW_PLAIN, base + 95);
        test_adamw_multi(dt, ADAMW_CLIP, base + 96);
        test_adamw_multi(dt, ADAMW_SKIP, base + 97);
        test_adamw_multi(dt, ADAMW_NO_NORM, base + 98);
        for (int s = 0; s < 3; s++)
            test_cast(dt, DTYPES[s], base + 100 + s);
    }
    test_sum(7);

    int problems, unfused;
    matmul_cuda_cache_stats(&problems, &unfused);
    printf("cuBLASLt products cached: %d, without an algorithm (unfused path): %d\n", problems,
           unfused);
    CUDA_CHECK(cudaFree(workspace));
    CHECK_MSG(cublasDestroy(blas) == CUBLAS_STATUS_SUCCESS, "cublasDestroy failed");
    CUDA_CHECK(cudaStreamDestroy(stream));
    printf("test_cuda_vs_cpu: %s (%d failed comparisons)\n", failures ? "FAIL" : "pass", failures);
    return failures ? 1 : 0;
}
