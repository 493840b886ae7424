/* test_add_layernorm_cpu.c: the fused residual add + LayerNorm reference against the two kernels
 * it replaces.
 *
 * add_layernorm_forward_cpu must give add_forward_cpu's res and then layernorm_forward_cpu's out,
 * mean and rstd bit for bit, in fp32, fp16 and bf16, with res a separate buffer and in place
 * (res == a, then res == b), on rows of 1 to 2048 channels. Bit equality: a graph that switches
 * to the fused kernel keeps its losses. Prints one line per check. Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

static const enum dtype DTYPES[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};

/* alias 0: res separate; 1: res == a; 2: res == b */
static int test_case(enum dtype dt, int N, int C, int alias, uint64_t seed)
{
    size_t nx = (size_t)N * C, es = dtype_size(dt), bx = nx * es;
    test_seed(seed);
    float *fa = test_rand(nx, 2.0f), *fb = test_rand(nx, 1.0f), *fw = test_rand(C, 1.0f);
    float *fbias = test_rand(C, 0.5f);
    void *a = test_to_dt(dt, fa, nx), *b = test_to_dt(dt, fb, nx);
    void *w = test_to_dt(dt, fw, C), *bias = test_to_dt(dt, fbias, C);

    /* the reference: two kernels */
    void *res_ref = test_nan_dt(dt, nx), *out_ref = test_nan_dt(dt, nx);
    float *mean_ref = test_alloc(N), *rstd_ref = test_alloc(N);
    add_forward_cpu(res_ref, a, b, nx, dt);
    layernorm_forward_cpu(out_ref, mean_ref, rstd_ref, res_ref, w, bias, N, C, dt);

    void *ga = malloc(bx), *gb = malloc(bx), *res = test_nan_dt(dt, nx);
    void *out = test_nan_dt(dt, nx);
    CHECK(ga && gb);
    memcpy(ga, a, bx);
    memcpy(gb, b, bx);
    float *mean = test_alloc(N), *rstd = test_alloc(N);
    void *r = alias == 1 ? ga : alias == 2 ? gb : res;
    add_layernorm_forward_cpu(r, out, mean, rstd, ga, gb, w, bias, N, C, dt);

    static const char *aliases[] = {"", " res=a", " res=b"};
    char what[96];
    int fails = 0;
    snprintf(what, sizeof what, "%s N%d C%d%s res", dtype_name(dt), N, C, aliases[alias]);
    fails += test_same_bits(what, r, res_ref, bx);
    snprintf(what, sizeof what, "%s N%d C%d%s out", dtype_name(dt), N, C, aliases[alias]);
    fails += test_same_bits(what, out, out_ref, bx);
    snprintf(what, sizeof what, "%s N%d C%d%s mean", dtype_name(dt), N, C, aliases[alias]);
    fails += test_same_bits(what, mean, mean_ref, N * sizeof(float));
    snprintf(what, sizeof what, "%s N%d C%d%s rstd", dtype_name(dt), N, C, aliases[alias]);
    fails += test_same_bits(what, rstd, rstd_ref, N * sizeof(float));
    void *bufs[] = {fa,      fb,       fw,       fbias, a,  b,   w,   bias, res_ref,
                    out_ref, mean_ref, rstd_ref, ga,    gb, res, out, mean, rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    return fails;
}

int main(void)
{
    static const int shapes[][2] = {{3, 1}, {7, 37}, {64, 96}, {5, 2048}};
    int fails = 0;
    for (int d = 0; d < 3; d++)
        for (int s = 0; s < 4; s++)
            for (int alias = 0; alias < 3; alias++)
                fails += test_case(DTYPES[d], shapes[s][0], shapes[s][1], alias,
                                   100 * d + 10 * s + alias + 1);
    printf("test_add_layernorm_cpu: %s\n", fails ? "FAIL" : "pass");
    return fails ? 1 : 0;
}
