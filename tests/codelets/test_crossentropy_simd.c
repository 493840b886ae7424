/* test_crossentropy_simd.c: the cross-entropy kernels give the same bits on every ISA.
 *
 * For each ISA this CPU runs (cpu_isa.h), scalar included: the polynomial exp against libm's
 * expf over the whole range the kernels feed it ([ln(FLT_MIN), 0], plus -inf and NaN); then the
 * forward losses and backward gradients bit for bit against the scalar ISA on random logits with
 * ordinary rows, rows of huge spread, rows with -1e30 entries and a vocabulary that is not a
 * multiple of 16; then the same bits with 1 and 3 threads, and in place. With the argument "bench"
 * it also times the loss at GPT-2's vocabulary (N=512, V=50257, Vp=50304), printed, never asserted.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/crossentropy_simd.h"
#include "cpu_test.h"
#include "kernels_cpu.h"

#define N  48
#define V  1003 /* not a multiple of 8 or 16: every row has a masked tail */
#define VP 1024

static const struct ce_row_ops *row_ops(enum cpu_isa isa)
{
    return isa == CPU_ISA_AVX512 ? &ce_row_avx512
           : isa == CPU_ISA_AVX2 ? &ce_row_avx2
                                 : &ce_row_scalar;
}

/* exp(x) within 2e-7 relative of expf; below ln(FLT_MIN), where expf is subnormal and the kernel
 * gives 0, within FLT_MIN absolute. */
static int test_exp(enum cpu_isa isa)
{
    enum { NX = 1 << 20 };
    float *x = test_alloc(NX), *got = test_alloc(NX), *ref = test_alloc(NX);
    for (int i = 0; i < NX; i++) /* an even grid over [-90, 0] and then random points */
        x[i] = i < NX / 2 ? -90.0f * i / (NX / 2) : -45.0f * (1.0f + test_uniform());
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = -87.3365f;
    x[3] = -1e30f;
    x[4] = -INFINITY;
    for (int i = 0; i < NX; i++)
        ref[i] = expf(x[i]);
    row_ops(isa)->exp(got, x, NX, 0.0f);
    char what[96];
    snprintf(what, sizeof what, "%s exp vs expf", cpu_isa_name(isa));
    int fails = test_close(what, got, ref, NX, 1.1754944e-38, 2e-7);
    float nan_in[3] = {-1.0f, NAN, -2.0f}, nan_out[3];
    row_ops(isa)->exp(nan_out, nan_in, 3, 0.0f);
    if (!isnan(nan_out[1]) || got[4] != 0.0f || got[3] != 0.0f) {
        printf("FAIL %s exp: NaN gives %g, -1e30 gives %g, -inf gives %g\n", cpu_isa_name(isa),
               nan_out[1], got[3], got[4]);
        fails++;
    } else {
        printf("ok   %s exp: NaN stays NaN, -1e30 and -inf give 0\n", cpu_isa_name(isa));
    }
    free(x);
    free(got);
    free(ref);
    return fails;
}

static float *logits_f32;
static int32_t targets[N];

static void make_logits(void)
{
    logits_f32 = test_alloc((size_t)N * VP);
    for (int n = 0; n < N; n++) {
        float *l = logits_f32 + (size_t)n * VP;
        for (int i = 0; i < VP; i++) {
            float u = test_uniform();
            switch (n % 4) {
            case 0: /* ordinary */
                l[i] = 4.0f * u;
                break;
            case 1: /* huge spread: most exps underflow */
                l[i] = 300.0f * u;
                break;
            case 2: /* large offset, -inf-like entries */
                l[i] = i % 7 == 3 ? -1e30f : 1e4f + 10.0f * u;
                break;
            default: /* one dominant logit near the tail */
                l[i] = i == V - 2 ? 50.0f : u;
            }
        }
        for (int i = V; i < VP; i++)
            l[i] = NAN; /* padding is never read */
        /* never on a -1e30 logit, which fp16 holds as -inf (an infinite loss) */
        targets[n] = (int32_t)((unsigned)(n * 7919) % (V - 1));
        if (n % 4 == 2 && targets[n] % 7 == 3) targets[n]++;
    }
}

