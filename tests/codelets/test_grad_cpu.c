/* test_grad_cpu.c: the CPU kernels' forward values, gradients and dtype paths.
 *
 * For every operation: the forward against a naive double-precision reference; every backward
 * against central finite differences of the scalar objective sum(out * W) (W random, so dout =
 * W); the accumulate contract (a backward on a non-zero gradient adds to it); and the fp16/bf16
 * paths against the fp32 path on the same (rounded) inputs, which they must match to within one
 * rounding of the result. Small odd shapes so that every index computation is exercised. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

#define B    2
#define T    5
#define C    8
#define NH   2
#define HS   (C / NH)
#define N    (B * T)
#define OC   12
#define V    11
#define VP   16
#define MAXT 7

/* finite differences: step and the tolerance of analytic vs numeric */
#define FD_STEP 1e-2f
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
/* forward vs double reference */
#define REF_ATOL 1e-5
#define REF_RTOL 1e-5

static int fails;

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

typedef double (*objective_fn)(void *ctx);

/* d obj / d x[i] by central differences, for every i, against grad */
static void check_fd(const char *what, float *x, size_t n, objective_fn obj, void *ctx,
                     const float *grad)
{
    float *num = test_alloc(n);
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i], xp = x0 + FD_STEP, xm = x0 - FD_STEP;
        x[i] = xp;
        double lp = obj(ctx);
        x[i] = xm;
        double lm = obj(ctx);
        x[i] = x0;
        num[i] = (float)((lp - lm) / ((double)xp - xm));
    }
    char name[128];
    snprintf(name, sizeof name, "%s vs finite differences", what);
    fails += test_close(name, grad, num, n, FD_ATOL, FD_RTOL);
    free(num);
}

/* after a backward on a buffer that held init, got must be init + grad0 (grad0: on zeros) */
static void check_acc(const char *what, const float *got, const float *init, const float *grad0,
                      size_t n)
{
    float *ref = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        ref[i] = init[i] + grad0[i];
    char name[128];
    snprintf(name, sizeof name, "%s accumulates", what);
    fails += test_close(name, got, ref, n, 1e-6, 1e-5);
    free(ref);
}

static void check_ref(const char *what, const float *got, const float *ref, size_t n)
{
    fails += test_close(what, got, ref, n, REF_ATOL, REF_RTOL);
}

/* a 16-bit result must be the fp32 result rounded once: within one unit in the last place */
static void check_dt(const char *what, enum dtype dt, const float *got, const float *ref, size_t n)
{
    char name[128];
    snprintf(name, sizeof name, "%s %s vs fp32", what, dtype_name(dt));
    double rtol = dt == DTYPE_FP16 ? 0x1p-10 : 0x1p-7;
    double atol = dt == DTYPE_FP16 ? 0x1p-24 : 0x1p-126;
    fails += test_close(name, got, ref, n, atol, rtol);
}

static const enum dtype half_types[] = {DTYPE_FP16, DTYPE_BF16};

/* ---------------------------------------------------------------- encoder */

struct enc {
    int32_t tok[N];
    float *wte, *wpe, *W, *out;
};

static void enc_init(struct enc *s, uint64_t seed)
{
    test_seed(seed);
    for (int n = 0; n < N; n++)
        s->tok[n] = (int32_t)((n * 7 + 3) % V);
    s->tok[N - 1] = s->tok[0]; /* a repeated token: its dwte row sums two rows of dout */
    s->tok[1] = s->tok[0];
    s->wte = test_rand((size_t)VP * C, 1);
    s->wpe = test_rand((size_t)MAXT * C, 1);
    s->W = test_rand((size_t)N * C, 1);
    s->out = test_alloc((size_t)N * C);
}

static void enc_round(struct enc *s, enum dtype dt)
{
    test_round(dt, s->wte, (size_t)VP * C);
    test_round(dt, s->wpe, (size_t)MAXT * C);
    test_round(dt, s->W, (size_t)N * C);
}

static void enc_fwd(enum dtype dt, struct enc *s)
{
    void *wte = test_to_dt(dt, s->wte, VP * C), *wpe = test_to_dt(dt, s->wpe, MAXT * C);
    void *out = test_nan_dt(dt, N * C);
    encoder_forward_cpu(out, s->tok, wte, wpe, B, T, C, dt);
    dtype_to_f32(dt, out, s->out, N * C);
    free(wte);
    free(wpe);
    free(out);
}

