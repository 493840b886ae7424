/* test_grad_cpu.c: the CPU kernels' forward values, gradients and dtype paths.
 *
 * For every operation: the forward against a naive double-precision reference; every backward
 * against central finite differences of the scalar objective sum(out * W) (W random, so dout =
 * W); the accumulate contract (a backward on a non-zero gradient adds to it); and the fp16/bf16
 * paths against the fp32 path on the same (rounded) inputs, which they must match to within one
 * rounding of the result (attention's gradient: a few, its 16-bit backward rounding the
 * probabilities it recomputes). Small odd shapes so that every index computation is exercised. All
 * operations but the crossentropy (a loss: no dout, and its backward overwrites) go through one
 * driver, test_op(), described by a struct op_desc. */
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
/* within one rounding of dt of the result; with ulps > 0, within ulps roundings of dt of the
 * result or of the largest element (a sum whose terms were rounded cancels to small values) */
static void check_dt_ulps(const char *what, enum dtype dt, const float *got, const float *ref,
                          size_t n, int ulps)
{
    char name[128];
    snprintf(name, sizeof name, "%s %s vs fp32", what, dtype_name(dt));
    double eps = dt == DTYPE_FP16 ? 0x1p-10 : 0x1p-7, rtol = ulps ? ulps * eps : eps;
    double atol = dt == DTYPE_FP16 ? 0x1p-24 : 0x1p-126, big = 0;
    for (size_t i = 0; ulps && i < n; i++)
        big = fmax(big, fabs(ref[i]));
    if (ulps) atol = ulps * eps * big;
    fails += test_close(name, got, ref, n, atol, rtol);
}

static void check_dt(const char *what, enum dtype dt, const float *got, const float *ref, size_t n)
{
    check_dt_ulps(what, dt, got, ref, n, 0);
}

static const enum dtype half_types[] = {DTYPE_FP16, DTYPE_BF16};

/* ---------------------------------------------------------------- the driver */

#define MAXIN   3
#define MAXSIDE 2

struct op;

/* One operation: out = f(in[0..nin-1]), objective sum(out * W). The callbacks see the inputs, the
 * dout (= W) and the gradients already converted to dt, and the output as dt NaNs the forward must
 * overwrite; a gradient pointer may be NULL (the kernel must then leave it alone). Side outputs
 * are fp32 state the forward keeps for the backward (layernorm's mean and rstd, attention's
 * softmax statistics), held in s->side. */
struct op_desc {
    const char *name;
    uint64_t seed, half_seed; /* inputs of the fp32 checks, and of the 16-bit comparison */
    int nin, ngrad;           /* the backward gives the gradients of in[0..ngrad-1] */
    const char *in_name[MAXIN];
    size_t in_n[MAXIN];
    float in_scale[MAXIN]; /* in[i] is uniform in [-in_scale[i], in_scale[i]) */
    size_t nout;
    int nside;
    const char *side_name[MAXSIDE];
    size_t side_n[MAXSIDE];
    int side_exact;              /* the 16-bit paths must give the fp32 side outputs bit for bit */
    int half_grad_ulps;          /* 16-bit gradients: check_dt_ulps's ulps (0: one rounding) */
    void (*setup)(struct op *s); /* optional: state beyond the random inputs */
    void (*fwd)(enum dtype dt, struct op *s, void *out, void *const *in);
    void (*bwd)(enum dtype dt, struct op *s, void *const *grad, const void *dout, void *const *in);
    /* the forward (and side outputs) of s->in in double precision */
    void (*reference)(const struct op *s, float *out, float *const *side);
    void (*extra)(struct op *s, float *const *grad); /* optional: checks of this op alone */
};

struct op {
    const struct op_desc *d;
    float *in[MAXIN], *W, *out, *side[MAXSIDE];
    int32_t tok[N]; /* encoder */
    int no_bias;    /* matmul */
};

static void op_init(struct op *s, const struct op_desc *d, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    test_seed(seed);
    for (int i = 0; i < d->nin; i++)
        s->in[i] = test_rand(d->in_n[i], d->in_scale[i]);
    s->W = test_rand(d->nout, 1);
    s->out = test_alloc(d->nout);
    for (int i = 0; i < d->nside; i++)
        s->side[i] = test_alloc(d->side_n[i]);
    if (d->setup) d->setup(s);
}

