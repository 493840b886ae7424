/* test_adamw_cpu.c: the optimizer step and the gradient norm it depends on.
 *
 * adamw_cpu is run for several steps against a straightforward double-precision transcription of
 * torch.optim.AdamW (foreach=False) preceded by torch.nn.utils.clip_grad_norm_, with loss
 * scaling; then the overflow skip (nothing changes, bit for bit), clipping on and off, weight
 * decay, and the 16-bit parameter copy. sumsq_cpu is checked against a double sum. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

#define NP    5000 /* more than one block of every kernel */
#define STEPS 8
/* float kernel vs double reference after STEPS steps */
#define ATOL 1e-7
#define RTOL 2e-6

static int fails;

struct ref_state {
    double *w, *m, *v;
};

/* One step of the reference on the widened gradient g (as stored in dt). */
static void ref_step(struct ref_state *r, const float *g, size_t n, double sumsq,
                     const struct adamw_hparams *hp)
{
    double norm = sqrt(sumsq) * hp->inv_loss_scale;
    if (!isfinite(norm)) return;
    double coef = 1;
    if (hp->clip_norm > 0 && norm > hp->clip_norm) coef = hp->clip_norm / (norm + 1e-6);
    double bc1 = 1 - pow(hp->beta1, hp->step), bc2 = 1 - pow(hp->beta2, hp->step);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * (double)hp->inv_loss_scale * coef;
        r->w[i] *= 1 - (double)hp->lr * hp->weight_decay;
        r->m[i] = hp->beta1 * r->m[i] + (1 - (double)hp->beta1) * gi;
        r->v[i] = hp->beta2 * r->v[i] + (1 - (double)hp->beta2) * gi * gi;
        double denom = sqrt(r->v[i]) / sqrt(bc2) + hp->eps;
        r->w[i] -= hp->lr / bc1 * r->m[i] / denom;
    }
}

static float *to_float(const double *x, size_t n)
{
    float *f = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

static double max_abs(const float *x, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(x[i]));
    return mx;
}

/* STEPS steps of adamw_cpu (grads of type dt, param copy when with_param) against the reference.
 * The unscaled gradients are uniform in [-grad_scale, grad_scale): their norm is about
 * 41 * grad_scale, which expect_clip says is above clip_norm (every step) or not (no step). */
static void run_steps(const char *what, enum dtype dt, float weight_decay, float clip_norm,
                      float grad_scale, int expect_clip, int with_param)
{
    struct adamw_hparams hp = {.lr = 1e-2f,
                               .beta1 = 0.9f,
                               .beta2 = 0.95f,
                               .eps = 1e-8f,
                               .weight_decay = weight_decay,
                               .inv_loss_scale = 1.0f / 1024,
                               .clip_norm = clip_norm};
    test_seed(21);
    float *w = test_rand(NP, 1), *m = test_alloc(NP), *v = test_alloc(NP);
    struct ref_state r = {calloc(NP, sizeof(double)), calloc(NP, sizeof(double)),
                          calloc(NP, sizeof(double))};
    for (size_t i = 0; i < NP; i++)
        r.w[i] = w[i];
    void *param = with_param ? test_nan_dt(dt, NP) : NULL;
    int clipped = 0;
    for (int s = 1; s <= STEPS; s++) {
        hp.step = s;
        /* loss-scaled gradients, stored in dt like the model's */
        float *g = test_rand(NP, 1024 * grad_scale);
        test_round(dt, g, NP);
        void *gd = test_to_dt(dt, g, NP);
        float sumsq = 0;
        sumsq_cpu(&sumsq, gd, NP, dt);
        double dsum = 0;
        for (size_t i = 0; i < NP; i++)
            dsum += (double)g[i] * g[i];
        clipped += clip_norm > 0 && sqrt(dsum) / 1024 > clip_norm;
        adamw_cpu(param, w, m, v, gd, &sumsq, NP, &hp, dt);
        ref_step(&r, g, NP, dsum, &hp);
        free(g);
        free(gd);
    }
    char name[160];
    float *rw = to_float(r.w, NP), *rm = to_float(r.m, NP), *rv = to_float(r.v, NP);
    snprintf(name, sizeof name, "%s: master", what);
    fails += test_close(name, w, rw, NP, ATOL, RTOL);
    /* m and v scale with the gradients: their absolute floor is relative to their largest value */
    snprintf(name, sizeof name, "%s: m", what);
    fails += test_close(name, m, rm, NP, RTOL * max_abs(rm, NP), RTOL);
    snprintf(name, sizeof name, "%s: v", what);
    fails += test_close(name, v, rv, NP, RTOL * max_abs(rv, NP), RTOL);
    if (clipped != (expect_clip ? STEPS : 0)) {
        printf("FAIL %s: the test meant to clip %s but clipped %d of %d steps\n", what,
               expect_clip ? "every step" : "never", clipped, STEPS);
        fails++;
    }
    if (param) {
        /* the copy is the master rounded once */
        void *want = test_to_dt(dt, w, NP);
        snprintf(name, sizeof name, "%s: %s param is the rounded master", what, dtype_name(dt));
        fails += test_same_bits(name, param, want, NP * dtype_size(dt));
        free(want);
    }
    free(w);
    free(m);
    free(v);
    free(r.w);
    free(r.m);
    free(r.v);
    free(rw);
    free(rm);
    free(rv);
    free(param);
}