static void enc_bwd(enum dtype dt, struct enc *s, float *dwte, float *dwpe)
{
    void *a = test_to_dt(dt, dwte, VP * C), *b = test_to_dt(dt, dwpe, MAXT * C);
    void *dout = test_to_dt(dt, s->W, N * C);
    encoder_backward_cpu(a, b, dout, s->tok, B, T, C, dt);
    dtype_to_f32(dt, a, dwte, VP * C);
    dtype_to_f32(dt, b, dwpe, MAXT * C);
    free(a);
    free(b);
    free(dout);
}

static double enc_obj(void *ctx)
{
    struct enc *s = ctx;
    enc_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, (size_t)N * C);
}

static void enc_free(struct enc *s)
{
    free(s->wte);
    free(s->wpe);
    free(s->W);
    free(s->out);
}

static void test_encoder(void)
{
    struct enc s;
    enc_init(&s, 1);
    enc_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc((size_t)N * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            ref[n * C + c] = s.wte[s.tok[n] * C + c] + s.wpe[(n % T) * C + c];
    check_ref("encoder forward", s.out, ref, (size_t)N * C);

    float *dwte = test_alloc((size_t)VP * C), *dwpe = test_alloc((size_t)MAXT * C);
    enc_bwd(DTYPE_FP32, &s, dwte, dwpe);
    check_fd("encoder dwte", s.wte, (size_t)VP * C, enc_obj, &s, dwte);
    check_fd("encoder dwpe", s.wpe, (size_t)MAXT * C, enc_obj, &s, dwpe);

    float *r1 = test_rand((size_t)VP * C, 1), *r2 = test_rand((size_t)MAXT * C, 1);
    float *a1 = test_dup(r1, (size_t)VP * C), *a2 = test_dup(r2, (size_t)MAXT * C);
    enc_bwd(DTYPE_FP32, &s, a1, a2);
    check_acc("encoder dwte", a1, r1, dwte, (size_t)VP * C);
    check_acc("encoder dwpe", a2, r2, dwpe, (size_t)MAXT * C);

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct enc r;
        enc_init(&r, 2);
        enc_round(&r, dt);
        float *g1 = test_rand((size_t)VP * C, 1), *g2 = test_rand((size_t)MAXT * C, 1);
        test_round(dt, g1, (size_t)VP * C);
        test_round(dt, g2, (size_t)MAXT * C);
        float *h1 = test_dup(g1, (size_t)VP * C), *h2 = test_dup(g2, (size_t)MAXT * C);
        enc_fwd(DTYPE_FP32, &r);
        float *out32 = test_dup(r.out, (size_t)N * C);
        enc_fwd(dt, &r);
        check_dt("encoder forward", dt, r.out, out32, (size_t)N * C);
        enc_bwd(DTYPE_FP32, &r, g1, g2);
        enc_bwd(dt, &r, h1, h2);
        check_dt("encoder dwte", dt, h1, g1, (size_t)VP * C);
        check_dt("encoder dwpe", dt, h2, g2, (size_t)MAXT * C);
        free(g1);
        free(g2);
        free(h1);
        free(h2);
        free(out32);
        enc_free(&r);
    }
    free(ref);
    free(dwte);
    free(dwpe);
    free(r1);
    free(r2);
    free(a1);
    free(a2);
    enc_free(&s);
}

/* ---------------------------------------------------------------- layernorm */

struct ln {
    float *inp, *w, *b, *W, *out, mean[N], rstd[N];
};

static void ln_init(struct ln *s, uint64_t seed)
{
    test_seed(seed);
    s->inp = test_rand((size_t)N * C, 2);
    s->w = test_rand(C, 1);
    s->b = test_rand(C, 1);
    s->W = test_rand((size_t)N * C, 1);
    s->out = test_alloc((size_t)N * C);
}

static void ln_round(struct ln *s, enum dtype dt)
{
    test_round(dt, s->inp, (size_t)N * C);
    test_round(dt, s->w, C);
    test_round(dt, s->b, C);
    test_round(dt, s->W, (size_t)N * C);
}

static void ln_fwd(enum dtype dt, struct ln *s)
{
    void *inp = test_to_dt(dt, s->inp, N * C), *w = test_to_dt(dt, s->w, C),
         *b = test_to_dt(dt, s->b, C);
    void *out = test_nan_dt(dt, N * C);
    layernorm_forward_cpu(out, s->mean, s->rstd, inp, w, b, N, C, dt);
    dtype_to_f32(dt, out, s->out, N * C);
    free(inp);
    free(w);
    free(b);
    free(out);
}

