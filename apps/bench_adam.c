/* bench_adam: throughput of the CPU AdamW step on every ISA this CPU runs, by thread count.
 *
 * The ZeRO-Infinity offload runs the optimizer on CPU over fp32 master weights and moments, so
 * its speed is memory bandwidth: one step reads the gradient and master, m, v and writes master,
 * m, v and the 16-bit parameter copy, 28 bytes per bf16 parameter. Each ISA (adamw_simd.h) runs
 * with 1, 2, 4, ... threads up to OpenMP's maximum; the table gives millions of parameters and
 * GB of that traffic per second, averaged over --iters steps after one warm-up step. Memory
 * needed: --params x (12 + 2 x dtype size) bytes, 1 GB at the default 64M bf16 parameters.
 *
 *     bench_adam [--params 67108864] [--iters 5] [--dtype bf16|fp16|fp32] [--out FILE.json] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/adamw_simd.h"

struct result {
    enum cpu_isa isa;
    int threads;
    double mparams_s, gb_s;
};

static void *alloc_or_fail(size_t bytes, size_t n)
{
    void *p = malloc(bytes);
    if (!p) user_fail("--params %zu: out of host memory; use a smaller --params", n);
    return p;
}

int main(int argc, char **argv)
{
    size_t n = (size_t)64 << 20;
    int iters = 5;
    enum dtype dt = DTYPE_BF16;
    const char *out_path = NULL;
    check_set_program("bench_adam");
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--params") == 0 && i + 1 < argc) {
            n = strtoull(argv[++i], &end, 10);
            if (*end || n == 0) user_fail("--params %s: expected a positive integer", argv[i]);
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = (int)strtol(argv[++i], &end, 10);
            if (*end || iters < 1) user_fail("--iters %s: expected a positive integer", argv[i]);
        } else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            if (strcmp(s, "bf16") == 0)
                dt = DTYPE_BF16;
            else if (strcmp(s, "fp16") == 0)
                dt = DTYPE_FP16;
            else if (strcmp(s, "fp32") == 0)
                dt = DTYPE_FP32;
            else
                user_fail("--dtype %s: use bf16, fp16 or fp32", s);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else {
            user_fail("unknown argument %s: use --params N --iters N --dtype bf16|fp16|fp32 "
                      "--out FILE",
                      argv[i]);
        }
    }
    FILE *out = NULL; /* opened first: a bad path fails before minutes of measuring */
    if (out_path && !(out = fopen(out_path, "w"))) user_fail("--out %s: cannot write", out_path);
    size_t es = dtype_size(dt);
    float *w = alloc_or_fail(n * sizeof(float), n), *m = alloc_or_fail(n * sizeof(float), n);
    float *v = alloc_or_fail(n * sizeof(float), n);
    char *g = alloc_or_fail(n * es, n), *p = alloc_or_fail(n * es, n);
    /* first touch by the threads that later update each part (NUMA placement); the gradient
     * values vary so the step is not degenerate */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)(i % 1000) * 1e-3f;
        m[i] = 0;
        v[i] = 0;
        dtype_store(dt, g, i, (float)(i % 77) - 38.0f);
        dtype_store(dt, p, i, 0);
    }
    /* finite norm above clip_norm: the full step with clipping, never skipped */
    struct adamw_hparams hp = {.lr = 1e-4f,
                               .beta1 = 0.9f,
                               .beta2 = 0.95f,
                               .eps = 1e-8f,
                               .weight_decay = 0.1f,
                               .inv_loss_scale = 1.0f / 1024,
                               .clip_norm = 1.0f};
    float sumsq = 1e12f;
    double bytes_per_param = es + 6 * sizeof(float) + es;
    int maxt = omp_get_max_threads(), nres = 0;
    struct result res[CPU_ISA_COUNT * 32];
    printf("| AdamW %zu %s params, %.0f B/param | threads | M params/s | GB/s |\n", n,
           dtype_name(dt), bytes_per_param);
    printf("|---|---|---|---|\n");
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) continue;
        for (int t = 1; t <= maxt; t = t < maxt && 2 * t > maxt ? maxt : 2 * t) {
            omp_set_num_threads(t);
            hp.step = 1;
            adamw_cpu_isa(isa, p, w, m, v, g, &sumsq, n, &hp, dt); /* warm-up */
            double t0 = omp_get_wtime();
            for (int it = 0; it < iters; it++) {
                hp.step++;
                adamw_cpu_isa(isa, p, w, m, v, g, &sumsq, n, &hp, dt);
            }
            double sec = (omp_get_wtime() - t0) / iters;
            struct result r = {isa, t, n / sec / 1e6, bytes_per_param * n / sec / 1e9};
            res[nres++] = r;
            printf("| %s | %d | %.1f | %.1f |\n", cpu_isa_name(isa), t, r.mparams_s, r.gb_s);
        }
    }
    if (out) {
        fprintf(out,
                "{\"bench\": \"adam\", \"params\": %zu, \"dtype\": \"%s\", \"iters\": %d, "
                "\"bytes_per_param\": %.0f, \"selected_isa\": \"%s\", \"results\": [",
                n, dtype_name(dt), iters, bytes_per_param, cpu_isa_name(cpu_isa_selected()));
        for (int i = 0; i < nres; i++)
            fprintf(out,
                    "%s{\"isa\": \"%s\", \"threads\": %d, \"mparams_s\": %.1f, \"gb_s\": %.2f}",
                    i ? ", " : "", cpu_isa_name(res[i].isa), res[i].threads, res[i].mparams_s,
                    res[i].gb_s);
        fprintf(out, "]}\n");
        fclose(out);
    }
    free(w);
    free(m);
    free(v);
    free(g);
    free(p);
    return 0;
}