static void op_round(struct op *s, enum dtype dt)
{
    for (int i = 0; i < s->d->nin; i++)
        test_round(dt, s->in[i], s->d->in_n[i]);
    test_round(dt, s->W, s->d->nout);
}

static void op_free(struct op *s)
{
    for (int i = 0; i < s->d->nin; i++)
        free(s->in[i]);
    for (int i = 0; i < s->d->nside; i++)
        free(s->side[i]);
    free(s->W);
    free(s->out);
}

static void op_fwd(enum dtype dt, struct op *s)
{
    const struct op_desc *d = s->d;
    void *in[MAXIN] = {0}, *out = test_nan_dt(dt, d->nout);
    for (int i = 0; i < d->nin; i++)
        in[i] = test_to_dt(dt, s->in[i], d->in_n[i]);
    d->fwd(dt, s, out, in);
    dtype_to_f32(dt, out, s->out, d->nout);
    for (int i = 0; i < d->nin; i++)
        free(in[i]);
    free(out);
}

/* grad[i] += the gradient of in[i], through dt; uses the side outputs of the last forward */
static void op_bwd(enum dtype dt, struct op *s, float *const *grad)
{
    const struct op_desc *d = s->d;
    void *in[MAXIN] = {0}, *g[MAXIN] = {0}, *dout = test_to_dt(dt, s->W, d->nout);
    for (int i = 0; i < d->nin; i++)
        in[i] = test_to_dt(dt, s->in[i], d->in_n[i]);
    for (int i = 0; i < d->ngrad; i++)
        if (grad[i]) g[i] = test_to_dt(dt, grad[i], d->in_n[i]);
    d->bwd(dt, s, g, dout, in);
    for (int i = 0; i < d->ngrad; i++)
        if (grad[i]) dtype_to_f32(dt, g[i], grad[i], d->in_n[i]);
    for (int i = 0; i < d->nin; i++) {
        free(in[i]);
        free(g[i]);
    }
    free(dout);
}

static double op_obj(void *ctx)
{
    struct op *s = ctx;
    op_fwd(DTYPE_FP32, s);
    return dot(s->out, s->W, s->d->nout);
}

/* n_i random gradients, rounded to dt (nothing to round for fp32) */
static void rand_grads(const struct op_desc *d, enum dtype dt, float **g)
{
    for (int i = 0; i < d->ngrad; i++) {
        g[i] = test_rand(d->in_n[i], 1);
        test_round(dt, g[i], d->in_n[i]);
    }
}

static void dup_grads(const struct op_desc *d, float *const *g, float **copy)
{
    for (int i = 0; i < d->ngrad; i++)
        copy[i] = test_dup(g[i], d->in_n[i]);
}

static void free_grads(const struct op_desc *d, float **g)
{
    for (int i = 0; i < d->ngrad; i++)
        free(g[i]);
}

/* fp16/bf16 against fp32 on the same rounded inputs; both backwards read the side outputs of the
 * 16-bit forward */
static void test_op_half(const struct op_desc *d, enum dtype dt)
{
    char what[128];
    struct op r;
    op_init(&r, d, d->half_seed);
    op_round(&r, dt);
    op_fwd(DTYPE_FP32, &r);
    float *out32 = test_dup(r.out, d->nout), *side32[MAXSIDE];
    for (int i = 0; i < d->nside; i++)
        side32[i] = test_dup(r.side[i], d->side_n[i]);
    op_fwd(dt, &r);
    snprintf(what, sizeof what, "%s forward", d->name);
    check_dt(what, dt, r.out, out32, d->nout);
    for (int i = 0; i < d->nside; i++) {
        if (d->side_exact) {
            snprintf(what, sizeof what, "%s 16-bit %s equals fp32's", d->name, d->side_name[i]);
            fails += test_same_bits(what, r.side[i], side32[i], d->side_n[i] * sizeof(float));
        } else {
            snprintf(what, sizeof what, "%s %s", d->name, d->side_name[i]);
            check_dt(what, dt, r.side[i], side32[i], d->side_n[i]);
        }
        free(side32[i]);
    }
    float *g[MAXIN], *h[MAXIN];
    rand_grads(d, dt, g);
    dup_grads(d, g, h);
    op_bwd(DTYPE_FP32, &r, g);
    op_bwd(dt, &r, h);
    for (int i = 0; i < d->ngrad; i++) {
        snprintf(what, sizeof what, "%s d%s", d->name, d->in_name[i]);
        check_dt_ulps(what, dt, h[i], g[i], d->in_n[i], d->half_grad_ulps);
    }
    free_grads(d, g);
    free_grads(d, h);
    free(out32);
    op_free(&r);
}