/* runs the forward first, for mean and rstd */
static void ln_bwd(enum dtype dt, struct ln *s, float *dinp, float *dw, float *db)
{
    ln_fwd(dt, s);
    void *inp = test_to_dt(dt, s->inp, N * C), *w = test_to_dt(dt, s->w, C),
         *dout = test_to_dt(dt, s->W, N * C);
    void *di = test_to_dt(dt, dinp, N * C), *dwb = test_to_dt(dt, dw, C),
         *dbb = test_to_dt(dt, db, C);
    layernorm_backward_cpu(di, dwb, dbb, dout, inp, w, s->mean, s->rstd, N, C, dt);
    dtype_to_f32(dt, di, dinp, N * C);
    dtype_to_f32(dt, dwb, dw, C);
    dtype_to_f32(dt, dbb, db, C);
    free(inp);
    free(w);
    free(dout);
    free(di);
    free(dwb);
    free(dbb);
}

static double ln_obj(void *ctx)
{
    struct ln *s = ctx;
    ln_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, (size_t)N * C);
}

static void ln_free(struct ln *s)
{
    free(s->inp);
    free(s->w);
    free(s->b);
    free(s->W);
    free(s->out);
}

static void test_layernorm(void)
{
    struct ln s;
    ln_init(&s, 3);
    ln_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc((size_t)N * C), rm[N], rr[N];
    for (int n = 0; n < N; n++) {
        double m = 0, var = 0;
        for (int c = 0; c < C; c++)
            m += s.inp[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++)
            var += (s.inp[n * C + c] - m) * (s.inp[n * C + c] - m);
        var /= C;
        double r = 1 / sqrt(var + 1e-5);
        rm[n] = (float)m;
        rr[n] = (float)r;
        for (int c = 0; c < C; c++)
            ref[n * C + c] = (float)((s.inp[n * C + c] - m) * r * s.w[c] + s.b[c]);
    }
    check_ref("layernorm forward", s.out, ref, (size_t)N * C);
    check_ref("layernorm mean", s.mean, rm, N);
    check_ref("layernorm rstd", s.rstd, rr, N);

    float *dinp = test_alloc((size_t)N * C), *dw = test_alloc(C), *db = test_alloc(C);
    ln_bwd(DTYPE_FP32, &s, dinp, dw, db);
    check_fd("layernorm dinp", s.inp, (size_t)N * C, ln_obj, &s, dinp);
    check_fd("layernorm dweight", s.w, C, ln_obj, &s, dw);
    check_fd("layernorm dbias", s.b, C, ln_obj, &s, db);

    float *r1 = test_rand((size_t)N * C, 1), *r2 = test_rand(C, 1), *r3 = test_rand(C, 1);
    float *a1 = test_dup(r1, (size_t)N * C), *a2 = test_dup(r2, C), *a3 = test_dup(r3, C);
    ln_bwd(DTYPE_FP32, &s, a1, a2, a3);
    check_acc("layernorm dinp", a1, r1, dinp, (size_t)N * C);
    check_acc("layernorm dweight", a2, r2, dw, C);
    check_acc("layernorm dbias", a3, r3, db, C);

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct ln r;
        ln_init(&r, 4);
        ln_round(&r, dt);
        ln_fwd(DTYPE_FP32, &r);
        float *out32 = test_dup(r.out, (size_t)N * C), m32[N], r32[N];
        memcpy(m32, r.mean, sizeof m32);
        memcpy(r32, r.rstd, sizeof r32);
        ln_fwd(dt, &r);
        check_dt("layernorm forward", dt, r.out, out32, (size_t)N * C);
        fails += test_same_bits("layernorm 16-bit mean equals fp32's", r.mean, m32, sizeof m32);
        fails += test_same_bits("layernorm 16-bit rstd equals fp32's", r.rstd, r32, sizeof r32);
        float *g[3] = {test_rand((size_t)N * C, 1), test_rand(C, 1), test_rand(C, 1)};
        size_t gn[3] = {(size_t)N * C, C, C};
        float *h[3];
        for (int i = 0; i < 3; i++) {
            test_round(dt, g[i], gn[i]);
            h[i] = test_dup(g[i], gn[i]);
        }
        ln_bwd(DTYPE_FP32, &r, g[0], g[1], g[2]);
        ln_bwd(dt, &r, h[0], h[1], h[2]);
        check_dt("layernorm dinp", dt, h[0], g[0], gn[0]);
        check_dt("layernorm dweight", dt, h[1], g[1], gn[1]);
        check_dt("layernorm dbias", dt, h[2], g[2], gn[2]);
        for (int i = 0; i < 3; i++) {
            free(g[i]);
            free(h[i]);
        }
        free(out32);
        ln_free(&r);
    }
    free(ref);
    free(dinp);
    free(dw);
    free(db);
    free(r1);
    free(r2);
    free(r3);
    free(a1);
    free(a2);
    free(a3);
    ln_free(&s);
}

