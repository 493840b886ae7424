/* test_determinism_cpu.c: every CPU kernel gives the same bits whatever the thread count.
 *
 * Runs each kernel, forward and backward, in fp32 and fp16 with 1 thread and with 3 threads
 * (OpenMP), on shapes large enough that the work is split, and compares the
 * outputs byte for byte. The kernels promise this so that a run is reproducible on any machine
 * size. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

#define B  2
#define T  64
#define C  96
#define NH 3
#define N  (B * T)
#define OC 384
#define V  1000
#define VP 1024
#define NE ((size_t)200003) /* elementwise kernels: many blocks and a partial one */

/* fp32 inputs, shared by both runs */
static float *x_wte, *x_wpe, *x_act, *x_w, *x_b, *x_wmm, *x_bmm, *x_qkv, *x_dout, *x_doc, *x_dqkv,
    *x_logits, *x_e1, *x_e2, *x_adam;
static int32_t tokens[N];

/* outputs of one run, one buffer per kernel output */
struct run {
    void *buf[32];
    size_t bytes[32];
    const char *name[32];
    int n;
};

static void *keep(struct run *r, const char *name, void *p, size_t bytes)
{
    r->buf[r->n] = p;
    r->bytes[r->n] = bytes;
    r->name[r->n++] = name;
    return p;
}

static void run_all(struct run *r, enum dtype dt, int threads)
{
    omp_set_num_threads(threads);
    size_t es = dtype_size(dt);
    memset(r, 0, sizeof *r);
    void *wte = test_to_dt(dt, x_wte, (size_t)VP * C), *wpe = test_to_dt(dt, x_wpe, (size_t)T * C);
    void *act = test_to_dt(dt, x_act, (size_t)N * C), *w = test_to_dt(dt, x_w, C);
    void *b = test_to_dt(dt, x_b, C), *wmm = test_to_dt(dt, x_wmm, (size_t)OC * C);
    void *bmm = test_to_dt(dt, x_bmm, OC), *qkv = test_to_dt(dt, x_qkv, (size_t)N * 3 * C);
    void *dout = test_to_dt(dt, x_dout, (size_t)N * C),
         *doc = test_to_dt(dt, x_doc, (size_t)N * OC);
    void *logits = test_to_dt(dt, x_logits, (size_t)N * VP);
    void *e1 = test_to_dt(dt, x_e1, NE), *e2 = test_to_dt(dt, x_e2, NE);

    void *o = keep(r, "encoder_forward", test_nan_dt(dt, (size_t)N * C), (size_t)N * C * es);
    encoder_forward_cpu(o, tokens, wte, wpe, B, T, C, dt);
    void *dwte = keep(r, "encoder_backward dwte", test_to_dt(dt, x_wte, (size_t)VP * C),
                      (size_t)VP * C * es);
    void *dwpe =
        keep(r, "encoder_backward dwpe", test_to_dt(dt, x_wpe, (size_t)T * C), (size_t)T * C * es);
    encoder_backward_cpu(dwte, dwpe, dout, tokens, B, T, C, dt);

    o = keep(r, "layernorm_forward", test_nan_dt(dt, (size_t)N * C), (size_t)N * C * es);
    float *mean = keep(r, "layernorm mean", test_alloc(N), N * 4);
    float *rstd = keep(r, "layernorm rstd", test_alloc(N), N * 4);
    layernorm_forward_cpu(o, mean, rstd, act, w, b, N, C, dt);
    void *di = keep(r, "layernorm dinp", test_to_dt(dt, x_act, (size_t)N * C), (size_t)N * C * es);
    void *dw = keep(r, "layernorm dweight", test_to_dt(dt, x_w, C), C * es);
    void *db = keep(r, "layernorm dbias", test_to_dt(dt, x_b, C), C * es);
    layernorm_backward_cpu(di, dw, db, dout, act, w, mean, rstd, N, C, dt);

    o = keep(r, "matmul_forward", test_nan_dt(dt, (size_t)N * OC), (size_t)N * OC * es);
    matmul_forward_cpu(o, act, wmm, bmm, N, C, OC, OC, dt);
    di = keep(r, "matmul dinp", test_to_dt(dt, x_act, (size_t)N * C), (size_t)N * C * es);
    dw = keep(r, "matmul dweight", test_to_dt(dt, x_wmm, (size_t)OC * C), (size_t)OC * C * es);
    db = keep(r, "matmul dbias", test_to_dt(dt, x_bmm, OC), OC * es);
    matmul_backward_cpu(di, dt, dw, db, doc, act, wmm, N, C, OC, OC, dt, 0);

    size_t nstats = (size_t)B * NH * T * 2;
    o = keep(r, "attention_forward", test_nan_dt(dt, (size_t)N * C), (size_t)N * C * es);
    float *stats = keep(r, "attention statistics", test_alloc(nstats), nstats * 4);
    flash_attention_forward_cpu(o, stats, qkv, B, T, C, NH, dt);
    di = keep(r, "attention dqkv", test_to_dt(dt, x_dqkv, (size_t)N * 3 * C),
              (size_t)N * 3 * C * es);
    flash_attention_backward_cpu(di, dout, qkv, o, stats, B, T, C, NH, dt);

    o = keep(r, "gelu_forward", test_nan_dt(dt, NE), NE * es);
    gelu_forward_cpu(o, e1, NE, dt);
    di = keep(r, "gelu_backward", test_to_dt(dt, x_e2, NE), NE * es);
    gelu_backward_cpu(di, e1, e2, NE, dt);
    o = keep(r, "add_forward", test_nan_dt(dt, NE), NE * es);
    add_forward_cpu(o, e1, e2, NE, dt);
    di = keep(r, "add_forward in place", test_to_dt(dt, x_e1, NE), NE * es);
    add_forward_cpu(di, di, e2, NE, dt);

    float *losses = keep(r, "crossentropy_forward", test_alloc(N), N * 4);
    crossentropy_forward_cpu(losses, logits, tokens, N, V, VP, dt);
    di = keep(r, "crossentropy_backward", test_nan_dt(dt, (size_t)N * VP), (size_t)N * VP * es);
    crossentropy_backward_cpu(di, logits, tokens, 1.0f / N, N, V, VP, dt);

    float *ss = keep(r, "sumsq", test_alloc(1), 4);
    sumsq_cpu(ss, e1, NE, dt);
    struct adamw_hparams hp = {.lr = 1e-3f,
                               .beta1 = 0.9f,
                               .beta2 = 0.95f,
                               .eps = 1e-8f,
                               .weight_decay = 0.1f,
                               .step = 2,
                               .inv_loss_scale = 0.5f,
                               .clip_norm = 1.0f};
    float *master = keep(r, "adamw master", test_dup(x_adam, NE), NE * 4);
    float *m = keep(r, "adamw m", test_dup(x_e2, NE), NE * 4);
    float *v = keep(r, "adamw v", test_dup(x_adam, NE), NE * 4);
    for (size_t i = 0; i < NE; i++)
        v[i] = v[i] * v[i];
    void *param = keep(r, "adamw param", test_nan_dt(dt, NE), NE * es);
    adamw_cpu(param, master, m, v, e1, ss, NE, &hp, dt);
    void *c = keep(r, "cast", test_nan_dt(DTYPE_BF16, NE), NE * 2);
    cast_cpu(c, DTYPE_BF16, e1, dt, NE);

    free(wte);
    free(wpe);
    free(act);
    free(w);
    free(b);
    free(wmm);
    free(bmm);
    free(qkv);
    free(dout);
    free(doc);
    free(logits);
    free(e1);
    free(e2);
}