static void test_op(const struct op_desc *d)
{
    char what[128];
    struct op s;
    op_init(&s, d, d->seed);
    op_fwd(DTYPE_FP32, &s);
    float *ref = test_alloc(d->nout), *side_ref[MAXSIDE];
    for (int i = 0; i < d->nside; i++)
        side_ref[i] = test_alloc(d->side_n[i]);
    d->reference(&s, ref, side_ref);
    snprintf(what, sizeof what, "%s forward", d->name);
    check_ref(what, s.out, ref, d->nout);
    for (int i = 0; i < d->nside; i++) {
        snprintf(what, sizeof what, "%s %s", d->name, d->side_name[i]);
        check_ref(what, s.side[i], side_ref[i], d->side_n[i]);
        free(side_ref[i]);
    }

    float *grad[MAXIN], *init[MAXIN], *acc[MAXIN];
    for (int i = 0; i < d->ngrad; i++)
        grad[i] = test_alloc(d->in_n[i]);
    op_fwd(DTYPE_FP32, &s);
    op_bwd(DTYPE_FP32, &s, grad);
    for (int i = 0; i < d->ngrad; i++) {
        snprintf(what, sizeof what, "%s d%s", d->name, d->in_name[i]);
        check_fd(what, s.in[i], d->in_n[i], op_obj, &s, grad[i]);
    }

    rand_grads(d, DTYPE_FP32, init);
    dup_grads(d, init, acc);
    op_fwd(DTYPE_FP32, &s);
    op_bwd(DTYPE_FP32, &s, acc);
    for (int i = 0; i < d->ngrad; i++) {
        snprintf(what, sizeof what, "%s d%s", d->name, d->in_name[i]);
        check_acc(what, acc[i], init[i], grad[i], d->in_n[i]);
    }
    if (d->extra) d->extra(&s, grad);

    for (int k = 0; k < 2; k++)
        test_op_half(d, half_types[k]);
    free(ref);
    free_grads(d, grad);
    free_grads(d, init);
    free_grads(d, acc);
    op_free(&s);
}

/* ---------------------------------------------------------------- encoder */

static void enc_setup(struct op *s)
{
    for (int n = 0; n < N; n++)
        s->tok[n] = (int32_t)((n * 7 + 3) % V);
    s->tok[N - 1] = s->tok[0]; /* a repeated token: its dwte row sums two rows of dout */
    s->tok[1] = s->tok[0];
}

static void enc_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    encoder_forward_cpu(out, s->tok, in[0], in[1], B, T, C, dt);
}

static void enc_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    (void)in;
    encoder_backward_cpu(g[0], g[1], dout, s->tok, B, T, C, dt);
}

static void enc_ref(const struct op *s, float *out, float *const *side)
{
    (void)side;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[n * C + c] = s->in[0][s->tok[n] * C + c] + s->in[1][(n % T) * C + c];
}

static const struct op_desc encoder = {
    .name = "encoder",
    .seed = 1,
    .half_seed = 2,
    .nin = 2,
    .ngrad = 2,
    .in_name = {"wte", "wpe"},
    .in_n = {(size_t)VP * C, (size_t)MAXT *C},
    .in_scale = {1, 1},
    .nout = (size_t)N * C,
    .setup = enc_setup,
    .fwd = enc_fwd,
    .bwd = enc_bwd,
    .reference = enc_ref,
};

/* ---------------------------------------------------------------- layernorm */

static void ln_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    layernorm_forward_cpu(out, s->side[0], s->side[1], in[0], in[1], in[2], N, C, dt);
}

static void ln_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    layernorm_backward_cpu(g[0], g[1], g[2], dout, in[0], in[1], s->side[0], s->side[1], N, C, dt);
}