/* ---------------------------------------------------------------- matmul */

struct mm {
    float *inp, *w, *bias, *W, *out;
    int has_bias;
};

static void mm_init(struct mm *s, uint64_t seed)
{
    test_seed(seed);
    s->inp = test_rand((size_t)N * C, 1);
    s->w = test_rand((size_t)OC * C, 1);
    s->bias = test_rand(OC, 1);
    s->W = test_rand((size_t)N * OC, 1);
    s->out = test_alloc((size_t)N * OC);
    s->has_bias = 1;
}

static void mm_round(struct mm *s, enum dtype dt)
{
    test_round(dt, s->inp, (size_t)N * C);
    test_round(dt, s->w, (size_t)OC * C);
    test_round(dt, s->bias, OC);
    test_round(dt, s->W, (size_t)N * OC);
}

static void mm_fwd(enum dtype dt, struct mm *s)
{
    void *inp = test_to_dt(dt, s->inp, N * C), *w = test_to_dt(dt, s->w, OC * C);
    void *bias = s->has_bias ? test_to_dt(dt, s->bias, OC) : NULL, *out = test_nan_dt(dt, N * OC);
    matmul_forward_cpu(out, inp, w, bias, N, C, OC, OC, dt);
    dtype_to_f32(dt, out, s->out, N * OC);
    free(inp);
    free(w);
    free(bias);
    free(out);
}

/* dinp and dbias may be NULL, as the kernel allows */
static void mm_bwd(enum dtype dt, struct mm *s, float *dinp, float *dw, float *db)
{
    void *inp = test_to_dt(dt, s->inp, N * C), *w = test_to_dt(dt, s->w, OC * C);
    void *dout = test_to_dt(dt, s->W, N * OC), *dwb = test_to_dt(dt, dw, OC * C);
    void *di = dinp ? test_to_dt(dt, dinp, N * C) : NULL, *dbb = db ? test_to_dt(dt, db, OC) : NULL;
    matmul_backward_cpu(di, dwb, dbb, dout, inp, w, N, C, OC, OC, dt);
    if (dinp) dtype_to_f32(dt, di, dinp, N * C);
    dtype_to_f32(dt, dwb, dw, OC * C);
    if (db) dtype_to_f32(dt, dbb, db, OC);
    free(inp);
    free(w);
    free(dout);
    free(dwb);
    free(di);
    free(dbb);
}

static double mm_obj(void *ctx)
{
    struct mm *s = ctx;
    mm_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, (size_t)N * OC);
}

static void mm_free(struct mm *s)
{
    free(s->inp);
    free(s->w);
    free(s->bias);
    free(s->W);
    free(s->out);
}

