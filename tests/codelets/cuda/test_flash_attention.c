/* test_flash_attention.c: the CUDA flash attention kernels against their CPU reference
 * (flash_attention_*_cpu, which gives attention_*_cpu's bits), fp16 and bf16.
 *
 * Each case draws qkv uniform in [-2, 2) (scores of standard deviation about 1.3: peaked rows),
 * dout in [-1, 1) and a non-zero dqkv (the backward accumulates), rounds them to the dtype and
 * runs both sides on the same values. The forward's out and stats start as NaN bytes on the GPU,
 * so an unwritten element fails. The backward runs on the CPU forward's out and stats on both
 * sides, so its comparison sees the backward alone; a second GPU backward from the same start
 * must give the same bits (no atomics: fixed summation orders), and the backward that stores dqkv
 * (add 0) over the non-zero start the bits of one that adds to zeros. Shapes: head sizes 64 and
 * 128, T of 1, 37, 64 (one whole tile), 200 and 1024 (the 1.3B model's B 4 -> 2, T 1024, C 2048, NH
 * 16). Tolerance |got - ref| <= atol * max|ref| + rtol * |ref|: the kernels round P and dS to the
 * storage type as tensor-core operands and sum in another order, and the outputs then round once on
 * each side (1 ulp apart at worst); atol scales with the tensor's largest element since a sum's
 * rounding error scales with its terms, not with the sum. `--small` runs only the shapes with T <=
 * 200 (for compute-sanitizer). Exit 0 pass, 1 fail, 77 with no CUDA device or one the kernels do
 * not take (compute capability under 8.0). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "check.h"
#include "cuda_check.h"
#include "dtype.h"
#include "kernels_cpu.h"
#include "kernels_cuda.h"

struct tol {
    double atol, rtol; /* atol relative to max |ref| */
};

/* fp16: P rounded to 11 bits before P.V, 1 ulp of fp16 in the result; bf16: 8 bits. */
static const struct tol TOL_FP16 = {2e-3, 4e-3}, TOL_BF16 = {1.6e-2, 2e-2};
/* statistics: fp32 sums of the same products in another order, exp2 to 2^-22 */
static const struct tol TOL_STATS = {1e-5, 1e-4};

struct shape {
    int B, T, C, NH;
};
static const struct shape SHAPES[] = {
    {1, 1, 128, 1}, {2, 37, 128, 2}, {2, 64, 256, 2}, {1, 200, 256, 2}, {2, 1024, 2048, 16},
};

static cudaStream_t stream;
static int failures;

static uint64_t rng;

static float rng_uniform(float lo, float hi)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    uint32_t r = (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
    return lo + (hi - lo) * (r * 0x1p-32f);
}

static void *hrand(enum dtype dt, size_t n, float lo, float hi)
{
    void *p = malloc(n * dtype_size(dt));
    CHECK(p != NULL);
    for (size_t i = 0; i < n; i++)
        dtype_store(dt, p, i, rng_uniform(lo, hi));
    return p;
}