static int test_kernels(enum cpu_isa isa, enum dtype dt)
{
    size_t es = dtype_size(dt), nl = (size_t)N * VP;
    void *logits = test_to_dt(dt, logits_f32, nl);
    float ref_loss[N], got_loss[N];
    crossentropy_forward_cpu_isa(CPU_ISA_SCALAR, ref_loss, logits, targets, N, V, VP, dt);
    crossentropy_forward_cpu_isa(isa, got_loss, logits, targets, N, V, VP, dt);
    void *rd = test_nan_dt(dt, nl), *gd = test_nan_dt(dt, nl);
    crossentropy_backward_cpu_isa(CPU_ISA_SCALAR, rd, logits, targets, 1.0f, N, V, VP, dt);
    crossentropy_backward_cpu_isa(isa, gd, logits, targets, 1.0f, N, V, VP, dt);
    float *rdf = test_alloc(nl), *gdf = test_alloc(nl);
    dtype_to_f32(dt, rd, rdf, nl);
    dtype_to_f32(dt, gd, gdf, nl);
    char what[96];
    int fails = 0;
    snprintf(what, sizeof what, "%s %s forward vs scalar", cpu_isa_name(isa), dtype_name(dt));
    fails += test_same_bits(what, got_loss, ref_loss, sizeof got_loss);
    snprintf(what, sizeof what, "%s %s backward vs scalar", cpu_isa_name(isa), dtype_name(dt));
    fails += test_same_bits(what, gd, rd, nl * es);
    int pad_bad = 0;
    for (int n = 0; n < N; n++)
        for (int i = V; i < VP; i++)
            pad_bad += gdf[(size_t)n * VP + i] != 0.0f || signbit(gdf[(size_t)n * VP + i]);
    if (pad_bad) {
        printf("FAIL %s %s: %d padding gradients are not +0\n", cpu_isa_name(isa), dtype_name(dt),
               pad_bad);
        fails++;
    }

    /* the same bits with 1 and 3 threads, and in place */
    int maxt = omp_get_max_threads();
    float loss3[N];
    void *gd3 = test_nan_dt(dt, nl), *inplace = malloc(nl * es);
    CHECK(inplace != NULL);
    memcpy(inplace, logits, nl * es);
    omp_set_num_threads(1);
    crossentropy_forward_cpu_isa(isa, got_loss, logits, targets, N, V, VP, dt);
    crossentropy_backward_cpu_isa(isa, gd, logits, targets, 1.0f, N, V, VP, dt);
    omp_set_num_threads(3);
    crossentropy_forward_cpu_isa(isa, loss3, logits, targets, N, V, VP, dt);
    crossentropy_backward_cpu_isa(isa, gd3, logits, targets, 1.0f, N, V, VP, dt);
    crossentropy_backward_cpu_isa(isa, inplace, inplace, targets, 1.0f, N, V, VP, dt);
    omp_set_num_threads(maxt);
    snprintf(what, sizeof what, "%s %s forward, 1 vs 3 threads", cpu_isa_name(isa), dtype_name(dt));
    fails += test_same_bits(what, loss3, got_loss, sizeof loss3);
    snprintf(what, sizeof what, "%s %s backward, 1 vs 3 threads", cpu_isa_name(isa),
             dtype_name(dt));
    fails += test_same_bits(what, gd3, gd, nl * es);
    snprintf(what, sizeof what, "%s %s backward in place", cpu_isa_name(isa), dtype_name(dt));
    fails += test_same_bits(what, inplace, gd, nl * es);
    free(logits);
    free(rd);
    free(gd);
    free(gd3);
    free(inplace);
    free(rdf);
    free(gdf);
    return fails;
}

/* forward + backward at GPT-2's vocabulary, fp32, 1 thread and all threads */
static void bench(void)
{
    enum { BN = 512, BV = 50257, BVP = 50304, ITERS = 5 };
    size_t nl = (size_t)BN * BVP;
    float *logits = test_rand(nl, 5.0f), *dl = test_alloc(nl), *loss = test_alloc(BN);
    int32_t *tg = malloc(BN * sizeof *tg);
    CHECK(tg != NULL);
    for (int n = 0; n < BN; n++)
        tg[n] = (n * 7919) % BV;
    int maxt = omp_get_max_threads();
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) continue;
        for (int t = 1; t <= maxt; t = t < maxt ? maxt : maxt + 1) {
            omp_set_num_threads(t);
            double fwd = 0, bwd = 0;
            for (int it = 0; it < ITERS; it++) {
                double t0 = omp_get_wtime();
                crossentropy_forward_cpu_isa(isa, loss, logits, tg, BN, BV, BVP, DTYPE_FP32);
                double t1 = omp_get_wtime();
                crossentropy_backward_cpu_isa(isa, dl, logits, tg, 1.0f / BN, BN, BV, BVP,
                                              DTYPE_FP32);
                fwd += t1 - t0;
                bwd += omp_get_wtime() - t1;
            }
            printf("info %-6s %d thread%s: forward %7.2f ms  backward %7.2f ms  total %7.2f ms\n",
                   cpu_isa_name(isa), t, t > 1 ? "s" : " ", 1e3 * fwd / ITERS, 1e3 * bwd / ITERS,
                   1e3 * (fwd + bwd) / ITERS);
        }
    }
    omp_set_num_threads(maxt);
    free(logits);
    free(dl);
    free(loss);
    free(tg);
}

int main(int argc, char **argv)
{
    test_seed(1234);
    make_logits();
    int fails = 0;
    const enum dtype dts[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};
    for (int isa = CPU_ISA_SCALAR; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) {
            printf("note %s: not supported by this CPU, not tested\n", cpu_isa_name(isa));
            continue;
        }
        fails += test_exp(isa);
        for (int d = 0; d < 3; d++)
            fails += test_kernels(isa, dts[d]);
    }
    if (argc > 1 && strcmp(argv[1], "bench") == 0) bench();
    free(logits_f32);
    if (fails) printf("%d failure(s)\n", fails);
    return fails ? 1 : 0;
}