static void test_matmul(void)
{
    struct mm s;
    mm_init(&s, 5);
    mm_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc((size_t)N * OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = s.bias[o];
            for (int c = 0; c < C; c++)
                acc += (double)s.inp[n * C + c] * s.w[o * C + c];
            ref[n * OC + o] = (float)acc;
        }
    check_ref("matmul forward", s.out, ref, (size_t)N * OC);
    s.has_bias = 0;
    mm_fwd(DTYPE_FP32, &s);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            ref[n * OC + o] -= s.bias[o];
    check_ref("matmul forward without bias", s.out, ref, (size_t)N * OC);
    s.has_bias = 1;

    float *dinp = test_alloc((size_t)N * C), *dw = test_alloc((size_t)OC * C);
    float *db = test_alloc(OC);
    mm_bwd(DTYPE_FP32, &s, dinp, dw, db);
    check_fd("matmul dinp", s.inp, (size_t)N * C, mm_obj, &s, dinp);
    check_fd("matmul dweight", s.w, (size_t)OC * C, mm_obj, &s, dw);
    check_fd("matmul dbias", s.bias, OC, mm_obj, &s, db);

    float *r1 = test_rand((size_t)N * C, 1), *r2 = test_rand((size_t)OC * C, 1);
    float *r3 = test_rand(OC, 1);
    float *a1 = test_dup(r1, (size_t)N * C), *a2 = test_dup(r2, (size_t)OC * C);
    float *a3 = test_dup(r3, OC);
    mm_bwd(DTYPE_FP32, &s, a1, a2, a3);
    check_acc("matmul dinp", a1, r1, dinp, (size_t)N * C);
    check_acc("matmul dweight", a2, r2, dw, (size_t)OC * C);
    check_acc("matmul dbias", a3, r3, db, OC);
    float *dw_only = test_alloc((size_t)OC * C);
    mm_bwd(DTYPE_FP32, &s, NULL, dw_only, NULL);
    fails += test_same_bits("matmul dweight with dinp and dbias NULL", dw_only, dw,
                            (size_t)OC * C * sizeof(float));

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct mm r;
        mm_init(&r, 6);
        mm_round(&r, dt);
        mm_fwd(DTYPE_FP32, &r);
        float *out32 = test_dup(r.out, (size_t)N * OC);
        mm_fwd(dt, &r);
        check_dt("matmul forward", dt, r.out, out32, (size_t)N * OC);
        float *g[3] = {test_rand((size_t)N * C, 1), test_rand((size_t)OC * C, 1), test_rand(OC, 1)};
        size_t gn[3] = {(size_t)N * C, (size_t)OC * C, OC};
        float *h[3];
        for (int i = 0; i < 3; i++) {
            test_round(dt, g[i], gn[i]);
            h[i] = test_dup(g[i], gn[i]);
        }
        mm_bwd(DTYPE_FP32, &r, g[0], g[1], g[2]);
        mm_bwd(dt, &r, h[0], h[1], h[2]);
        check_dt("matmul dinp", dt, h[0], g[0], gn[0]);
        check_dt("matmul dweight", dt, h[1], g[1], gn[1]);
        check_dt("matmul dbias", dt, h[2], g[2], gn[2]);
        for (int i = 0; i < 3; i++) {
            free(g[i]);
            free(h[i]);
        }
        free(out32);
        mm_free(&r);
    }
    free(ref);
    free(dinp);
    free(dw);
    free(db);
    free(dw_only);
    free(r1);
    free(r2);
    free(r3);
    free(a1);
    free(a2);
    free(a3);
    mm_free(&s);
}

/* ---------------------------------------------------------------- attention */

#define NATT ((size_t)B * NH * T * T)

struct att {
    float *qkv, *W, *out, *att;
};

static void att_init(struct att *s, uint64_t seed)
{
    test_seed(seed);
    s->qkv = test_rand((size_t)N * 3 * C, 2);
    s->W = test_rand((size_t)N * C, 1);
    s->out = test_alloc((size_t)N * C);
    s->att = test_alloc(NATT);
}

static void att_round(struct att *s, enum dtype dt)
{
    test_round(dt, s->qkv, (size_t)N * 3 * C);
    test_round(dt, s->W, (size_t)N * C);
}

static void att_fwd(enum dtype dt, struct att *s)
{
    void *qkv = test_to_dt(dt, s->qkv, N * 3 * C), *out = test_nan_dt(dt, N * C),
         *a = test_nan_dt(dt, NATT);
    attention_forward_cpu(out, a, qkv, B, T, C, NH, dt);
    dtype_to_f32(dt, out, s->out, N * C);
    dtype_to_f32(dt, a, s->att, NATT);
    free(qkv);
    free(out);
    free(a);
}

/* the backward of the forward's att as stored (in dt); runs the forward only when asked, so a
 * dtype comparison can give both paths the same probabilities */
static void att_bwd(enum dtype dt, struct att *s, float *dqkv, int run_forward)
{
    if (run_forward) att_fwd(dt, s);
    void *qkv = test_to_dt(dt, s->qkv, N * 3 * C), *a = test_to_dt(dt, s->att, NATT);
    void *dout = test_to_dt(dt, s->W, N * C), *d = test_to_dt(dt, dqkv, N * 3 * C);
    attention_backward_cpu(d, dout, qkv, a, B, T, C, NH, dt);
    dtype_to_f32(dt, d, dqkv, N * 3 * C);
    free(qkv);
    free(a);
    free(dout);
    free(d);
}

static double att_obj(void *ctx)
{
    struct att *s = ctx;
    att_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, (size_t)N * C);
}

static void att_free(struct att *s)
{
    free(s->qkv);
    free(s->W);
    free(s->out);
    free(s->att);
}

