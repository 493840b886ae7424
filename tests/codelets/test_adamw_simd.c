/* test_adamw_simd.c: every vector AdamW kernel gives the scalar reference's bits.
 *
 * For each ISA this CPU runs (adamw_simd.h), each gradient dtype, without the parameter copy and
 * with it at an aligned address (the vector kernels' streaming stores) and one element off (their
 * plain stores), over lengths that hit every tail (0 to 17 around the vector widths, most of a
 * block, many blocks and a partial one) and four hyper-parameter sets (weight decay on and off,
 * clipping active and not, eps 0, a late step), three consecutive steps are run from the same state
 * by the ISA and by adamw_cpu_scalar, and master, m, v and param must be equal bit for bit (the
 * first differing element is printed). The data mixes normal values with zeros of both signs, fp32
 * and fp16 subnormals, huge and tiny values, fp16 overflow and infinities, and NaNs with payloads
 * in the state. Gradients are never NaN: a NaN gradient gives a non-finite norm and the step is
 * skipped, and only with two NaN operands could the hardware pick either payload. Then the skip
 * (nothing written), and the ISA adamw_cpu selects. Last, a throughput print that is never
 * asserted. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/adamw_simd.h"
#include "cpu_test.h"

#define STEPS      3
#define BENCH_N    ((size_t)64 << 20)
#define BENCH_ITER 2 /* no warm-up needed: the parallel fill touched every page */

static const size_t lengths[] = {0, 1, 7, 15, 16, 17, 1000, 100003};
#define MAXN 100003

static int fails;

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One test value: mostly uniform in [-scale, scale), the rest the hard cases. State values
 * (state != 0) may also be infinite or NaN; nonneg folds the sign away (v). */
static float mixed_value(float scale, int state, int nonneg)
{
    float u = test_uniform(), pick = 0.5f * (test_uniform() + 1.0f), x;
    if (pick < 0.50f)
        x = scale * u;
    else if (pick < 0.58f)
        x = u < 0 ? -0.0f : 0.0f;
    else if (pick < 0.66f)
        x = u * 0x1p-127f; /* fp32 subnormal */
    else if (pick < 0.72f)
        x = u * 0x1p-20f; /* near and below the smallest fp16 normal, 2^-14 */
    else if (pick < 0.78f)
        x = u * 1e30f;
    else if (pick < 0.84f)
        x = u * 1e-30f;
    else if (pick < 0.90f)
        x = 65504.0f + 10000.0f * u; /* both sides of fp16 overflow (65520) */
    else if (pick < 0.96f)
        x = u * 0x1p-24f * 1024.0f * scale; /* a few ulps of a 16-bit type */
    else if (pick < 0.98f)
        x = u < 0 ? -INFINITY : INFINITY;
    else if (state) /* quiet NaN with a payload in its high and low mantissa bits */
        x = bits_float((u < 0 ? 0xffc00000u : 0x7fc00000u) |
                       ((uint32_t)(1e6f * (u + 1.0f)) & 0x3fffff));
    else
        x = scale * u;
    return nonneg ? fabsf(x) : x;
}

static float *mixed(size_t n, float scale, int state, int nonneg)
{
    float *p = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = mixed_value(scale, state, nonneg);
    return p;
}

/* Element-wise bit equality (es bytes per element); on failure prints the first difference. */
static int same_elems(const char *what, const void *got, const void *ref, size_t n, size_t es)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = (const char *)got + i * es, *b = (const char *)ref + i * es;
        if (memcmp(a, b, es) == 0) continue;
        uint32_t ga = 0, rb = 0;
        memcpy(&ga, a, es);
        memcpy(&rb, b, es);
        float gv = es == 4 ? bits_float(ga) : bits_float(ga << 16);
        float rv = es == 4 ? bits_float(rb) : bits_float(rb << 16);
        printf("FAIL %s: element %zu of %zu differs: got 0x%0*x (%.9g) ref 0x%0*x (%.9g)%s\n", what,
               i, n, (int)es * 2, ga, gv, (int)es * 2, rb, rv, es == 2 ? " [shown as bf16]" : "");
        return 1;
    }
    return 0;
}

struct state {
    float *w, *m, *v;
    void *param, *param_base; /* param: param_base, or one element past it */
};

static void state_copy(struct state *dst, const struct state *src, size_t n, size_t pbytes)
{
    memcpy(dst->w, src->w, n * sizeof(float));
    memcpy(dst->m, src->m, n * sizeof(float));
    memcpy(dst->v, src->v, n * sizeof(float));
    if (src->param) memcpy(dst->param, src->param, pbytes);
}

static int state_same(const char *what, const struct state *got, const struct state *ref, size_t n,
                      size_t es)
{
    char name[200];
    const char *field[3] = {"master", "m", "v"};
    const float *g[3] = {got->w, got->m, got->v}, *r[3] = {ref->w, ref->m, ref->v};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s: %s", what, field[k]);
        if (same_elems(name, g[k], r[k], n, 4)) return 1;
    }
    snprintf(name, sizeof name, "%s: param", what);
    return got->param && same_elems(name, got->param, ref->param, n, es);
}

