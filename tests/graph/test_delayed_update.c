/* test_delayed_update.c: the delayed parameter update (gpt_options.delayed_update) against the
 * exact AdamW step one iteration apart, with the optimizer state in RAM and on NVMe.
 *
 * The delayed run A computes iteration t's gradient with the parameters of step t-2 (iterations
 * 1 and 2 with the initial ones) and steps the optimizer state as AdamW does. The reference B is
 * the exact engine, whose compute copies the test rewinds before every forward to the cast of the
 * masters after step t-2, kept on the host (the master itself moves exactly as in any run): its
 * step t is then AdamW on the same gradient, one iteration late, by construction. Both must give
 * the same losses and gradient norms at every iteration and the same masters and moments at the
 * end, bit for bit, for bf16 and for fp16 with an overflow at step 3 (a skipped step, after which
 * the delayed run copies the other compute copy into the one the step would have written). In
 * RAM the CPU optimizer runs in pieces (optim_chunk) so the second buffers are split as the first
 * are; on NVMe half the state is resident and half streams through swap files in a temporary
 * folder. The parameters are offloaded (the SC21 setting). Runs on CPU workers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"
#include "rng.h"
#include "../test_expect.h"

enum { L = 2, C = 32, NH = 2, T = 16, V = 64, B = 2, STEPS = 6, OVERFLOW_STEP = 3 };

struct trace {
    float loss[STEPS], sumsq[STEPS];
    float *state[3];      /* master, m, v of every tensor, concatenated */
    size_t n;             /* elements of each of those */
    int tensors, swapped; /* all, and those whose optimizer state streamed from NVMe */
};

static const struct gpt_config cfg = {L, C, NH, T, V, V};
static char swap_dir[4096]; /* the NVMe runs' folder */

static struct gpt *make(enum dtype dt, enum tier tier, int delayed)
{
    struct gpt_options opt = {.dt = dt,
                              .B = B,
                              .T = T,
                              .seed = 7,
                              .optim_tier = tier,
                              .offload_param = 1,
                              .optim_chunk = 500,
                              .delayed_update = delayed,
                              .nvme_path = tier == TIER_NVME ? swap_dir : NULL,
                              .swap_buffers = 2,
                              .resident_fraction = 0.5};
    return gpt_create(&cfg, &opt);
}

static void batch(int t, int32_t *in, int32_t *tg)
{
    uint64_t r = 1000 + (uint64_t)t;
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)(rng_next(&r) % V);
        tg[i] = (int32_t)(rng_next(&r) % V);
    }
}

static size_t total_elems(struct gpt *m)
{
    size_t n = 0;
    for (int i = 0; i < gpt_num_tensors(m); i++)
        n += state_shard_elems(gpt_get_state(m), i);
    return n;
}

/* The compute copies of every tensor set to the cast of `masters` (the concatenated masters), or
 * `masters` filled from the state when `read` is set. */
static void masters_io(struct gpt *m, float *masters, int read, enum dtype dt)
{
    struct state *s = gpt_get_state(m);
    size_t at = 0;
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        size_t n = state_shard_elems(s, i);
        if (read) {
            float *w = state_acquire(s, i, STATE_MASTER, 0);
            memcpy(masters + at, w, n * sizeof *w);
            state_release(s, i, STATE_MASTER, w, 0);
        } else {
            struct tensor *p = state_shard(s, i, 0)->param;
            dtype_from_f32(dt, masters + at, tensor_acquire_write(p), n);
            tensor_release(p);
        }
        at += n;
    }
}