static void test_attention(void)
{
    struct att s;
    att_init(&s, 7);
    att_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc((size_t)N * C), *aref = test_alloc(NATT);
    double scale = 1 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double p[T], mx = -INFINITY, sum = 0;
                const float *q = s.qkv + (b * T + t) * 3 * C + h * HS;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = s.qkv + (b * T + t2) * 3 * C + C + h * HS;
                    p[t2] = 0;
                    for (int i = 0; i < HS; i++)
                        p[t2] += (double)q[i] * k[i] * scale;
                    mx = fmax(mx, p[t2]);
                }
                for (int t2 = 0; t2 <= t; t2++)
                    sum += p[t2] = exp(p[t2] - mx);
                for (int t2 = 0; t2 < T; t2++)
                    aref[((b * NH + h) * T + t) * T + t2] = t2 <= t ? (float)(p[t2] / sum) : 0;
                for (int i = 0; i < HS; i++) {
                    double y = 0;
                    for (int t2 = 0; t2 <= t; t2++)
                        y += p[t2] / sum * s.qkv[(b * T + t2) * 3 * C + 2 * C + h * HS + i];
                    ref[(b * T + t) * C + h * HS + i] = (float)y;
                }
            }
    check_ref("attention forward", s.out, ref, (size_t)N * C);
    check_ref("attention probabilities", s.att, aref, NATT);

    float *dqkv = test_alloc((size_t)N * 3 * C);
    att_bwd(DTYPE_FP32, &s, dqkv, 1);
    check_fd("attention dqkv", s.qkv, (size_t)N * 3 * C, att_obj, &s, dqkv);

    float *r1 = test_rand((size_t)N * 3 * C, 1), *a1 = test_dup(r1, (size_t)N * 3 * C);
    att_bwd(DTYPE_FP32, &s, a1, 1);
    check_acc("attention dqkv", a1, r1, dqkv, (size_t)N * 3 * C);

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct att r;
        att_init(&r, 8);
        att_round(&r, dt);
        att_fwd(DTYPE_FP32, &r);
        float *out32 = test_dup(r.out, (size_t)N * C), *att32 = test_dup(r.att, NATT);
        att_fwd(dt, &r);
        check_dt("attention forward", dt, r.out, out32, (size_t)N * C);
        check_dt("attention probabilities", dt, r.att, att32, NATT);
        float *g = test_rand((size_t)N * 3 * C, 1);
        test_round(dt, g, (size_t)N * 3 * C);
        float *hq = test_dup(g, (size_t)N * 3 * C);
        att_bwd(DTYPE_FP32, &r, g, 0); /* both from the dt forward's rounded probabilities */
        att_bwd(dt, &r, hq, 0);
        check_dt("attention dqkv", dt, hq, g, (size_t)N * 3 * C);
        free(g);
        free(hq);
        free(out32);
        free(att32);
        att_free(&r);
    }
    free(ref);
    free(aref);
    free(dqkv);
    free(r1);
    free(a1);
    att_free(&s);
}

/* ---------------------------------------------------------------- gelu and residual add */

#define NE ((size_t)N * C)

struct ew {
    float *a, *b, *W, *out;
    int op; /* 0 gelu(a), 1 a + b */
};

static void ew_init(struct ew *s, uint64_t seed, int op)
{
    test_seed(seed);
    s->a = test_rand(NE, 4); /* gelu's tails and its curved middle */
    s->b = test_rand(NE, 1);
    s->W = test_rand(NE, 1);
    s->out = test_alloc(NE);
    s->op = op;
}

static void ew_round(struct ew *s, enum dtype dt)
{
    test_round(dt, s->a, NE);
    test_round(dt, s->b, NE);
    test_round(dt, s->W, NE);
}

static void ew_fwd(enum dtype dt, struct ew *s)
{
    void *a = test_to_dt(dt, s->a, NE), *b = test_to_dt(dt, s->b, NE), *out = test_nan_dt(dt, NE);
    if (s->op == 0)
        gelu_forward_cpu(out, a, NE, dt);
    else
        add_forward_cpu(out, a, b, NE, dt);
    dtype_to_f32(dt, out, s->out, NE);
    free(a);
    free(b);
    free(out);
}

/* gelu: da += gelu'(a) W; add: da += W and db += W (two accumulates, as the graph does) */
static void ew_bwd(enum dtype dt, struct ew *s, float *da, float *db)
{
    void *a = test_to_dt(dt, s->a, NE), *dout = test_to_dt(dt, s->W, NE);
    void *dab = test_to_dt(dt, da, NE), *dbb = test_to_dt(dt, db, NE);
    if (s->op == 0) {
        gelu_backward_cpu(dab, a, dout, NE, dt);
    } else {
        accumulate_cpu(dab, dout, NE, dt);
        accumulate_cpu(dbb, dout, NE, dt);
    }
    dtype_to_f32(dt, dab, da, NE);
    dtype_to_f32(dt, dbb, db, NE);
    free(a);
    free(dout);
    free(dab);
    free(dbb);
}

