/* test_flash_attention_cpu.c: the CPU attention kernels (statistics instead of the T x T
 * probabilities) against a double-precision reference and finite differences.
 *
 * 1. Values: out and the statistics (row max of the scaled scores, sum of exponentials) against a
 *    double-precision reference, |err| <= 1e-5 + 1e-5 |ref|, on shapes with head sizes 4 to 128
 *    and T not a multiple of any tile (5, 37, 67, 130).
 * 2. Gradient: the fp32 backward against central finite differences of sum(out * W), every
 *    element of qkv, |err| <= 2e-3 + 1e-2 |ref| (test_grad_cpu's tolerance).
 * Until the kernels that kept the probabilities (attention_*_cpu) were removed, this test also
 * checked that these give their bits in fp32, fp16 and bf16; the CPU fixtures of test_cli.sh
 * (tests/fixtures/bits_tiny.txt) hold those runs' bits since. Prints one line per check, the
 * worst element on a failure. Exit 0 pass, 1 fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

static int fails;

struct shape {
    int B, T, C, NH;
};

/* head sizes 4, 32, 64, 128; T 5, 37, 67, 130 */
static const struct shape SHAPES[] = {
    {2, 5, 8, 2}, {2, 37, 96, 3}, {1, 67, 128, 2}, {1, 130, 256, 2}};

/* 1. fp32 forward against double precision */
static void test_values(struct shape s, uint64_t seed)
{
    int hs = s.C / s.NH, C3 = 3 * s.C;
    size_t nqkv = (size_t)s.B * s.T * C3, nout = (size_t)s.B * s.T * s.C;
    size_t nstats = (size_t)s.B * s.NH * s.T * 2;
    test_seed(seed);
    float *qkv = test_rand(nqkv, 2.0f), *out = test_alloc(nout), *stats = test_alloc(nstats);
    float *out_ref = test_alloc(nout), *stats_ref = test_alloc(nstats);
    double *p = malloc((size_t)s.T * sizeof(double));
    CHECK(p != NULL);
    flash_attention_forward_cpu(out, stats, qkv, s.B, s.T, s.C, s.NH, DTYPE_FP32);
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.NH; h++)
            for (int t = 0; t < s.T; t++) {
                const float *q = qkv + ((size_t)b * s.T + t) * C3 + h * hs;
                double mx = -INFINITY, sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * s.T + t2) * C3 + s.C + h * hs;
                    p[t2] = 0;
                    for (int i = 0; i < hs; i++)
                        p[t2] += (double)q[i] * k[i];
                    p[t2] *= scale;
                    mx = fmax(mx, p[t2]);
                }
                for (int t2 = 0; t2 <= t; t2++)
                    sum += p[t2] = exp(p[t2] - mx);
                float *st = stats_ref + (((size_t)b * s.NH + h) * s.T + t) * 2;
                st[0] = (float)mx;
                st[1] = (float)sum;
                for (int i = 0; i < hs; i++) {
                    double y = 0;
                    for (int t2 = 0; t2 <= t; t2++)
                        y += p[t2] / sum * qkv[((size_t)b * s.T + t2) * C3 + 2 * s.C + h * hs + i];
                    out_ref[((size_t)b * s.T + t) * s.C + h * hs + i] = (float)y;
                }
            }
    char what[160];
    snprintf(what, sizeof what, "B%d T%d C%d NH%d fp32 out vs double", s.B, s.T, s.C, s.NH);
    fails += test_close(what, out, out_ref, nout, 1e-5, 1e-5);
    snprintf(what, sizeof what, "B%d T%d C%d NH%d fp32 stats (max, sum) vs double", s.B, s.T, s.C,
             s.NH);
    fails += test_close(what, stats, stats_ref, nstats, 1e-5, 1e-5);
    free(qkv);
    free(out);
    free(stats);
    free(out_ref);
    free(stats_ref);
    free(p);
}

/* 2. finite differences of the objective sum(out * W) over qkv, fp32 */
#define FD_STEP 1e-2f
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2

static double objective(struct shape s, const float *qkv, const float *W, float *out, float *stats)
{
    size_t nout = (size_t)s.B * s.T * s.C;
    flash_attention_forward_cpu(out, stats, qkv, s.B, s.T, s.C, s.NH, DTYPE_FP32);
    double o = 0;
    for (size_t i = 0; i < nout; i++)
        o += (double)out[i] * W[i];
    return o;
}

static void test_finite_differences(struct shape s, uint64_t seed)
{
    size_t nqkv = (size_t)s.B * s.T * 3 * s.C, nout = (size_t)s.B * s.T * s.C;
    size_t nstats = (size_t)s.B * s.NH * s.T * 2;
    test_seed(seed);
    float *qkv = test_rand(nqkv, 1.0f), *W = test_rand(nout, 1.0f);
    float *out = test_alloc(nout), *stats = test_alloc(nstats);
    float *grad = test_alloc(nqkv), *num = test_alloc(nqkv);
    objective(s, qkv, W, out, stats);
    flash_attention_backward_cpu(grad, W, qkv, out, stats, s.B, s.T, s.C, s.NH, DTYPE_FP32);
    for (size_t i = 0; i < nqkv; i++) {
        float x0 = qkv[i], xp = x0 + FD_STEP, xm = x0 - FD_STEP;
        qkv[i] = xp;
        double lp = objective(s, qkv, W, out, stats);
        qkv[i] = xm;
        double lm = objective(s, qkv, W, out, stats);
        qkv[i] = x0;
        num[i] = (float)((lp - lm) / ((double)xp - xm));
    }
    char what[160];
    snprintf(what, sizeof what, "B%d T%d C%d NH%d fp32 dqkv vs finite differences", s.B, s.T, s.C,
             s.NH);
    fails += test_close(what, grad, num, nqkv, FD_ATOL, FD_RTOL);
    free(qkv);
    free(W);
    free(out);
    free(stats);
    free(grad);
    free(num);
}

int main(void)
{
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        test_values(SHAPES[i], seed++);
    test_finite_differences((struct shape){2, 5, 8, 2}, seed++);
    test_finite_differences((struct shape){1, 11, 12, 3}, seed++);
    if (fails) {
        printf("test_flash_attention_cpu: %d failures\n", fails);
        return 1;
    }
    printf("test_flash_attention_cpu: ok\n");
    return 0;
}