static const struct adamw_hparams hsets[] = {
    /* plain: no decay, no clipping */
    {.lr = 1e-3f,
     .beta1 = 0.9f,
     .beta2 = 0.999f,
     .eps = 1e-8f,
     .step = 1,
     .inv_loss_scale = 1.0f / 1024,
     .clip_norm = 0},
    /* decay and active clipping: norm sqrt(1.7e10)/65536 ~ 2 > 1 */
    {.lr = 1e-2f,
     .beta1 = 0.9f,
     .beta2 = 0.95f,
     .eps = 1e-8f,
     .weight_decay = 0.1f,
     .step = 1,
     .inv_loss_scale = 1.0f / 65536,
     .clip_norm = 1.0f},
    /* loss scale below 1, clipping inactive: norm 4 < 5 */
    {.lr = 3e-4f,
     .beta1 = 0.8f,
     .beta2 = 0.99f,
     .eps = 1e-6f,
     .weight_decay = 0.01f,
     .step = 1,
     .inv_loss_scale = 4.0f,
     .clip_norm = 5.0f},
    /* eps 0 (0/0 and x/0 in the update), strong decay, late step */
    {.lr = 0.5f,
     .beta1 = 0.5f,
     .beta2 = 0.75f,
     .eps = 0,
     .weight_decay = 0.5f,
     .step = 1000,
     .inv_loss_scale = 1,
     .clip_norm = 0},
};
static const float hset_sumsq[] = {1e6f, 1.7e10f, 1.0f, 3.0f};
#define NHSETS (sizeof hsets / sizeof hsets[0])

/* The parameter copy with_param: 0 none, 1 at a 64-byte aligned address, 2 one element past one,
 * filled with NaNs. */
static struct state state_alloc(size_t n, enum dtype dt, int with_param)
{
    struct state st = {test_alloc(n), test_alloc(n), test_alloc(n), NULL, NULL};
    if (!with_param) return st;
    size_t es = dtype_size(dt);
    CHECK(posix_memalign(&st.param_base, 64, (n + 1) * es) == 0);
    st.param = (char *)st.param_base + (with_param == 2 ? es : 0);
    for (size_t i = 0; i < n; i++)
        dtype_store(dt, st.param, i, NAN);
    return st;
}

static void state_free(struct state *st)
{
    free(st->w);
    free(st->m);
    free(st->v);
    free(st->param_base);
}

/* For every case, STEPS steps by the scalar reference and, from the same state with the same
 * gradients, by each vector ISA, compared after every step. */
static void compare_isas(enum dtype dt)
{
    size_t es = dtype_size(dt);
    int runs = 0, bad[CPU_ISA_COUNT] = {0};
    static const char *const param_names[] = {"", " +param aligned", " +param unaligned"};
    for (int with_param = 0; with_param < 3; with_param++)
        for (size_t h = 0; h < NHSETS; h++)
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                size_t n = lengths[li];
                test_seed(1000 * h + 10 * li + with_param);
                struct state ref = state_alloc(n, dt, with_param), got[CPU_ISA_COUNT];
                for (size_t i = 0; i < n; i++) {
                    ref.w[i] = mixed_value(1, 1, 0);
                    ref.m[i] = mixed_value(0.1f, 1, 0);
                    ref.v[i] = mixed_value(0.01f, 1, 1);
                }
                for (int isa = 1; isa < CPU_ISA_COUNT; isa++) {
                    got[isa] = state_alloc(n, dt, with_param);
                    state_copy(&got[isa], &ref, n, n * es);
                }
                struct adamw_hparams hp = hsets[h];
                int step0 = hp.step;
                for (int s = 0; s < STEPS; s++) {
                    hp.step = step0 + s;
                    float *g = mixed(n, 1024, 0, 0);
                    void *gd = test_to_dt(dt, g, n);
                    adamw_cpu_scalar(ref.param, ref.w, ref.m, ref.v, gd, &hset_sumsq[h], n, &hp,
                                     dt);
                    for (int isa = 1; isa < CPU_ISA_COUNT; isa++) {
                        if (!cpu_isa_supported(isa)) continue;
                        struct state *st = &got[isa];
                        adamw_cpu_isa(isa, st->param, st->w, st->m, st->v, gd, &hset_sumsq[h], n,
                                      &hp, dt);
                        char what[160];
                        snprintf(what, sizeof what, "%s %s%s hparams %zu n %zu step %d",
                                 cpu_isa_name(isa), dtype_name(dt), param_names[with_param], h, n,
                                 s + 1);
                        if (!bad[isa] && state_same(what, st, &ref, n, es)) bad[isa] = 1;
                    }
                    free(g);
                    free(gd);
                }
                runs++;
                state_free(&ref);
                for (int isa = 1; isa < CPU_ISA_COUNT; isa++)
                    state_free(&got[isa]);
            }
    for (int isa = 1; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) continue;
        if (bad[isa])
            fails++;
        else
            printf("ok   %s %s: %d runs x %d steps bit-identical to the scalar reference\n",
                   cpu_isa_name(isa), dtype_name(dt), runs, STEPS);
    }
}