static double ew_obj(void *ctx)
{
    struct ew *s = ctx;
    ew_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, NE);
}

static void ew_free(struct ew *s)
{
    free(s->a);
    free(s->b);
    free(s->W);
    free(s->out);
}

static void test_elementwise(int op)
{
    const char *name = op == 0 ? "gelu" : "add";
    char what[64];
    struct ew s;
    ew_init(&s, 9 + op, op);
    ew_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc(NE);
    for (size_t i = 0; i < NE; i++) {
        double x = s.a[i];
        ref[i] = op == 0
                     ? (float)(0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))))
                     : (float)(x + s.b[i]);
    }
    snprintf(what, sizeof what, "%s forward", name);
    check_ref(what, s.out, ref, NE);

    float *da = test_alloc(NE), *db = test_alloc(NE);
    ew_bwd(DTYPE_FP32, &s, da, db);
    snprintf(what, sizeof what, "%s da", name);
    check_fd(what, s.a, NE, ew_obj, &s, da);
    if (op == 1) {
        check_fd("add db", s.b, NE, ew_obj, &s, db);
        /* the residual runs in place: out may be one of the inputs */
        float *x = test_dup(s.a, NE);
        ew_fwd(DTYPE_FP32, &s);
        add_forward_cpu(x, x, s.b, NE, DTYPE_FP32);
        fails += test_same_bits("add forward in place", x, s.out, NE * sizeof(float));
        free(x);
    }

    float *r1 = test_rand(NE, 1), *r2 = test_rand(NE, 1);
    float *a1 = test_dup(r1, NE), *a2 = test_dup(r2, NE);
    ew_bwd(DTYPE_FP32, &s, a1, a2);
    snprintf(what, sizeof what, "%s da", name);
    check_acc(what, a1, r1, da, NE);
    if (op == 1) check_acc("add db", a2, r2, db, NE);

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct ew r;
        ew_init(&r, 11 + op, op);
        ew_round(&r, dt);
        ew_fwd(DTYPE_FP32, &r);
        float *out32 = test_dup(r.out, NE);
        ew_fwd(dt, &r);
        snprintf(what, sizeof what, "%s forward", name);
        check_dt(what, dt, r.out, out32, NE);
        float *g1 = test_rand(NE, 1), *g2 = test_rand(NE, 1);
        test_round(dt, g1, NE);
        test_round(dt, g2, NE);
        float *h1 = test_dup(g1, NE), *h2 = test_dup(g2, NE);
        ew_bwd(DTYPE_FP32, &r, g1, g2);
        ew_bwd(dt, &r, h1, h2);
        snprintf(what, sizeof what, "%s da", name);
        check_dt(what, dt, h1, g1, NE);
        if (op == 1) check_dt("add db", dt, h2, g2, NE);
        free(g1);
        free(g2);
        free(h1);
        free(h2);
        free(out32);
        ew_free(&r);
    }
    free(ref);
    free(da);
    free(db);
    free(r1);
    free(r2);
    free(a1);
    free(a2);
    ew_free(&s);
}

/* ---------------------------------------------------------------- crossentropy */

#define NL    ((size_t)N * VP)
#define DLOSS 0.7f

struct ce {
    float *logits, losses[N];
    int32_t tgt[N];
};

/* padding columns hold `pad`: NaN, or a value large enough to dominate the softmax, so that a
 * kernel that reads them cannot pass */
static void ce_init(struct ce *s, uint64_t seed, float pad)
{
    test_seed(seed);
    s->logits = test_rand(NL, 3);
    for (int n = 0; n < N; n++) {
        s->tgt[n] = (int32_t)((n * 5 + 2) % V);
        for (int i = V; i < VP; i++)
            s->logits[n * VP + i] = pad;
    }
    s->tgt[0] = V - 1;
}

static void ce_fwd(enum dtype dt, struct ce *s)
{
    void *l = test_to_dt(dt, s->logits, NL);
    crossentropy_forward_cpu(s->losses, l, s->tgt, N, V, VP, dt);
    free(l);
}