/* clip_norm above the norm must give exactly the unclipped step */
static void test_clip_inactive(void)
{
    struct adamw_hparams hp = {.lr = 1e-3f,
                               .beta1 = 0.9f,
                               .beta2 = 0.999f,
                               .eps = 1e-8f,
                               .weight_decay = 0.1f,
                               .step = 3,
                               .inv_loss_scale = 0.5f};
    test_seed(22);
    float *g = test_rand(NP, 1), *w0 = test_rand(NP, 1), *m0 = test_rand(NP, 0.1f);
    float *v0 = test_rand(NP, 0.01f);
    for (size_t i = 0; i < NP; i++)
        v0[i] = fabsf(v0[i]);
    float sumsq = 0;
    sumsq_cpu(&sumsq, g, NP, DTYPE_FP32);
    float norm = sqrtf(sumsq) * hp.inv_loss_scale;
    float *w[2], *m[2], *v[2];
    for (int k = 0; k < 2; k++) {
        w[k] = test_dup(w0, NP);
        m[k] = test_dup(m0, NP);
        v[k] = test_dup(v0, NP);
        hp.clip_norm = k == 0 ? 0.0f : norm * 1.01f;
        adamw_cpu(NULL, w[k], m[k], v[k], g, &sumsq, NP, &hp, DTYPE_FP32);
    }
    fails += test_same_bits("clip_norm above the norm leaves the step unchanged", w[1], w[0],
                            NP * sizeof(float));
    /* no global norm at all (sumsq NULL, no clipping): the same step as a finite sumsq */
    float *wn = test_dup(w0, NP), *mn = test_dup(m0, NP), *vn = test_dup(v0, NP);
    hp.clip_norm = 0.0f;
    adamw_cpu(NULL, wn, mn, vn, g, NULL, NP, &hp, DTYPE_FP32);
    fails += test_same_bits("sumsq NULL equals a finite sumsq without clipping: master", wn, w[0],
                            NP * sizeof(float));
    fails += test_same_bits("sumsq NULL: v", vn, v[0], NP * sizeof(float));
    free(wn);
    free(mn);
    free(vn);
    /* and just below the norm it must scale the gradient */
    float *w2 = test_dup(w0, NP), *m2 = test_dup(m0, NP), *v2 = test_dup(v0, NP);
    hp.clip_norm = norm * 0.5f;
    adamw_cpu(NULL, w2, m2, v2, g, &sumsq, NP, &hp, DTYPE_FP32);
    int same = memcmp(m2, m[0], NP * sizeof(float)) == 0;
    printf("%s clip_norm below the norm changes the step\n", same ? "FAIL" : "ok  ");
    fails += same;
    for (int k = 0; k < 2; k++) {
        free(w[k]);
        free(m[k]);
        free(v[k]);
    }
    free(w2);
    free(m2);
    free(v2);
    free(g);
    free(w0);
    free(m0);
    free(v0);
}

