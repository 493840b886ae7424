/* adamw_rate.h: the CPU AdamW step's speed over arrays of n parameters, for bench_adam's table
 * and the resident-share probe of --nvme-resident-fraction auto (probe.h).
 *
 *     struct adamw_rate r;
 *     if (adamw_rate_init(&r, n, DTYPE_BF16)) user_fail(...);   // allocated, first-touched
 *     double s = adamw_rate_step_s(&r, CPU_ISA_AVX2, 5);         // seconds per step
 *     double GBps = adamw_rate_bytes(&r) / s / 1e9;
 *     adamw_rate_free(&r); */
#ifndef GPT50B_ADAMW_RATE_H
#define GPT50B_ADAMW_RATE_H

#include <stddef.h>

#include "cpu/adamw_simd.h"

struct adamw_rate {
    size_t n;
    enum dtype dt;
    float *w, *m, *v;
    void *g, *p;
    struct adamw_hparams hp;
    float sumsq;
};

/* Allocates the master weights, moments, gradients and 16-bit (or fp32) parameters of n
 * parameters of dt and touches them first on the OpenMP threads that later update each part
 * (NUMA placement), with gradients that vary so the step is not degenerate and a finite norm
 * above the clip norm (the full step with clipping, never skipped). Returns 0, or -1 out of
 * memory (nothing left allocated). */
int adamw_rate_init(struct adamw_rate *r, size_t n, enum dtype dt);
/* One warm-up step, then the mean seconds of `iters` timed steps on isa with the current OpenMP
 * thread count. */
double adamw_rate_step_s(struct adamw_rate *r, enum cpu_isa isa, int iters);
/* Bytes one step moves: the gradient, master, m and v read, master, m, v and the parameter
 * written (28 per bf16 parameter). */
double adamw_rate_bytes(const struct adamw_rate *r);
void adamw_rate_free(struct adamw_rate *r);

#endif