/* dlogits starts as garbage: the backward overwrites */
static void ce_bwd(enum dtype dt, struct ce *s, float *dlogits)
{
    void *l = test_to_dt(dt, s->logits, NL);
    float *garbage = test_rand(NL, 100);
    void *d = test_to_dt(dt, garbage, NL);
    crossentropy_backward_cpu(d, l, s->tgt, DLOSS, N, V, VP, dt);
    dtype_to_f32(dt, d, dlogits, NL);
    free(l);
    free(d);
    free(garbage);
}

static double ce_obj(void *ctx)
{
    struct ce *s = ctx;
    ce_fwd(DTYPE_FP32, s);
    double sum = 0;
    for (int n = 0; n < N; n++)
        sum += s->losses[n];
    return DLOSS * sum;
}

static void test_crossentropy(void)
{
    struct ce s;
    ce_init(&s, 13, NAN);
    ce_fwd(DTYPE_FP32, &s);
    float ref[N];
    for (int n = 0; n < N; n++) {
        double sum = 0;
        for (int i = 0; i < V; i++)
            sum += exp((double)s.logits[n * VP + i]);
        ref[n] = (float)(log(sum) - s.logits[n * VP + s.tgt[n]]);
    }
    check_ref("crossentropy forward (NaN padding ignored)", s.losses, ref, N);

    float *dl = test_alloc(NL);
    ce_bwd(DTYPE_FP32, &s, dl);
    struct ce f; /* finite differences need finite padding */
    ce_init(&f, 13, 50.0f);
    float *dlf = test_alloc(NL);
    ce_bwd(DTYPE_FP32, &f, dlf);
    check_fd("crossentropy dlogits", f.logits, NL, ce_obj, &f, dlf);
    free(dlf);
    free(f.logits);
    int pad_bad = 0;
    for (int n = 0; n < N; n++)
        for (int i = V; i < VP; i++)
            pad_bad += dl[n * VP + i] != 0.0f || signbit(dl[n * VP + i]);
    if (pad_bad) {
        printf("FAIL crossentropy: %d padding gradients are not +0\n", pad_bad);
        fails++;
    } else {
        printf("ok   crossentropy padding gradients are 0\n");
    }
    float *inplace = test_dup(s.logits, NL);
    crossentropy_backward_cpu(inplace, inplace, s.tgt, DLOSS, N, V, VP, DTYPE_FP32);
    fails += test_same_bits("crossentropy backward in place", inplace, dl, NL * sizeof(float));

    for (int k = 0; k < 2; k++) {
        enum dtype dt = half_types[k];
        struct ce r;
        ce_init(&r, 14, NAN);
        test_round(dt, r.logits, NL);
        ce_fwd(DTYPE_FP32, &r);
        float l32[N], *g32 = test_alloc(NL), *g16 = test_alloc(NL);
        memcpy(l32, r.losses, sizeof l32);
        ce_fwd(dt, &r);
        check_dt("crossentropy forward", dt, r.losses, l32, N);
        ce_bwd(DTYPE_FP32, &r, g32);
        ce_bwd(dt, &r, g16);
        check_dt("crossentropy dlogits", dt, g16, g32, NL);
        void *ip = test_to_dt(dt, r.logits, NL);
        crossentropy_backward_cpu(ip, ip, r.tgt, DLOSS, N, V, VP, dt);
        dtype_to_f32(dt, ip, g32, NL);
        fails +=
            test_same_bits("crossentropy 16-bit backward in place", g32, g16, NL * sizeof(float));
        free(ip);
        free(g32);
        free(g16);
        free(r.logits);
    }
    free(dl);
    free(inplace);
    free(s.logits);
}

/* ---------------------------------------------------------------- cast */

static void test_cast(void)
{
    enum dtype all[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};
    size_t n = 10000; /* more than one block */
    test_seed(15);
    float *x = test_rand(n, 1000);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            void *src = test_to_dt(all[i], x, n), *dst = test_nan_dt(all[j], n);
            cast_cpu(dst, all[j], src, all[i], n);
            /* the reference rounds the source value (exact in fp32) once into the target */
            float *sv = test_alloc(n);
            dtype_to_f32(all[i], src, sv, n);
            void *refb = test_to_dt(all[j], sv, n);
            char what[64];
            snprintf(what, sizeof what, "cast %s -> %s", dtype_name(all[i]), dtype_name(all[j]));
            fails += test_same_bits(what, dst, refb, n * dtype_size(all[j]));
            free(src);
            free(dst);
            free(sv);
            free(refb);
        }
    free(x);
}

int main(void)
{
    test_encoder();
    test_layernorm();
    test_matmul();
    test_attention();
    test_elementwise(0);
    test_elementwise(1);
    test_crossentropy();
    test_cast();
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
