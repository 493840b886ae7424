/* layernorm.c: CPU reference of LayerNorm over the channels of each row (llm.c's layernorm), and
 * of the residual add fused with it (one row function for both, so their bits agree).
 *
 * The forward and dinp are independent per row and run in parallel over rows. dweight and dbias
 * are sums over all N rows: they run in parallel over blocks of channels, each block summing the
 * rows in order, so no reduction is split between threads. The normalized input is recomputed
 * from inp, mean and rstd rather than stored. */
#include <math.h>
#include <stdlib.h>

#include "f32_view.h"
#include "kernels_cpu.h"

#define LAYERNORM_EPS 1e-5f
/* Channels per block of the dweight/dbias reduction: a few cache lines of each row. */
#define LAYERNORM_CBLOCK 64

/* One row of C channels: o = (x - mean) * rstd * w + b, with the row's mean and rstd. */
static void layernorm_row(float *o, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int C)
{
    float m = 0.0f;
    for (int c = 0; c < C; c++)
        m += x[c];
    m /= C;
    float var = 0.0f;
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        var += d * d;
    }
    var /= C;
    float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
    for (int c = 0; c < C; c++)
        o[c] = (x[c] - m) * s * w[c] + b[c];
    *mean = m;
    *rstd = s;
}

void layernorm_forward_cpu(void *out, float *mean, float *rstd, const void *inp, const void *weight,
                           const void *bias, int N, int C, enum dtype dt)
{
    float *tw = f32_scratch(dt, C), *tb = f32_scratch(dt, C);
    const float *w = f32_in(dt, weight, 0, C, tw);
    const float *b = f32_in(dt, bias, 0, C, tb);
#pragma omp parallel
    {
        float *tx = f32_scratch(dt, C), *to = f32_scratch(dt, C);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = f32_in(dt, inp, (size_t)n * C, C, tx);
            float *o = f32_out(dt, out, (size_t)n * C, to);
            layernorm_row(o, &mean[n], &rstd[n], x, w, b, C);
            f32_store(dt, out, (size_t)n * C, C, o);
        }
        free(tx);
        free(to);
    }
    free(tw);
    free(tb);
}

/* One pass per row: the sum is rounded to dt and stored, and the LayerNorm reads those rounded
 * values, so the bits are add_forward_cpu's then layernorm_forward_cpu's. In place (res == a or
 * res == b) works: each element is read before it is written. */
void add_layernorm_forward_cpu(void *res, void *out, float *mean, float *rstd, const void *a,
                               const void *b, const void *weight, const void *bias, int N, int C,
                               enum dtype dt)
{
    float *tw = f32_scratch(dt, C), *tb = f32_scratch(dt, C);
    const float *w = f32_in(dt, weight, 0, C, tw);
    const float *bb = f32_in(dt, bias, 0, C, tb);
#pragma omp parallel
    {
        float *ta = f32_scratch(dt, C), *tbr = f32_scratch(dt, C), *tr = f32_scratch(dt, C);
        float *to = f32_scratch(dt, C);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            size_t off = (size_t)n * C;
            const float *x = f32_in(dt, a, off, C, ta);
            const float *y = f32_in(dt, b, off, C, tbr);
            float *r = f32_out(dt, res, off, tr);
            for (int c = 0; c < C; c++)
                r[c] = x[c] + y[c];
            f32_store(dt, res, off, C, r);
            /* the rounded sum, as layernorm_forward_cpu would read it back (fp32: r itself) */
            const float *rr = f32_in(dt, res, off, C, tr);
            float *o = f32_out(dt, out, off, to);
            layernorm_row(o, &mean[n], &rstd[n], rr, w, bb, C);
            f32_store(dt, out, off, C, o);
        }
        free(ta);
        free(tbr);
        free(tr);
        free(to);
    }
    free(tw);
    free(tb);
}

void layernorm_backward_cpu(void *dinp, void *dweight, void *dbias, const void *dout,
                            const void *inp, const void *weight, const float *mean,
                            const float *rstd, int N, int C, enum dtype dt)
{
    float *tw = f32_scratch(dt, C), *tdw = f32_scratch(dt, C), *tdb = f32_scratch(dt, C);
    const float *w = f32_in(dt, weight, 0, C, tw);
    float *dw = f32_inout(dt, dweight, 0, C, tdw);
    float *db = f32_inout(dt, dbias, 0, C, tdb);
    int nblocks = (C + LAYERNORM_CBLOCK - 1) / LAYERNORM_CBLOCK;
#pragma omp parallel
    {
        float *tx = f32_scratch(dt, C), *tg = f32_scratch(dt, C), *ti = f32_scratch(dt, C);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = f32_in(dt, inp, (size_t)n * C, C, tx);
            const float *g = f32_in(dt, dout, (size_t)n * C, C, tg);
            float m = mean[n], s = rstd[n];
            /* the two means that couple the channels through mean and rstd */
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
            for (int c = 0; c < C; c++) {
                float dnorm = w[c] * g[c];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * (x[c] - m) * s;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            float *di = f32_inout(dt, dinp, (size_t)n * C, C, ti);
            for (int c = 0; c < C; c++) {
                float norm = (x[c] - m) * s;
                di[c] += (w[c] * g[c] - dnorm_mean - norm * dnorm_norm_mean) * s;
            }
            f32_store(dt, dinp, (size_t)n * C, C, di);
        }
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblocks; blk++) {
            int c0 = blk * LAYERNORM_CBLOCK;
            int nc = C - c0 < LAYERNORM_CBLOCK ? C - c0 : LAYERNORM_CBLOCK;
            float sw[LAYERNORM_CBLOCK] = {0}, sb[LAYERNORM_CBLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = f32_in(dt, inp, (size_t)n * C + c0, nc, tx);
                const float *g = f32_in(dt, dout, (size_t)n * C + c0, nc, tg);
                float m = mean[n], s = rstd[n];
                for (int c = 0; c < nc; c++) {
                    sb[c] += g[c];
                    sw[c] += (x[c] - m) * s * g[c];
                }
            }
            for (int c = 0; c < nc; c++) {
                db[c0 + c] += sb[c];
                dw[c0 + c] += sw[c];
            }
        }
        free(tx);
        free(tg);
        free(ti);
    }
    f32_store(dt, dweight, 0, C, dw);
    f32_store(dt, dbias, 0, C, db);
    free(tw);
    free(tdw);
    free(tdb);
}