int main(void)
{
    test_skip_unsupported_isa();
    test_seed(31);
    x_wte = test_rand((size_t)VP * C, 1);
    x_wpe = test_rand((size_t)T * C, 1);
    x_act = test_rand((size_t)N * C, 2);
    x_w = test_rand(C, 1);
    x_b = test_rand(C, 1);
    x_wmm = test_rand((size_t)OC * C, 1);
    x_bmm = test_rand(OC, 1);
    x_qkv = test_rand((size_t)N * 3 * C, 1);
    x_dout = test_rand((size_t)N * C, 1);
    x_doc = test_rand((size_t)N * OC, 1);
    x_dqkv = test_rand((size_t)N * 3 * C, 1);
    x_logits = test_rand((size_t)N * VP, 5);
    x_e1 = test_rand(NE, 4);
    x_e2 = test_rand(NE, 1);
    x_adam = test_rand(NE, 1);
    for (int n = 0; n < N; n++)
        tokens[n] = (int32_t)((n * 37) % 50); /* many repeats: the scatter's hard case */

    int fails = 0;
    enum dtype dts[] = {DTYPE_FP32, DTYPE_FP16};
    for (int k = 0; k < 2; k++) {
        struct run one, three;
        run_all(&one, dts[k], 1);
        run_all(&three, dts[k], 3);
        for (int i = 0; i < one.n; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s %s, 1 vs 3 threads", one.name[i], dtype_name(dts[k]));
            fails += test_same_bits(what, three.buf[i], one.buf[i], one.bytes[i]);
            free(one.buf[i]);
            free(three.buf[i]);
        }
    }
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