/* a non-finite norm skips the step: master, m, v and param keep their bits */
static void test_skip(void)
{
    struct adamw_hparams hp = {.lr = 1e-3f,
                               .beta1 = 0.9f,
                               .beta2 = 0.999f,
                               .eps = 1e-8f,
                               .weight_decay = 0.1f,
                               .step = 1,
                               .inv_loss_scale = 1.0f,
                               .clip_norm = 1.0f};
    test_seed(23);
    float *g = test_rand(NP, 1), *w = test_rand(NP, 1), *m = test_rand(NP, 1);
    float *v = test_rand(NP, 1);
    for (size_t i = 0; i < NP; i++)
        v[i] = fabsf(v[i]);
    g[NP / 2] = INFINITY; /* an overflowed fp16 gradient */
    void *gd = test_to_dt(DTYPE_FP16, g, NP);
    void *param = test_to_dt(DTYPE_FP16, w, NP);
    float *w0 = test_dup(w, NP), *m0 = test_dup(m, NP), *v0 = test_dup(v, NP);
    void *p0 = test_to_dt(DTYPE_FP16, w, NP);
    float sums[3] = {0, NAN, INFINITY};
    sumsq_cpu(&sums[0], gd, NP, DTYPE_FP16);
    for (int k = 0; k < 3; k++) {
        char name[96];
        snprintf(name, sizeof name, "adamw skips on sumsq %g: ", sums[k]);
        adamw_cpu(param, w, m, v, gd, &sums[k], NP, &hp, DTYPE_FP16);
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, "master");
        fails += test_same_bits(name, w, w0, NP * sizeof(float));
        snprintf(name + len, sizeof name - len, "m");
        fails += test_same_bits(name, m, m0, NP * sizeof(float));
        snprintf(name + len, sizeof name - len, "v");
        fails += test_same_bits(name, v, v0, NP * sizeof(float));
        snprintf(name + len, sizeof name - len, "param");
        fails += test_same_bits(name, param, p0, NP * 2);
    }
    free(g);
    free(w);
    free(m);
    free(v);
    free(gd);
    free(param);
    free(w0);
    free(m0);
    free(v0);
    free(p0);
}

static void test_sumsq(void)
{
    enum dtype all[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};
    size_t n = 3 * 4096 + 77; /* several chunks and a partial one */
    for (int k = 0; k < 3; k++) {
        enum dtype dt = all[k];
        test_seed(24 + k);
        float *x = test_rand(n, 3);
        test_round(dt, x, n);
        void *xd = test_to_dt(dt, x, n);
        double ref = 5.0; /* accumulates onto what out holds */
        for (size_t i = 0; i < n; i++)
            ref += (double)x[i] * x[i];
        float got = 5.0f, reff = (float)ref;
        sumsq_cpu(&got, xd, n, dt);
        char name[64];
        snprintf(name, sizeof name, "sumsq %s", dtype_name(dt));
        fails += test_close(name, &got, &reff, 1, 0, 1e-7);
        for (int j = 0; j < 2; j++) {
            dtype_store(dt, xd, n - 1, j == 0 ? INFINITY : x[n - 1]);
            dtype_store(dt, xd, n - 5001, j == 0 ? x[n - 5001] : NAN);
            got = 0;
            sumsq_cpu(&got, xd, n, dt);
            if (isfinite(got)) {
                printf("FAIL sumsq %s with a%s element is finite: %g\n", dtype_name(dt),
                       j == 0 ? "n inf" : " NaN", got);
                fails++;
            } else {
                printf("ok   sumsq %s with a%s element is %g\n", dtype_name(dt),
                       j == 0 ? "n inf" : " NaN", got);
            }
        }
        free(x);
        free(xd);
    }
}

int main(void)
{
    run_steps("fp32, weight decay 0.1, no clipping", DTYPE_FP32, 0.1f, 0.0f, 1.0f, 0, 0);
    run_steps("fp32, weight decay 0, no clipping", DTYPE_FP32, 0.0f, 0.0f, 1.0f, 0, 0);
    run_steps("fp32 with param copy, clipped", DTYPE_FP32, 0.1f, 1.0f, 1.0f, 1, 1);
    run_steps("fp32, clip_norm never reached", DTYPE_FP32, 0.1f, 1e3f, 0.01f, 0, 0);
    /* a norm near 1e-6, where clip_norm / (norm + 1e-6) differs from clip_norm / norm */
    run_steps("fp32, tiny gradients clipped", DTYPE_FP32, 0.1f, 1e-6f, 5e-8f, 1, 0);
    run_steps("fp16 grads and param, clipped", DTYPE_FP16, 0.1f, 1.0f, 1.0f, 1, 1);
    run_steps("bf16 grads and param, no clipping", DTYPE_BF16, 0.0f, 0.0f, 1.0f, 0, 1);
    test_clip_inactive();
    test_skip();
    test_sumsq();
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