/* A non-finite norm, or one that overflows once unscaled, skips the step: nothing is written. */
static void test_skip(enum cpu_isa isa, enum dtype dt)
{
    const size_t n = 1000;
    const float sums[] = {INFINITY, NAN, 1e30f};
    test_seed(7);
    struct state init = state_alloc(n, dt, 1), got = state_alloc(n, dt, 1);
    for (size_t i = 0; i < n; i++) {
        init.w[i] = mixed_value(1, 1, 0);
        init.m[i] = mixed_value(0.1f, 1, 0);
        init.v[i] = mixed_value(0.01f, 1, 1);
    }
    float *g = mixed(n, 1, 0, 0);
    void *gd = test_to_dt(dt, g, n);
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        struct adamw_hparams hp = hsets[1];
        if (k == 2) hp.inv_loss_scale = 1e30f; /* sqrt(1e30) * 1e30 overflows fp32 */
        state_copy(&got, &init, n, n * dtype_size(dt));
        adamw_cpu_isa(isa, got.param, got.w, got.m, got.v, gd, &sums[k], n, &hp, dt);
        char what[120];
        snprintf(what, sizeof what, "%s %s skip (sumsq %g)", cpu_isa_name(isa), dtype_name(dt),
                 sums[k]);
        bad |= state_same(what, &got, &init, n, dtype_size(dt));
    }
    if (bad)
        fails++;
    else
        printf("ok   %s %s: skipped steps leave everything untouched\n", cpu_isa_name(isa),
               dtype_name(dt));
    free(g);
    free(gd);
    state_free(&init);
    state_free(&got);
}

/* adamw_cpu runs GPT50B_CPU_ISA when set, else the best ISA supported. */
static void test_selection(void)
{
    const char *env = getenv("GPT50B_CPU_ISA");
    enum cpu_isa want = CPU_ISA_SCALAR;
    for (int i = 0; i < CPU_ISA_COUNT; i++)
        if (env && *env ? strcmp(env, cpu_isa_name(i)) == 0 : cpu_isa_supported(i)) want = i;
    enum cpu_isa got = cpu_isa_selected();
    if (got != want) {
        printf("FAIL adamw_cpu selects %s, expected %s\n", cpu_isa_name(got), cpu_isa_name(want));
        fails++;
    } else {
        printf("ok   adamw_cpu selects %s\n", cpu_isa_name(got));
    }
}

static double now_s(void)
{
    return omp_get_wtime();
}

/* Memory traffic of one step at 64M bf16 parameters: 28 bytes each (grad 2, master, m and v read
 * and written 24, param 2). Printed, never asserted: timing is not a test. */
static void print_throughput(void)
{
    size_t n = BENCH_N;
    float *w = malloc(n * sizeof *w), *m = malloc(n * sizeof *m), *v = malloc(n * sizeof *v);
    uint16_t *g = malloc(n * sizeof *g), *p = malloc(n * sizeof *p);
    if (!w || !m || !v || !g || !p) {
        printf("skip throughput: no memory for %zu parameters\n", n);
        goto out;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)(i % 1000) * 1e-3f;
        m[i] = 0;
        v[i] = 0;
        g[i] = dtype_f32_to_bf16((float)(i % 77) - 38.0f);
    }
    struct adamw_hparams hp = hsets[1];
    float sumsq = 1.7e10f;
    int maxt = omp_get_max_threads();
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) continue;
        for (int t = 1; t <= maxt; t = t < maxt ? maxt : maxt + 1) { /* 1, then all threads */
            omp_set_num_threads(t);
            double t0 = now_s();
            for (int it = 0; it < BENCH_ITER; it++)
                adamw_cpu_isa(isa, p, w, m, v, g, &sumsq, n, &hp, DTYPE_BF16);
            double sec = (now_s() - t0) / BENCH_ITER;
            printf("info %-6s %2d thread%s: %7.1f M params/s  %6.1f GB/s (64M bf16 params)\n",
                   cpu_isa_name(isa), t, t > 1 ? "s" : " ", n / sec / 1e6, 28.0 * n / sec / 1e9);
        }
    }
    omp_set_num_threads(maxt);
out:
    free(w);
    free(m);
    free(v);
    free(g);
    free(p);
}

int main(void)
{
    const enum dtype dts[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};
    for (int isa = 0; isa < CPU_ISA_COUNT; isa++)
        if (!cpu_isa_supported(isa))
            printf("note %s: not supported by this CPU, not tested\n", cpu_isa_name(isa));
    for (int d = 0; d < 3; d++) {
        compare_isas(dts[d]);
        for (int isa = 0; isa < CPU_ISA_COUNT; isa++)
            if (cpu_isa_supported(isa)) test_skip(isa, dts[d]);
    }
    test_selection();
    print_throughput();
    if (fails) printf("%d FAILED\n", fails);
    return fails ? 1 : 0;
}
