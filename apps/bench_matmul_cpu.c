/* bench_matmul_cpu: the CPU matrix product (gemm.h, fixed summation order) against OpenBLAS's
 * multi-threaded sgemm, on the linear layers of a GPT shape.
 *
 * The CPU kernels used to call cblas_sgemm, whose summation order depends on the thread count,
 * the shape and the processor; they now call gemm_f32, whose order is fixed. This program times
 * the three products of each linear layer (forward out = inp . W^T, dinp += dout . W, dweight +=
 * dout^T . inp) both ways, with the same operands and thread count, and prints GFLOP/s per
 * product and the ratio. Default shapes: the tiny preset (B*T = 4 x 128 rows, C = 128, the qkv,
 * attention projection, MLP and vocabulary-sized LM head layers). Each figure is the best of
 * --iters timed runs after one warm-up, the two implementations alternating run by run, so that
 * the other tenants of a shared machine slow both alike and the best runs show the code.
 *
 *     bench_matmul_cpu [--rows 512] [--channels 128] [--vocab 50304] [--iters 7]
 *                      [--threads N] [--out FILE.json] */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/gemm.h"

enum product { PRODUCT_FORWARD, PRODUCT_DINP, PRODUCT_DWEIGHT, PRODUCT_COUNT };
static const char *const product_names[PRODUCT_COUNT] = {"forward", "dinp", "dweight"};

struct layer {
    const char *name;
    int C, OC;
};

/* One product of a layer [N rows, C in, OC out]: gemm_f32 when ours, else cblas_sgemm. */
static void run(enum product p, int ours, int N, int C, int OC, const float *x, const float *w,
                const float *g, float *out, float *dinp, float *dw)
{
    switch (p) {
    case PRODUCT_FORWARD:
        if (ours)
            gemm_f32(0, 1, N, OC, C, x, C, w, C, out, OC);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x, C, w, C, 1.0f,
                        out, OC);
        break;
    case PRODUCT_DINP:
        if (ours)
            gemm_f32(0, 0, N, C, OC, g, OC, w, C, dinp, C);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, g, OC, w, C,
                        1.0f, dinp, C);
        break;
    default:
        if (ours)
            gemm_f32(1, 0, OC, C, N, g, OC, x, C, dw, C);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, g, OC, x, C, 1.0f,
                        dw, C);
    }
}

static float *rand_buf(size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) user_fail("out of host memory for %zu floats: use smaller shapes", n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    return p;
}

static long parse_long(const char *flag, const char *s, long min)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min) user_fail("%s %s: expected an integer >= %ld", flag, s, min);
    return v;
}

int main(int argc, char **argv)
{
    int N = 512, C = 128, V = 50304, iters = 7, threads = omp_get_max_threads();
    const char *out_path = NULL;
    check_set_program("bench_matmul_cpu");
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            user_fail("%s: missing value (see the usage at the top of the source)", argv[i]);
        const char *f = argv[i], *v = argv[++i];
        if (strcmp(f, "--rows") == 0)
            N = (int)parse_long(f, v, 1);
        else if (strcmp(f, "--channels") == 0)
            C = (int)parse_long(f, v, 1);
        else if (strcmp(f, "--vocab") == 0)
            V = (int)parse_long(f, v, 1);
        else if (strcmp(f, "--iters") == 0)
            iters = (int)parse_long(f, v, 1);
        else if (strcmp(f, "--threads") == 0)
            threads = (int)parse_long(f, v, 1);
        else if (strcmp(f, "--out") == 0)
            out_path = v;
        else
            user_fail("unknown option %s: use --rows --channels --vocab --iters --threads --out",
                      f);
    }
    FILE *out = NULL;
    if (out_path && !(out = fopen(out_path, "w"))) user_fail("--out %s: cannot write", out_path);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const struct layer layers[] = {
        {"qkv", C, 3 * C},    {"attproj", C, C}, {"fc", C, 4 * C},
        {"fcproj", 4 * C, C}, {"lmhead", C, V},
    };
    int nlayers = sizeof layers / sizeof layers[0];

    printf("CPU matrix products, %d rows, %d threads, %s; GFLOP/s, best of %d\n", N, threads,
           cpu_isa_name(cpu_isa_selected()), iters);
    printf(
        "| layer | C x OC | product | gemm_f32 | OpenBLAS | ratio |\n|---|---|---|---|---|---|\n");
    if (out)
        fprintf(out, "{\"rows\": %d, \"threads\": %d, \"isa\": \"%s\", \"results\": [", N, threads,
                cpu_isa_name(cpu_isa_selected()));
    double sum_ours = 0, sum_blas = 0;
    for (int l = 0; l < nlayers; l++) {
        int lc = layers[l].C, oc = layers[l].OC;
        float *x = rand_buf((size_t)N * lc), *w = rand_buf((size_t)oc * lc);
        float *g = rand_buf((size_t)N * oc), *o = rand_buf((size_t)N * oc);
        float *di = rand_buf((size_t)N * lc), *dw = rand_buf((size_t)oc * lc);
        double flop = 2.0 * N * lc * oc;
        for (int p = 0; p < PRODUCT_COUNT; p++) {
            double best[2] = {INFINITY, INFINITY};
            for (int ours = 1; ours >= 0; ours--) /* warm-up */
                run(p, ours, N, lc, oc, x, w, g, o, di, dw);
            for (int it = 0; it < iters; it++)
                for (int ours = 1; ours >= 0; ours--) {
                    double t0 = omp_get_wtime();
                    run(p, ours, N, lc, oc, x, w, g, o, di, dw);
                    double dt = omp_get_wtime() - t0;
                    best[ours] = dt < best[ours] ? dt : best[ours];
                }
            double gf[2] = {flop / best[0] / 1e9, flop / best[1] / 1e9};
            sum_ours += best[1];
            sum_blas += best[0];
            printf("| %s | %d x %d | %s | %.1f | %.1f | %.2f |\n", layers[l].name, lc, oc,
                   product_names[p], gf[1], gf[0], gf[1] / gf[0]);
            if (out)
                fprintf(out,
                        "%s{\"layer\": \"%s\", \"C\": %d, \"OC\": %d, \"product\": \"%s\", "
                        "\"gemm_f32_gflop_s\": %.2f, \"openblas_gflop_s\": %.2f}",
                        l || p ? ", " : "", layers[l].name, lc, oc, product_names[p], gf[1], gf[0]);
        }
        free(x);
        free(w);
        free(g);
        free(o);
        free(di);
        free(dw);
    }
    printf("all products: gemm_f32 %.2f ms, OpenBLAS %.2f ms (ratio %.2f)\n", 1e3 * sum_ours,
           1e3 * sum_blas, sum_blas / sum_ours);
    if (out) {
        fprintf(out, "], \"gemm_f32_total_ms\": %.3f, \"openblas_total_ms\": %.3f}\n",
                1e3 * sum_ours, 1e3 * sum_blas);
        CHECK_MSG(fclose(out) == 0, "cannot write the --out file");
    }
    return 0;
}