static void *upload(const void *h, size_t bytes)
{
    void *d;
    CUDA_CHECK(cudaMalloc(&d, bytes));
    CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* Device buffer of 0xff bytes: NaN in fp32, fp16 and bf16. */
static void *dpoison(size_t bytes)
{
    void *d;
    CUDA_CHECK(cudaMalloc(&d, bytes));
    CUDA_CHECK(cudaMemset(d, 0xff, bytes));
    return d;
}

static void *download(const void *d, size_t bytes)
{
    CUDA_CHECK(cudaStreamSynchronize(stream));
    CUDA_CHECK(cudaGetLastError());
    void *h = malloc(bytes);
    CHECK(h != NULL);
    CUDA_CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return h;
}

/* n elements of got against ref (both dt; fp32 for DTYPE_FP32); prints the worst one. */
static void compare(const char *what, enum dtype dt, const void *got, const void *ref, size_t n,
                    struct tol tol)
{
    double refmax = 0;
    for (size_t i = 0; i < n; i++)
        refmax = fmax(refmax, fabs(dtype_load(dt, ref, i)));
    double atol = tol.atol * refmax, maxerr = 0, worst_ratio = 0;
    size_t worst = 0, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = dtype_load(dt, got, i), r = dtype_load(dt, ref, i);
        double err = fabs(g - r), bound = atol + tol.rtol * fabs(r);
        double ratio = isnan(err) ? INFINITY : err / bound;
        if (!(err <= bound)) nbad++;
        if (isnan(err) || err > maxerr) maxerr = isnan(err) ? INFINITY : err;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    printf("%-52s %s max|ref| %-8.3g max|err| %-9.3g worst %5.2f of tol  %s\n", what,
           dtype_name(dt), refmax, maxerr, worst_ratio, nbad ? "FAIL" : "ok");
    if (nbad) {
        printf(
            "    %zu of %zu elements outside %g*%g + %g*|ref|; worst [%zu]: got %.9g, ref %.9g\n",
            nbad, n, tol.atol, refmax, tol.rtol, worst, dtype_load(dt, got, worst),
            dtype_load(dt, ref, worst));
        failures++;
    }
}

static void test_case(struct shape s, enum dtype dt, uint64_t seed)
{
    size_t es = dtype_size(dt);
    size_t nqkv = (size_t)s.B * s.T * 3 * s.C, nout = (size_t)s.B * s.T * s.C;
    size_t nstats = (size_t)s.B * s.NH * s.T * 2;
    struct tol tol = dt == DTYPE_FP16 ? TOL_FP16 : TOL_BF16;
    char what[128];
    rng = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    void *qkv = hrand(dt, nqkv, -2.0f, 2.0f), *dout = hrand(dt, nout, -1.0f, 1.0f);
    void *dqkv0 = hrand(dt, nqkv, -0.5f, 0.5f);
    void *out = malloc(nout * es), *dqkv = malloc(nqkv * es);
    float *stats = malloc(nstats * sizeof(float));
    CHECK(out && dqkv && stats);
    memcpy(dqkv, dqkv0, nqkv * es);
    flash_attention_forward_cpu(out, stats, qkv, s.B, s.T, s.C, s.NH, dt);
    flash_attention_backward_cpu(dqkv, dout, qkv, out, stats, s.B, s.T, s.C, s.NH, dt);

    void *d_qkv = upload(qkv, nqkv * es), *d_dout = upload(dout, nout * es);
    void *d_out = dpoison(nout * es), *d_stats = dpoison(nstats * sizeof(float));
    flash_attention_forward_cuda(d_out, d_stats, d_qkv, s.B, s.T, s.C, s.NH, dt, stream);
    void *g_out = download(d_out, nout * es), *g_stats = download(d_stats, nstats * 4);
    snprintf(what, sizeof what, "B%d T%d C%d NH%d forward out", s.B, s.T, s.C, s.NH);
    compare(what, dt, g_out, out, nout, tol);
    snprintf(what, sizeof what, "B%d T%d C%d NH%d forward stats (max, sum)", s.B, s.T, s.C, s.NH);
    compare(what, DTYPE_FP32, g_stats, stats, nstats, TOL_STATS);

    /* the backward on the CPU forward's out and stats */
    CUDA_CHECK(cudaMemcpy(d_out, out, nout * es, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_stats, stats, nstats * 4, cudaMemcpyHostToDevice));
    size_t sb = flash_attention_backward_cuda_scratch_bytes(s.B, s.T, s.C, s.NH, dt);
    void *d_scratch = dpoison(sb), *d_dqkv = upload(dqkv0, nqkv * es);
    flash_attention_backward_cuda(d_dqkv, d_dout, d_qkv, d_out, d_stats, s.B, s.T, s.C, s.NH, dt, 1,
                                  d_scratch, stream);
    void *g_dqkv = download(d_dqkv, nqkv * es);
    snprintf(what, sizeof what, "B%d T%d C%d NH%d backward dqkv (+=)", s.B, s.T, s.C, s.NH);
    compare(what, dt, g_dqkv, dqkv, nqkv, tol);
    CUDA_CHECK(cudaMemcpy(d_dqkv, dqkv0, nqkv * es, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(d_scratch, 0xff, sb));
    flash_attention_backward_cuda(d_dqkv, d_dout, d_qkv, d_out, d_stats, s.B, s.T, s.C, s.NH, dt, 1,
                                  d_scratch, stream);
    void *g_dqkv2 = download(d_dqkv, nqkv * es);
    int same = memcmp(g_dqkv, g_dqkv2, nqkv * es) == 0;
    snprintf(what, sizeof what, "B%d T%d C%d NH%d backward run twice, same bits", s.B, s.T, s.C,
             s.NH);
    printf("%-52s %s  %s\n", what, dtype_name(dt), same ? "ok" : "FAIL");
    failures += !same;
    /* add 0 over the non-zero dqkv0: the bits of add 1 into zeros, every element written */
    CUDA_CHECK(cudaMemset(d_dqkv, 0, nqkv * es));
    flash_attention_backward_cuda(d_dqkv, d_dout, d_qkv, d_out, d_stats, s.B, s.T, s.C, s.NH, dt, 1,
                                  d_scratch, stream);
    void *g_zero = download(d_dqkv, nqkv * es);
    CUDA_CHECK(cudaMemcpy(d_dqkv, dqkv0, nqkv * es, cudaMemcpyHostToDevice));
    flash_attention_backward_cuda(d_dqkv, d_dout, d_qkv, d_out, d_stats, s.B, s.T, s.C, s.NH, dt, 0,
                                  d_scratch, stream);
    void *g_set = download(d_dqkv, nqkv * es);
    same = memcmp(g_zero, g_set, nqkv * es) == 0;
    snprintf(what, sizeof what, "B%d T%d C%d NH%d backward stored = added to zeros", s.B, s.T, s.C,
             s.NH);
    printf("%-52s %s  %s\n", what, dtype_name(dt), same ? "ok" : "FAIL");
    failures += !same;

    void *host[] = {qkv,   dout,    dqkv0,  out,     dqkv,   stats,
                    g_out, g_stats, g_dqkv, g_dqkv2, g_zero, g_set};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
    void *dev[] = {d_qkv, d_dout, d_out, d_stats, d_scratch, d_dqkv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        CUDA_CHECK(cudaFree(dev[i]));
}

int main(int argc, char **argv)
{
    int small = argc > 1 && strcmp(argv[1], "--small") == 0, ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("skip: no CUDA device\n");
        return 77;
    }
    CUDA_CHECK(cudaSetDevice(0));
    if (!flash_attention_cuda_supported(128, 1, DTYPE_FP16)) {
        printf("skip: the flash attention kernels need compute capability 8.0 or newer\n");
        return 77;
    }
    CUDA_CHECK(cudaStreamCreate(&stream));
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        if (small && SHAPES[i].T > 200) continue;
        test_case(SHAPES[i], DTYPE_FP16, seed++);
        test_case(SHAPES[i], DTYPE_BF16, seed++);
    }
    /* what the launchers refuse, the query says */
    int refused = !flash_attention_cuda_supported(8192, 32, DTYPE_FP16) &&
                  !flash_attention_cuda_supported(2048, 16, DTYPE_FP32);
    printf("%-52s       %s\n", "head size 256 and fp32 reported unsupported",
           refused ? "ok" : "FAIL");
    failures += !refused;
    CUDA_CHECK(cudaStreamDestroy(stream));
    if (failures) {
        printf("test_flash_attention: %d failures\n", failures);
        return 1;
    }
    printf("test_flash_attention: ok\n");
    return 0;
}