static void ln_ref(const struct op *s, float *out, float *const *side)
{
    const float *inp = s->in[0], *w = s->in[1], *b = s->in[2];
    for (int n = 0; n < N; n++) {
        double m = 0, var = 0;
        for (int c = 0; c < C; c++)
            m += inp[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++)
            var += (inp[n * C + c] - m) * (inp[n * C + c] - m);
        var /= C;
        double r = 1 / sqrt(var + 1e-5);
        side[0][n] = (float)m;
        side[1][n] = (float)r;
        for (int c = 0; c < C; c++)
            out[n * C + c] = (float)((inp[n * C + c] - m) * r * w[c] + b[c]);
    }
}

static const struct op_desc layernorm = {
    .name = "layernorm",
    .seed = 3,
    .half_seed = 4,
    .nin = 3,
    .ngrad = 3,
    .in_name = {"inp", "weight", "bias"},
    .in_n = {(size_t)N * C, C, C},
    .in_scale = {2, 1, 1},
    .nout = (size_t)N * C,
    .nside = 2,
    .side_name = {"mean", "rstd"},
    .side_n = {N, N},
    .side_exact = 1,
    .fwd = ln_fwd,
    .bwd = ln_bwd,
    .reference = ln_ref,
};

/* ---------------------------------------------------------------- matmul */

static void mm_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    matmul_forward_cpu(out, in[0], in[1], s->no_bias ? NULL : in[2], N, C, OC, OC, dt);
}

static void mm_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    (void)s;
    matmul_backward_cpu(g[0], dt, g[1], g[2], dout, in[0], in[1], N, C, OC, OC, dt, 0);
}

static void mm_ref_bias(const struct op *s, float *out, int with_bias)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = with_bias ? s->in[2][o] : 0;
            for (int c = 0; c < C; c++)
                acc += (double)s->in[0][n * C + c] * s->in[1][o * C + c];
            out[n * OC + o] = (float)acc;
        }
}

static void mm_ref(const struct op *s, float *out, float *const *side)
{
    (void)side;
    mm_ref_bias(s, out, 1);
}

/* the bias is optional in the forward, and dinp and dbias in the backward */
static void mm_extra(struct op *s, float *const *grad)
{
    float *ref = test_alloc((size_t)N * OC);
    mm_ref_bias(s, ref, 0);
    s->no_bias = 1;
    op_fwd(DTYPE_FP32, s);
    s->no_bias = 0;
    check_ref("matmul forward without bias", s->out, ref, (size_t)N * OC);
    float *dw_only = test_alloc((size_t)OC * C);
    op_bwd(DTYPE_FP32, s, (float *[]){NULL, dw_only, NULL});
    fails += test_same_bits("matmul dweight with dinp and dbias NULL", dw_only, grad[1],
                            (size_t)OC * C * sizeof(float));
    free(ref);
    free(dw_only);
}

static const struct op_desc matmul = {
    .name = "matmul",
    .seed = 5,
    .half_seed = 6,
    .nin = 3,
    .ngrad = 3,
    .in_name = {"inp", "weight", "bias"},
    .in_n = {(size_t)N * C, (size_t)OC *C, OC},
    .in_scale = {1, 1, 1},
    .nout = (size_t)N * OC,
    .fwd = mm_fwd,
    .bwd = mm_bwd,
    .reference = mm_ref,
    .extra = mm_extra,
};

/* ---------------------------------------------------------------- attention */

#define NSTATS ((size_t)B * NH * T * 2)

static void att_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    flash_attention_forward_cpu(out, s->side[0], in[0], B, T, C, NH, dt);
}

/* the CPU backward recomputes the probabilities from the statistics and does not read out */
static void att_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    flash_attention_backward_cpu(g[0], dout, in[0], NULL, s->side[0], B, T, C, NH, dt);
}

