/* test_settings.c: resolving the run's settings (graph/model/settings.h).
 *
 * The precedence, setting by setting, with the origin each records: a flag after the last
 * --preset beats the DeepSpeed config, which beats the preset, which beats the default; a flag
 * before --preset yields to the preset and the config. Then: the shape's origin is the last shape
 * flag's; the scheduler keys; the world from the launch (and the one-line errors when the flags
 * disagree with it); --global-batch-size; the config's train_batch_size; the settings as the
 * plan's inputs with each knob's origin; the note on config keys without effect. Configs are
 * JSON text parsed here, no files. */
#include "settings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test_expect.h"

static void config(struct ds_config *ds, const char *json)
{
    char err[DSCONFIG_ERR_SIZE];
    FILE *quiet = fopen("/dev/null", "w");
    if (!quiet || dsconfig_parse(ds, json, "t.json", 0, quiet, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL: config %s: %s\n", json, err);
        exit(1);
    }
    fclose(quiet);
}

/* Resolves for one process; exits on an error, which these cases do not expect. */
static void resolve(struct settings *s, const struct settings_flags *f, const struct ds_config *ds)
{
    char err[DSCONFIG_ERR_SIZE];
    if (settings_resolve(s, f, ds, 1, 1, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL: settings_resolve: %s\n", err);
        exit(1);
    }
}

/* origin[id] is `source` with detail `key`. */
static void expect_origin(const struct setting_origin *o, enum setting_source source,
                          const char *key, int line)
{
    if (o->source != source || strcmp(o->key, key) != 0) {
        fprintf(stderr, "FAIL line %d: origin %s '%s', want %s '%s'\n", line,
                setting_source_name(o->source), o->key, setting_source_name(source), key);
        test_failures++;
    }
}
#define EXPECT_ORIGIN(o, source, key) expect_origin(o, source, key, __LINE__)

static void test_precedence(void)
{
    struct ds_config none, ds;
    struct settings_flags f;
    struct settings s;
    dsconfig_init(&none);
    config(&ds, "{\"train_micro_batch_size_per_gpu\": 3, \"gradient_clipping\": 0.5,"
                " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.002}}}");

    /* default, and the tiny preset */
    settings_flags_init(&f);
    resolve(&s, &f, &none);
    EXPECT(s.seed == 1234 && s.clip_grad == 1.0 && s.B == 4 && s.lr == 3e-3, "defaults and tiny");
    EXPECT_ORIGIN(&s.origin[SETTING_SEED], SOURCE_DEFAULT, "");
    EXPECT_ORIGIN(&s.origin[SETTING_MICRO_BATCH], SOURCE_PRESET, "tiny");
    EXPECT_ORIGIN(&s.origin[SETTING_LR], SOURCE_PRESET, "tiny");

    /* the config over the preset and the default, key by key */
    resolve(&s, &f, &ds);
    EXPECT(s.B == 3 && s.clip_grad == 0.5 && s.lr == 0.002 && s.seed == 1234, "B %d", s.B);
    EXPECT_ORIGIN(&s.origin[SETTING_MICRO_BATCH], SOURCE_CONFIG, "train_micro_batch_size_per_gpu");
    EXPECT_ORIGIN(&s.origin[SETTING_CLIP_GRAD], SOURCE_CONFIG, "gradient_clipping");
    EXPECT_ORIGIN(&s.origin[SETTING_LR], SOURCE_CONFIG, "optimizer.params.lr");
    EXPECT_ORIGIN(&s.origin[SETTING_DTYPE], SOURCE_PRESET, "tiny");

    /* flags after --preset over everything; the preset named */
    f.preset = "gpt2-124m";
    f.preset_pos = 2;
    f.value.B = 8;
    settings_flags_mark(&f, SETTING_MICRO_BATCH, "--micro-batch-size", 4);
    f.value.seed = 7;
    settings_flags_mark(&f, SETTING_SEED, "--seed", 6);
    resolve(&s, &f, &ds);
    EXPECT(s.B == 8 && s.seed == 7 && s.L == 12 && s.dt == DTYPE_BF16 && s.clip_grad == 0.5,
           "B %d seed %llu L %d", s.B, (unsigned long long)s.seed, s.L);
    EXPECT_ORIGIN(&s.origin[SETTING_MICRO_BATCH], SOURCE_FLAG, "--micro-batch-size");
    EXPECT_ORIGIN(&s.origin[SETTING_SEED], SOURCE_FLAG, "--seed");
    EXPECT_ORIGIN(&s.origin[SETTING_LAYERS], SOURCE_PRESET, "gpt2-124m");
    EXPECT_ORIGIN(&s.origin[SETTING_CLIP_GRAD], SOURCE_CONFIG, "gradient_clipping");

    /* flags before --preset: under the preset and the config, over the default */
    f.preset_pos = 8;
    f.value.clip_grad = 0.25;
    settings_flags_mark(&f, SETTING_CLIP_GRAD, "--clip-grad", 7);
    resolve(&s, &f, &ds);
    EXPECT(s.B == 3 && s.seed == 7 && s.clip_grad == 0.5, "B %d seed %llu clip %g", s.B,
           (unsigned long long)s.seed, s.clip_grad);
    EXPECT_ORIGIN(&s.origin[SETTING_MICRO_BATCH], SOURCE_CONFIG, "train_micro_batch_size_per_gpu");
    EXPECT_ORIGIN(&s.origin[SETTING_SEED], SOURCE_FLAG, "--seed");
    resolve(&s, &f, &none);
    EXPECT(s.B == 4 && s.clip_grad == 0.25, "B %d clip %g", s.B, s.clip_grad);
    EXPECT_ORIGIN(&s.origin[SETTING_MICRO_BATCH], SOURCE_PRESET, "gpt2-124m");
    EXPECT_ORIGIN(&s.origin[SETTING_CLIP_GRAD], SOURCE_FLAG, "--clip-grad");
}

/* The plan shows the shape on one line: its origin is the last shape setting set. */
static void test_shape_origin(void)
{
    struct ds_config none;
    struct settings_flags f;
    struct settings s;
    dsconfig_init(&none);
    settings_flags_init(&f);
    f.value.V = 50300;
    settings_flags_mark(&f, SETTING_VOCAB, "--vocab-size", 2);
    f.preset = "tiny";
    f.preset_pos = 4;
    resolve(&s, &f, &none);
    EXPECT(s.V == 50300 && s.L == 4, "V %d", s.V);
    EXPECT_ORIGIN(&s.origin[SETTING_VOCAB], SOURCE_FLAG, "--vocab-size");
    EXPECT_ORIGIN(&s.model_origin, SOURCE_PRESET, "tiny");
    f.value.L = 3;
    settings_flags_mark(&f, SETTING_LAYERS, "--num-layers", 8);
    f.value.C = 64;
    settings_flags_mark(&f, SETTING_HIDDEN, "--hidden-size", 6);
    resolve(&s, &f, &none);
    EXPECT(s.L == 3 && s.C == 64, "L %d C %d", s.L, s.C);
    EXPECT_ORIGIN(&s.model_origin, SOURCE_FLAG, "--num-layers");
}

static void test_schedules(void)
{
    struct ds_config ds;
    struct settings_flags f;
    struct settings s;
    config(&ds,
           "{\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.002}},"
           " \"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"warmup_num_steps\": 2,"
           " \"total_num_steps\": 6, \"cos_min_ratio\": 0.1}},"
           " \"fp16\": {\"enabled\": true, \"initial_scale_power\": 8}}");
    settings_flags_init(&f);
    resolve(&s, &f, &ds);
    struct lr_schedule lr = settings_lr_schedule(&s);
    EXPECT(lr.style == LR_DECAY_COSINE && lr.max_lr == 0.002 && fabs(lr.min_lr - 2e-4) < 1e-12 &&
               lr.warmup_iters == 2 && lr.decay_iters == 6,
           "style %d max %g min %g warmup %lld decay %lld", lr.style, lr.max_lr, lr.min_lr,
           (long long)lr.warmup_iters, (long long)lr.decay_iters);
    EXPECT_ORIGIN(&s.origin[SETTING_MIN_LR], SOURCE_CONFIG, "scheduler.type");
    struct loss_scaler ls;
    settings_loss_scaler(&s, &ls);
    EXPECT(ls.dynamic && ls.scale == 256 && ls.window == 1000 && ls.hysteresis == 2,
           "dynamic %d scale %g", ls.dynamic, ls.scale);
    /* --lr-warmup-fraction (warmup iterations -1: from it) after the config's warmup steps */
    f.value.lr_warmup_fraction = 0.5;
    settings_flags_mark(&f, SETTING_LR_WARMUP_FRACTION, "--lr-warmup-fraction", 2);
    f.value.lr_warmup_iters = -1;
    settings_flags_mark(&f, SETTING_LR_WARMUP_ITERS, "--lr-warmup-fraction", 2);
    resolve(&s, &f, &ds);
    lr = settings_lr_schedule(&s);
    EXPECT(lr.warmup_iters == 3, "warmup %lld", (long long)lr.warmup_iters);
    /* tiny: 10% of its 100 iterations */
    struct ds_config none;
    dsconfig_init(&none);
    settings_flags_init(&f);
    resolve(&s, &f, &none);
    lr = settings_lr_schedule(&s);
    EXPECT(lr.warmup_iters == 10 && lr.decay_iters == 100 && lr.style == LR_DECAY_COSINE,
           "warmup %lld decay %lld", (long long)lr.warmup_iters, (long long)lr.decay_iters);
    settings_loss_scaler(&s, &ls);
    EXPECT(!ls.dynamic && ls.scale == 1, "fp32: no scaling");
}

static void test_world(void)
{
    struct ds_config none, ds;
    struct settings_flags f;
    struct settings s;
    char err[DSCONFIG_ERR_SIZE];
    dsconfig_init(&none);
    settings_flags_init(&f);
    f.value.num_gpus = 2;
    settings_flags_mark(&f, SETTING_NUM_GPUS, "--num-gpus", 2);
    EXPECT(settings_resolve(&s, &f, &none, 3, 3, err, sizeof err) == 0, "%s", err);
    EXPECT(s.world_size == 6 && s.ranks_per_node == 6, "world %d per node %d", s.world_size,
           s.ranks_per_node);
    EXPECT_ORIGIN(&s.origin[SETTING_WORLD_SIZE], SOURCE_DEFAULT, "");

    f.value.world_size = 4;
    settings_flags_mark(&f, SETTING_WORLD_SIZE, "--world-size", 4);
    EXPECT(settings_resolve(&s, &f, &none, 3, 3, err, sizeof err) == -1 &&
               strcmp(err, "--world-size 4, but this run has 3 processes x --num-gpus 2 = 6 "
                           "ranks: launch mpirun -np 2, or drop --world-size") == 0,
           "%s", err);
    f.value.dry_run = 1;
    settings_flags_mark(&f, SETTING_DRY_RUN, "--dry-run", 5);
    EXPECT(settings_resolve(&s, &f, &none, 3, 3, err, sizeof err) == 0 && s.world_size == 4,
           "a dry run plans for --world-size: %s", err);

    /* --global-batch-size sets the accumulation, and names itself */
    settings_flags_init(&f);
    f.value.global_batch = 16;
    settings_flags_mark(&f, SETTING_GLOBAL_BATCH, "--global-batch-size", 2);
    resolve(&s, &f, &none);
    EXPECT(s.grad_accum == 4, "accumulation %d", s.grad_accum);
    EXPECT_ORIGIN(&s.origin[SETTING_GRAD_ACCUM], SOURCE_FLAG, "--global-batch-size");
    f.value.grad_accum = 2;
    settings_flags_mark(&f, SETTING_GRAD_ACCUM, "--gradient-accumulation-steps", 4);
    EXPECT(settings_resolve(&s, &f, &none, 1, 1, err, sizeof err) == -1 &&
               strcmp(err, "--global-batch-size 16 is not --gradient-accumulation-steps 2 x "
                           "--micro-batch-size 4 x 1 ranks: give one of the two") == 0,
           "%s", err);

    /* the config's train_batch_size is checked against its own batch */
    settings_flags_init(&f);
    config(&ds, "{\"train_batch_size\": 7, \"train_micro_batch_size_per_gpu\": 2,"
                " \"gradient_accumulation_steps\": 2}");
    EXPECT(settings_resolve(&s, &f, &ds, 1, 1, err, sizeof err) == -1 &&
               strstr(err, "train_batch_size 7 (config) is not train_micro_batch_size_per_gpu"),
           "%s", err);
}

static void test_plan_input(void)
{
    struct ds_config ds;
    struct settings_flags f;
    struct settings s;
    struct plan_input in;
    config(&ds,
           "{\"zero_optimization\": {\"stage\": 3, \"offload_optimizer\": {\"device\": \"cpu\","
           " \"pin_memory\": true}, \"offload_param\": {\"device\": \"cpu\", \"buffer_count\": 7},"
           " \"stage3_prefetch_bucket_size\": 1e6}}");
    settings_flags_init(&f);
    f.preset = "gpt50b";
    f.preset_pos = 2;
    f.value.world_size = 16;
    settings_flags_mark(&f, SETTING_WORLD_SIZE, "--world-size", 4);
    f.value.dry_run = 1;
    settings_flags_mark(&f, SETTING_DRY_RUN, "--dry-run", 5);
    resolve(&s, &f, &ds);
    settings_plan_input(&s, 12345, &in);
    EXPECT(in.L == 62 && in.C == 8192 && in.Vp == 50304 && in.world_size == 16 &&
               in.ranks_per_node == 8,
           "shape and world");
    EXPECT(in.tier_params == TIER_CPU && in.tier_optim == TIER_CPU && in.tier_grads == TIER_CPU &&
               !in.grads_with_optim && in.optim_buffer_tensors == 3 && in.sub_group_size == 12345,
           "tiers %d %d %d", in.tier_params, in.tier_optim, in.tier_grads);
    EXPECT(in.pin_optim && !in.pin_params && in.param_buffer_count == 7 &&
               in.param_buffer_size == 100000000 && in.prefetch == 1000000 && in.ckpt_in_cpu,
           "config-only settings");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_MODEL], SOURCE_PRESET, "gpt50b");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_WORLD], SOURCE_FLAG, "--world-size");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_TIER_OPTIM], SOURCE_CONFIG,
                  "zero_optimization.offload_optimizer.device");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_TIER_GRADS], SOURCE_CONFIG,
                  "zero_optimization.offload_optimizer.device");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_TIER_PARAMS], SOURCE_CONFIG,
                  "zero_optimization.offload_param.device");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_PIN_OPTIM], SOURCE_CONFIG,
                  "zero_optimization.offload_optimizer.pin_memory");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_PARAM_BUFFERS], SOURCE_CONFIG,
                  "zero_optimization.offload_param.buffer_count");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_PIN_PARAMS], SOURCE_DEFAULT, "");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_CKPT_IN_CPU], SOURCE_PRESET, "gpt50b");
    EXPECT(in.cap[TIER_GPU].bytes == -1 && in.cap[TIER_CPU].bytes == -1, "capacities unknown");

    /* the flag names the optimizer's tier; the gradients' origin stays the config's key */
    f.value.optim_tier = TIER_NVME;
    settings_flags_mark(&f, SETTING_OPTIM_TIER, "--offload-optimizer", 6);
    resolve(&s, &f, &ds);
    settings_plan_input(&s, 1, &in);
    EXPECT(in.tier_optim == TIER_NVME && in.tier_grads == TIER_CPU, "flag over config");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_TIER_OPTIM], SOURCE_FLAG, "--offload-optimizer");
    EXPECT_ORIGIN(&in.origin[PLAN_KNOB_TIER_GRADS], SOURCE_CONFIG,
                  "zero_optimization.offload_optimizer.device");
}

static void test_note(void)
{
    struct ds_config ds;
    struct settings_flags f;
    struct settings s;
    char *buf = NULL;
    size_t len = 0;
    config(&ds, "{\"zero_optimization\": {\"stage\": 2, \"stage3_max_live_parameters\": 1e9}}");
    settings_flags_init(&f);
    resolve(&s, &f, &ds);
    FILE *out = open_memstream(&buf, &len);
    if (!out) exit(1);
    settings_note_config(&s, &ds, "t.json", out);
    fclose(out);
    EXPECT(strcmp(buf, "note: t.json: read but without effect in this version: "
                       "zero_optimization.stage3_max_live_parameters (one rank: nothing to "
                       "gather), zero_optimization.stage (one rank)\n") == 0,
           "%s", buf);
    EXPECT(s.max_live_parameters == 1000000000, "max live %lld", (long long)s.max_live_parameters);
    free(buf);
}

int main(void)
{
    test_precedence();
    test_shape_origin();
    test_schedules();
    test_world();
    test_plan_input();
    test_note();
    return test_finish("test_settings");
}
