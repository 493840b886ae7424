/* bench_adam: throughput of the CPU AdamW step on every ISA this CPU runs, by thread count.
 *
 * The ZeRO-Infinity offload runs the optimizer on CPU over fp32 master weights and moments, so
 * its speed is memory bandwidth: one step reads the gradient and master, m, v and writes master,
 * m, v and the 16-bit parameter copy, 28 bytes per bf16 parameter. Each ISA (adamw_simd.h) runs
 * with 1, 2, 4, ... threads up to OpenMP's maximum; the table gives millions of parameters and
 * GB of that traffic per second, averaged over --iters steps after one warm-up step. Memory
 * needed: --params x (12 + 2 x dtype size) bytes, 1 GB at the default 64M bf16 parameters.
 * --isa selected measures only the ISA the runs use (cpu_isa_selected: the fastest this CPU runs,
 * or GPT50B_CPU_ISA's cap), NAME only that one: the scalar sweep takes most of the time (over a
 * minute at 268M parameters on 16 cores).
 *
 *     bench_adam [--params 67108864] [--iters 5] [--dtype bf16|fp16|fp32]
 *                [--isa all|selected|scalar|avx2|avx512] [--out FILE.json] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "adamw_rate.h"

struct result {
    enum cpu_isa isa;
    int threads;
    double mparams_s, gb_s;
};

int main(int argc, char **argv)
{
    size_t n = (size_t)64 << 20;
    int iters = 5;
    enum dtype dt = DTYPE_BF16;
    const char *out_path = NULL;
    int only = -1; /* the one ISA to measure, -1: all */
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
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            if (strcmp(s, "all") == 0)
                only = -1;
            else if (strcmp(s, "selected") == 0)
                only = (int)cpu_isa_selected();
            else if ((only = cpu_isa_from_name(s)) < 0)
                user_fail("--isa %s: use all, selected, scalar, avx2 or avx512", s);
            else if (!cpu_isa_supported(only))
                user_fail("--isa %s: this CPU does not run it; use selected", s);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else {
            user_fail("unknown argument %s: use --params N --iters N --dtype bf16|fp16|fp32 "
                      "--isa all|selected|NAME --out FILE",
                      argv[i]);
        }
    }
    FILE *out = NULL; /* opened first: a bad path fails before minutes of measuring */
    if (out_path && !(out = fopen(out_path, "w"))) user_fail("--out %s: cannot write", out_path);
    struct adamw_rate r;
    if (adamw_rate_init(&r, n, dt) != 0)
        user_fail("--params %zu: out of host memory; use a smaller --params", n);
    double bytes_per_param = adamw_rate_bytes(&r) / (double)n;
    int maxt = omp_get_max_threads(), nres = 0;
    struct result res[CPU_ISA_COUNT * 32];
    printf("| AdamW %zu %s params, %.0f B/param | threads | M params/s | GB/s |\n", n,
           dtype_name(dt), bytes_per_param);
    printf("|---|---|---|---|\n");
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa) || (only >= 0 && isa != only)) continue;
        for (int t = 1; t <= maxt; t = t < maxt && 2 * t > maxt ? maxt : 2 * t) {
            omp_set_num_threads(t);
            double sec = adamw_rate_step_s(&r, isa, iters);
            struct result x = {isa, t, n / sec / 1e6, bytes_per_param * n / sec / 1e9};
            res[nres++] = x;
            printf("| %s | %d | %.1f | %.1f |\n", cpu_isa_name(isa), t, x.mparams_s, x.gb_s);
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
    adamw_rate_free(&r);
    return 0;
}