static void att_ref(const struct op *s, float *out, float *const *side)
{
    const float *qkv = s->in[0];
    double scale = 1 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double p[T], mx = -INFINITY, sum = 0;
                const float *q = qkv + (b * T + t) * 3 * C + h * HS;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + (b * T + t2) * 3 * C + C + h * HS;
                    p[t2] = 0;
                    for (int i = 0; i < HS; i++)
                        p[t2] += (double)q[i] * k[i] * scale;
                    mx = fmax(mx, p[t2]);
                }
                for (int t2 = 0; t2 <= t; t2++)
                    sum += p[t2] = exp(p[t2] - mx);
                side[0][((b * NH + h) * T + t) * 2] = (float)mx;
                side[0][((b * NH + h) * T + t) * 2 + 1] = (float)sum;
                for (int i = 0; i < HS; i++) {
                    double y = 0;
                    for (int t2 = 0; t2 <= t; t2++)
                        y += p[t2] / sum * qkv[(b * T + t2) * 3 * C + 2 * C + h * HS + i];
                    out[(b * T + t) * C + h * HS + i] = (float)y;
                }
            }
}

static const struct op_desc attention = {
    .name = "attention",
    .seed = 7,
    .half_seed = 8,
    .nin = 1,
    .ngrad = 1,
    .in_name = {"qkv"},
    .in_n = {(size_t)N * 3 * C},
    .in_scale = {2},
    .nout = (size_t)N * C,
    .nside = 1,
    .side_name = {"softmax statistics"},
    .side_n = {NSTATS},
    .side_exact = 1, /* computed in fp32 from the widened inputs whatever dt is */
    /* the 16-bit backward rounds the recomputed probabilities to dt, as the products' operand
     * (the fp32 one keeps them exact), and sums of them cancel: up to 2.4 roundings of the
     * result seen, 0.1 of the largest element */
    .half_grad_ulps = 4,
    .fwd = att_fwd,
    .bwd = att_bwd,
    .reference = att_ref,
};

/* ---------------------------------------------------------------- gelu and residual add */

#define NE ((size_t)N * C)

static void gelu_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    (void)s;
    gelu_forward_cpu(out, in[0], NE, dt);
}

static void gelu_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    (void)s;
    gelu_backward_cpu(g[0], in[0], dout, NE, dt);
}

static void gelu_ref(const struct op *s, float *out, float *const *side)
{
    (void)side;
    for (size_t i = 0; i < NE; i++) {
        double x = s->in[0][i];
        out[i] = (float)(0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))));
    }
}

static void add_fwd(enum dtype dt, struct op *s, void *out, void *const *in)
{
    (void)s;
    add_forward_cpu(out, in[0], in[1], NE, dt);
}

/* da += W and db += W: the add kernel in place (out may be one of its inputs) */
static void add_bwd(enum dtype dt, struct op *s, void *const *g, const void *dout, void *const *in)
{
    (void)s;
    (void)in;
    add_forward_cpu(g[0], g[0], dout, NE, dt);
    add_forward_cpu(g[1], g[1], dout, NE, dt);
}

static void add_ref(const struct op *s, float *out, float *const *side)
{
    (void)side;
    for (size_t i = 0; i < NE; i++)
        out[i] = (float)((double)s->in[0][i] + s->in[1][i]);
}

/* the residual runs in place: out may be one of the inputs */
static void add_extra(struct op *s, float *const *grad)
{
    (void)grad;
    float *x = test_dup(s->in[0], NE);
    op_fwd(DTYPE_FP32, s);
    add_forward_cpu(x, x, s->in[1], NE, DTYPE_FP32);
    fails += test_same_bits("add forward in place", x, s->out, NE * sizeof(float));
    free(x);
}

static const struct op_desc gelu = {
    .name = "gelu",
    .seed = 9,
    .half_seed = 11,
    .nin = 1,
    .ngrad = 1,
    .in_name = {"a"},
    .in_n = {NE},
    .in_scale = {4}, /* gelu's tails and its curved middle */
    .nout = NE,
    .fwd = gelu_fwd,
    .bwd = gelu_bwd,
    .reference = gelu_ref,
};

static const struct op_desc add = {
    .name = "add",
    .seed = 10,
    .half_seed = 12,
    .nin = 2,
    .ngrad = 2,
    .in_name = {"a", "b"},
    .in_n = {NE, NE},
    .in_scale = {4, 1},
    .nout = NE,
    .fwd = add_fwd,
    .bwd = add_bwd,
    .reference = add_ref,
    .extra = add_extra,
};

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
    test_skip_unsupported_isa();
    const struct op_desc *ops[] = {&encoder, &layernorm, &matmul, &attention, &gelu, &add};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        test_op(ops[i]);
    test_crossentropy();
    test_cast();
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