/* One run of STEPS iterations; rewind: the reference's compute copies held one step behind. */
static void run(enum dtype dt, enum tier tier, int delayed, int rewind, struct trace *out)
{
    struct gpt *m = make(dt, tier, delayed);
    size_t n = out->n = total_elems(m);
    out->tensors = gpt_num_tensors(m);
    out->swapped = 0;
    for (int i = 0; i < out->tensors; i++)
        out->swapped += state_swapped(gpt_get_state(m), i);
    float *hist[STEPS + 1]; /* the masters after k steps */
    int32_t in[B * T], tg[B * T];
    int applied = 0;
    for (int k = 0; k <= STEPS; k++)
        hist[k] = calloc(n, sizeof(float));
    masters_io(m, hist[0], 1, dt);
    for (int t = 1; t <= STEPS; t++) {
        float scale = dt == DTYPE_FP16 && t == OVERFLOW_STEP ? 1e30f : 1.0f;
        struct adamw_hparams hp = {1e-2f, 0.9f,        0.95f,        1e-8f,
                                   0.1f,  applied + 1, 1.0f / scale, 1.0f};
        gpt_begin_step(m);
        if (rewind) masters_io(m, hist[t >= 2 ? t - 2 : 0], 0, dt);
        batch(t, in, tg);
        gpt_set_batch(m, in, tg);
        gpt_forward(m);
        gpt_backward(m, scale, 0, 1);
        gpt_update(m, &hp);
        gpt_step_stats(m, &out->loss[t - 1], &out->sumsq[t - 1]);
        if (isfinite(out->sumsq[t - 1]))
            applied++;
        else
            gpt_delayed_skip(m);
        masters_io(m, hist[t], 1, dt);
    }
    struct state *s = gpt_get_state(m);
    for (int k = 0; k < 3; k++) {
        out->state[k] = calloc(n, sizeof(float));
        size_t at = 0;
        for (int i = 0; i < gpt_num_tensors(m); i++) {
            size_t len = state_shard_elems(s, i);
            float *w = state_acquire(s, i, (enum state_kind)k, 0);
            memcpy(out->state[k] + at, w, len * sizeof *w);
            state_release(s, i, (enum state_kind)k, w, 0);
            at += len;
        }
    }
    for (int k = 0; k <= STEPS; k++)
        free(hist[k]);
    gpt_destroy(m);
}

static void check(enum dtype dt, enum tier tier)
{
    struct trace a, b, exact;
    char name[32];
    snprintf(name, sizeof name, "%s %s", dtype_name(dt), tier == TIER_NVME ? "nvme" : "cpu");
    run(dt, tier, 1, 0, &a);
    run(dt, tier, 0, 1, &b);
    run(dt, tier, 0, 0, &exact);
    for (int t = 0; t < STEPS; t++) {
        printf("%s iteration %d: delayed loss %.7g norm^2 %.7g | exact one step late %.7g %.7g | "
               "exact %.7g\n",
               name, t + 1, a.loss[t], a.sumsq[t], b.loss[t], b.sumsq[t], exact.loss[t]);
        EXPECT(memcmp(&a.loss[t], &b.loss[t], sizeof(float)) == 0 &&
                   (memcmp(&a.sumsq[t], &b.sumsq[t], sizeof(float)) == 0 ||
                    (!isfinite(a.sumsq[t]) && !isfinite(b.sumsq[t]))),
               "%s iteration %d: the delayed run and the exact step one iteration apart differ",
               name, t + 1);
    }
    if (dt == DTYPE_FP16)
        EXPECT(!isfinite(a.sumsq[OVERFLOW_STEP - 1]), "fp16: step %d did not overflow",
               OVERFLOW_STEP);
    /* the check can fail: from iteration 3 the delayed run is not the exact one */
    EXPECT(a.loss[STEPS - 1] != exact.loss[STEPS - 1],
           "%s: the delayed run's last loss equals the exact run's", name);
    size_t n = a.n;
    EXPECT(tier != TIER_NVME || (a.swapped > 0 && a.swapped < a.tensors),
           "%s: %d of %d tensors swapped: the NVMe runs must have both kinds", name, a.swapped,
           a.tensors);
    const char *what[3] = {"masters", "exp_avg", "exp_avg_sq"};
    for (int k = 0; k < 3; k++) {
        EXPECT(memcmp(a.state[k], b.state[k], n * sizeof(float)) == 0,
               "%s: the delayed run's %s differ from the exact step one iteration apart's", name,
               what[k]);
        free(a.state[k]);
        free(b.state[k]);
        free(exact.state[k]);
    }
}

int main(void)
{
    setenv("STARPU_NCUDA", "0", 1);
    test_dir_make(swap_dir, sizeof swap_dir, NULL, "test_delayed_update");
    rt_init(&(struct rt_options){.quiet = 1});
    for (int tier = TIER_CPU; tier <= TIER_NVME; tier++) {
        check(DTYPE_BF16, (enum tier)tier);
        check(DTYPE_FP16, (enum tier)tier);
    }
    rt_shutdown();
    test_dir_remove(swap_dir);
    return test_finish("test_delayed_update");
}
