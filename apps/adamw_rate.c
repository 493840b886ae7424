/* adamw_rate.c: the CPU AdamW step timed over arrays of its own (adamw_rate.h). */
#include "adamw_rate.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

int adamw_rate_init(struct adamw_rate *r, size_t n, enum dtype dt)
{
    size_t es = dtype_size(dt);
    memset(r, 0, sizeof *r);
    r->n = n;
    r->dt = dt;
    r->w = malloc(n * sizeof(float));
    r->m = malloc(n * sizeof(float));
    r->v = malloc(n * sizeof(float));
    r->g = malloc(n * es);
    r->p = malloc(n * es);
    if (!r->w || !r->m || !r->v || !r->g || !r->p) {
        adamw_rate_free(r);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        r->w[i] = (float)(i % 1000) * 1e-3f;
        r->m[i] = 0;
        r->v[i] = 0;
        dtype_store(dt, r->g, i, (float)(i % 77) - 38.0f);
        dtype_store(dt, r->p, i, 0);
    }
    r->hp = (struct adamw_hparams){.lr = 1e-4f,
                                   .beta1 = 0.9f,
                                   .beta2 = 0.95f,
                                   .eps = 1e-8f,
                                   .weight_decay = 0.1f,
                                   .inv_loss_scale = 1.0f / 1024,
                                   .clip_norm = 1.0f};
    r->sumsq = 1e12f;
    return 0;
}

double adamw_rate_step_s(struct adamw_rate *r, enum cpu_isa isa, int iters)
{
    r->hp.step = 1;
    adamw_cpu_isa(isa, r->p, r->w, r->m, r->v, r->g, &r->sumsq, r->n, &r->hp, r->dt);
    double t0 = omp_get_wtime();
    for (int it = 0; it < iters; it++) {
        r->hp.step++;
        adamw_cpu_isa(isa, r->p, r->w, r->m, r->v, r->g, &r->sumsq, r->n, &r->hp, r->dt);
    }
    return (omp_get_wtime() - t0) / iters;
}

double adamw_rate_bytes(const struct adamw_rate *r)
{
    return (double)(2 * dtype_size(r->dt) + 6 * sizeof(float)) * (double)r->n;
}

void adamw_rate_free(struct adamw_rate *r)
{
    free(r->w);
    free(r->m);
    free(r->v);
    free(r->g);
    free(r->p);
    memset(r, 0, sizeof *r);
}
