/* adamw_rate.c: the CPU AdamW step timed over arrays of its own (adamw_rate.h). */
#include "adamw_rate.h"

#include <omp.h>
#include <string.h>

#include "host.h"

int adamw_rate_init(struct adamw_rate *r, size_t n, enum dtype dt)
{
    size_t es = dtype_size(dt);
    memset(r, 0, sizeof *r);
    r->n = n;
    r->dt = dt;
    /* allocated as the run's optimizer state is (page-aligned, huge pages where allowed), so the
     * kernel takes the same paths (the parameter copy's streaming stores need alignment) */
    r->w = host_alloc(n * sizeof(float));
    r->m = host_alloc(n * sizeof(float));
    r->v = host_alloc(n * sizeof(float));
    r->g = host_alloc(n * es);
    r->p = host_alloc(n * es);
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
    size_t es = dtype_size(r->dt);
    if (r->w) host_free(r->w, r->n * sizeof(float));
    if (r->m) host_free(r->m, r->n * sizeof(float));
    if (r->v) host_free(r->v, r->n * sizeof(float));
    if (r->g) host_free(r->g, r->n * es);
    if (r->p) host_free(r->p, r->n * es);
    memset(r, 0, sizeof *r);
}
