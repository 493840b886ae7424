/* test_dsconfig.c: the DeepSpeed config reader.
 *
 * The SC21 config in the 2021 schema and the same settings in the current schema must resolve to
 * identical values (with their own key paths as origins) and no warning; the seed's real typo
 * (stage3_param_persitance_threshold) and other misspellings must be reported with the nearest
 * key, and be errors in strict mode; wrong types, conflicts, unsupported features, invalid JSON
 * and missing files must give the exact one-line messages below; the batch settings resolve as
 * DeepSpeed resolves them. Fixtures come from $GPT50B_TOP/tests/fixtures. */
#include "dsconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test_expect.h"

static char warnings[4096];

/* Parses text as "t.json"; warnings and notes land in `warnings`. */
static int parse(struct ds_config *c, const char *text, int strict, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *w = open_memstream(&buf, &len);
    if (!w) exit(1);
    err[0] = 0;
    int rc = dsconfig_parse(c, text, "t.json", strict, w, err, errlen);
    fclose(w);
    snprintf(warnings, sizeof warnings, "%s", buf);
    free(buf);
    return rc;
}

/* The text must be rejected with exactly `msg`. */
static void expect_error(const char *text, const char *msg, int line)
{
    struct ds_config c;
    char err[DSCONFIG_ERR_SIZE];
    int rc = parse(&c, text, 0, err, sizeof err);
    if (rc != -1 || strcmp(err, msg) != 0) {
        fprintf(stderr, "FAIL line %d: %s\n  got rc %d: %s\n  want: %s\n", line, text, rc, err,
                msg);
        test_failures++;
    }
}
#define EXPECT_ERROR(text, msg) expect_error(text, msg, __LINE__)

/* The text must parse; returns the config. */
static struct ds_config parse_ok(const char *text, int line)
{
    struct ds_config c;
    char err[DSCONFIG_ERR_SIZE];
    if (parse(&c, text, 0, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL line %d: %s\n  error: %s\n", line, text, err);
        test_failures++;
    }
    return c;
}
#define PARSE_OK(text) parse_ok(text, __LINE__)

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc(n + 1);
    if (!s || fread(s, 1, n, f) != (size_t)n) exit(1);
    s[n] = 0;
    fclose(f);
    return s;
}

/* s with the first `from` replaced by `to` (malloc'd). */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) exit(1);
    size_t pre = at - s, n = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    memcpy(out, s, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static const char *origin_key(const struct ds_config *c, enum ds_setting id)
{
    return c->origin[id].key;
}

static void test_fixtures(const char *top)
{
    char p2021[1024], pnow[1024], err[DSCONFIG_ERR_SIZE];
    snprintf(p2021, sizeof p2021, "%s/tests/fixtures/ds_zero3_sc21.json", top);
    snprintf(pnow, sizeof pnow, "%s/tests/fixtures/ds_current_schema.json", top);

    struct ds_config a, b;
    EXPECT(dsconfig_load(&a, p2021, 1, err, sizeof err) == 0, "%s", err);
    EXPECT(a.nwarnings == 0, "%d warnings", a.nwarnings);
    EXPECT(a.zero_stage == 3, "%lld", (long long)a.zero_stage);
    EXPECT(a.param_device == TIER_CPU, "%d", a.param_device);
    EXPECT(a.optim_device == TIER_NVME, "%d", a.optim_device);
    EXPECT(a.param_pin_memory && a.optim_pin_memory, "pin");
    EXPECT(strcmp(a.optim_nvme_path, "/local_nvme") == 0, "%s", a.optim_nvme_path);
    EXPECT(a.optim_buffer_count == 4, "%lld", (long long)a.optim_buffer_count);
    EXPECT(!a.optim_pipeline_read && !a.optim_pipeline_write, "pipeline");
    EXPECT(a.param_buffer_size == 1000000000, "%lld", (long long)a.param_buffer_size);
    EXPECT(a.sub_group_size == 400000000, "%lld", (long long)a.sub_group_size);
    EXPECT(a.prefetch_bucket_size == 50000000, "%lld", (long long)a.prefetch_bucket_size);
    EXPECT(a.max_live_parameters == 1000000000, "%lld", (long long)a.max_live_parameters);
    EXPECT(a.max_reuse_distance == 100000000, "%lld", (long long)a.max_reuse_distance);
    EXPECT(a.param_persistence_threshold == 100000, "%lld",
           (long long)a.param_persistence_threshold);
    EXPECT(a.aio_block_size == 1048576 && a.aio_queue_depth == 16 && a.aio_threads == 2 &&
               !a.aio_single_submit && a.aio_overlap_events,
           "aio %lld %lld %lld %d %d", (long long)a.aio_block_size, (long long)a.aio_queue_depth,
           (long long)a.aio_threads, a.aio_single_submit, a.aio_overlap_events);
    EXPECT(a.precision == DTYPE_FP16, "%d", a.precision);
    EXPECT(a.loss_scale == 1 && a.loss_scale_window == 1000 && a.hysteresis == 2 &&
               a.min_loss_scale == 1,
           "loss scale");
    EXPECT(a.grad_clip == 1.0 && a.micro_batch == 2 && a.grad_accum == 1, "batch/clip");
    EXPECT(a.origin[DS_OPTIM_DEVICE].source == SOURCE_CONFIG &&
               strcmp(origin_key(&a, DS_OPTIM_DEVICE),
                      "zero_optimization.cpu_offload + swap_tensor.optimizer") == 0,
           "%s", origin_key(&a, DS_OPTIM_DEVICE));
    EXPECT(strcmp(origin_key(&a, DS_PARAM_DEVICE), "zero_optimization.cpu_offload_params") == 0,
           "%s", origin_key(&a, DS_PARAM_DEVICE));
    EXPECT(strcmp(origin_key(&a, DS_AIO_THREADS), "aio.thread_count") == 0, "%s",
           origin_key(&a, DS_AIO_THREADS));
    EXPECT(strcmp(origin_key(&a, DS_OPTIM_NVME_PATH), "swap_tensor.folder") == 0, "%s",
           origin_key(&a, DS_OPTIM_NVME_PATH));
    EXPECT(a.origin[DS_PARAM_BUFFER_COUNT].source == SOURCE_DEFAULT, "default");
    EXPECT(strcmp(a.no_effect,
                  "steps_per_print, wall_clock_breakdown, zero_allow_untested_optimizer, "
                  "zero_optimization.overlap_comm, zero_optimization.contiguous_gradients, "
                  "zero_optimization.reduce_bucket_size, swap_tensor.max_fp16_params_in_cpu") == 0,
           "%s", a.no_effect);

    EXPECT(dsconfig_load(&b, pnow, 1, err, sizeof err) == 0, "%s", err);
    EXPECT(b.nwarnings == 0, "%d warnings", b.nwarnings);
    for (int id = 0; id < DS_NSETTINGS; id++) {
        char va[DSCONFIG_PATH_MAX], vb[DSCONFIG_PATH_MAX];
        dsconfig_format(&a, id, va, sizeof va);
        dsconfig_format(&b, id, vb, sizeof vb);
        EXPECT(strcmp(va, vb) == 0, "%s: 2021 schema %s, current schema %s", dsconfig_name(id), va,
               vb);
        EXPECT(a.origin[id].source == b.origin[id].source, "%s: sources %s and %s",
               dsconfig_name(id), setting_source_name(a.origin[id].source),
               setting_source_name(b.origin[id].source));
    }
    EXPECT(strcmp(origin_key(&b, DS_OPTIM_DEVICE), "zero_optimization.offload_optimizer.device") ==
               0,
           "%s", origin_key(&b, DS_OPTIM_DEVICE));
    EXPECT(strcmp(origin_key(&b, DS_AIO_THREADS), "aio.intra_op_parallelism") == 0, "%s",
           origin_key(&b, DS_AIO_THREADS));

    /* The note line, and the printed table naming every source. */
    char *text = read_text(p2021);
    PARSE_OK(text);
    EXPECT(strcmp(warnings, "note: t.json: recognised, no effect here: steps_per_print, "
                            "wall_clock_breakdown, zero_allow_untested_optimizer, "
                            "zero_optimization.overlap_comm, "
                            "zero_optimization.contiguous_gradients, "
                            "zero_optimization.reduce_bucket_size, "
                            "swap_tensor.max_fp16_params_in_cpu\n") == 0,
           "%s", warnings);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dsconfig_print(&a, f);
    fclose(f);
    EXPECT(strstr(buf, "zero_optimization.offload_optimizer.device") &&
               strstr(buf, "config zero_optimization.cpu_offload + swap_tensor.optimizer") &&
               strstr(buf, "recognised, no effect here: steps_per_print"),
           "%s", buf);
    free(buf);

    /* The seed's own file spells the persistence threshold "persitance": DeepSpeed ignored it. */
    char *typo =
        replace(text, "stage3_param_persistence_threshold", "stage3_param_persitance_threshold");
    struct ds_config c = PARSE_OK(typo);
    EXPECT(strstr(warnings,
                  "warning: t.json: unknown key "
                  "zero_optimization.stage3_param_persitance_threshold ignored (did you "
                  "mean zero_optimization.stage3_param_persistence_threshold?)\n") == warnings,
           "%s", warnings);
    EXPECT(c.nwarnings == 1 && c.origin[DS_PARAM_PERSISTENCE_THRESHOLD].source == SOURCE_DEFAULT,
           "%d", c.nwarnings);
    EXPECT(parse(&c, typo, 1, err, sizeof err) == -1 &&
               strcmp(err,
                      "t.json: unknown key zero_optimization.stage3_param_persitance_threshold "
                      "(did you mean zero_optimization.stage3_param_persistence_threshold?)") == 0,
           "%s", err);
    free(typo);
    free(text);
}

static void test_unknown_keys(void)
{
    struct ds_config c = PARSE_OK("{\"zero_optimisation\": {\"stage\": 3}}");
    EXPECT(strcmp(warnings, "warning: t.json: unknown key zero_optimisation ignored (did you mean "
                            "zero_optimization?)\n") == 0,
           "%s", warnings);
    EXPECT(c.zero_stage == 0, "the misspelled object is not read");
    PARSE_OK("{\"zero_optimization\": {\"stage\": 3, \"stage3_prefetch_bucket_sz\": 1e7}}");
    EXPECT(strcmp(warnings, "warning: t.json: unknown key "
                            "zero_optimization.stage3_prefetch_bucket_sz ignored (did you mean "
                            "zero_optimization.stage3_prefetch_bucket_size?)\n") == 0,
           "%s", warnings);
    PARSE_OK("{\"aio\": {\"Queue_Depth\": 4}}");
    EXPECT(strstr(warnings, "(did you mean aio.queue_depth?)"), "%s", warnings);
    PARSE_OK("{\"fp16\": {\"xyzzy\": 1}}");
    EXPECT(strstr(warnings, "unknown key fp16.xyzzy ignored (nearest known key: fp16."), "%s",
           warnings);
    /* An unknown key with a null value is still reported. */
    PARSE_OK("{\"gradient_cliping\": null}");
    EXPECT(strstr(warnings, "(did you mean gradient_clipping?)"), "%s", warnings);
}

static void test_types(void)
{
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": \"three\"}}",
                 "t.json: zero_optimization.stage: expected an integer from 0 to 3, got \"three\"");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 4}}",
                 "t.json: zero_optimization.stage: expected an integer from 0 to 3, got 4");
    EXPECT_ERROR("{\"fp16\": {\"enabled\": 2}}",
                 "t.json: fp16.enabled: expected true or false, got 2");
    EXPECT_ERROR("{\"fp16\": {\"enabled\": \"false\"}}",
                 "t.json: fp16.enabled: expected true or false, got \"false\"");
    struct ds_config c = PARSE_OK("{\"fp16\": {\"enabled\": 1}}");
    EXPECT(c.precision == DTYPE_FP16, "1 reads as true");
    EXPECT_ERROR("{\"zero_optimization\": {\"sub_group_size\": \"4e8\"}}",
                 "t.json: zero_optimization.sub_group_size: expected an integer >= 1, got \"4e8\"");
    EXPECT_ERROR("{\"zero_optimization\": {\"sub_group_size\": 1.5}}",
                 "t.json: zero_optimization.sub_group_size: expected an integer >= 1, got 1.5");
    c = PARSE_OK("{\"zero_optimization\": {\"sub_group_size\": 4e8}}");
    EXPECT(c.sub_group_size == 400000000, "%lld", (long long)c.sub_group_size);
    c = PARSE_OK("{\"zero_optimization\": {\"sub_group_size\": 400000000.0}}");
    EXPECT(c.sub_group_size == 400000000, "%lld", (long long)c.sub_group_size);
    c = PARSE_OK("{\"zero_optimization\": {\"stage3_prefetch_bucket_size\": 0.94e6}}");
    EXPECT(c.prefetch_bucket_size == 940000, "%lld", (long long)c.prefetch_bucket_size);
    EXPECT_ERROR("{\"train_micro_batch_size_per_gpu\": \"auto\"}",
                 "t.json: train_micro_batch_size_per_gpu: expected an integer >= 1, got \"auto\" "
                 "(\"auto\" is filled in by the Hugging Face Trainer; write the value)");
    EXPECT_ERROR("{\"gradient_clipping\": -1}",
                 "t.json: gradient_clipping: expected a number >= 0, got -1");
    EXPECT_ERROR("{\"fp16\": true}", "t.json: fp16: expected an object {...}, got true");
    EXPECT_ERROR(
        "[1, 2]",
        "t.json: the top level: expected an object {...} of DeepSpeed settings, got [1,2]");
    EXPECT_ERROR("{\"zero_optimization\": {\"offload_optimizer\": {\"device\": \"disk\"}}}",
                 "t.json: zero_optimization.offload_optimizer.device: expected one of none, cpu "
                 "or nvme, got \"disk\"");
    EXPECT_ERROR("{\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"betas\": [0.9]}}}",
                 "t.json: optimizer.params.betas: expected two numbers [beta1, beta2], got [0.9]");
    c = PARSE_OK("{\"zero_optimization\": {\"stage\": null}}");
    EXPECT(c.zero_stage == 0 && c.origin[DS_ZERO_STAGE].source == SOURCE_DEFAULT, "null");
}

static void test_conflicts(void)
{
    EXPECT_ERROR("{\"fp16\": {\"enabled\": true}, \"bf16\": {\"enabled\": true}}",
                 "t.json: fp16.enabled and bf16.enabled are both true: choose one precision");
    EXPECT_ERROR("{\"bf16\": {\"enabled\": true}, \"bfloat16\": {\"enabled\": true}}",
                 "t.json: bf16.enabled and bfloat16.enabled both set bf16.enabled: keep one");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"offload_optimizer\": {\"device\": "
                 "\"nvme\"}}}",
                 "t.json: zero_optimization.offload_optimizer.device puts the optimizer state on "
                 "NVMe but names no folder: add zero_optimization.offload_optimizer.nvme_path "
                 "(2021 schema: swap_tensor.folder)");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"cpu_offload\": true}, \"swap_tensor\": "
                 "{\"optimizer\": true}}",
                 "t.json: zero_optimization.cpu_offload + swap_tensor.optimizer puts the optimizer "
                 "state on NVMe but names no folder: add "
                 "zero_optimization.offload_optimizer.nvme_path (2021 schema: swap_tensor.folder)");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"offload_param\": {\"device\": "
                 "\"nvme\"}}}",
                 "t.json: zero_optimization.offload_param.device puts the parameters on NVMe but "
                 "names no folder: add zero_optimization.offload_param.nvme_path (2021 schema: "
                 "swap_tensor.folder)");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"cpu_offload\": true, "
                 "\"offload_optimizer\": {\"device\": \"cpu\"}}}",
                 "t.json: zero_optimization.offload_optimizer.device and "
                 "zero_optimization.cpu_offload both set "
                 "zero_optimization.offload_optimizer.device: keep one");
    EXPECT_ERROR("{\"aio\": {\"thread_count\": 2, \"intra_op_parallelism\": 4}}",
                 "t.json: aio.thread_count and aio.intra_op_parallelism both set "
                 "aio.intra_op_parallelism: keep one");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"cpu_offload_params\": true, "
                 "\"cpu_offload_param\": true}}",
                 "t.json: zero_optimization.cpu_offload_params and "
                 "zero_optimization.cpu_offload_param both set "
                 "zero_optimization.cpu_offload_params: keep one");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3}, \"swap_tensor\": {\"folder\": \"/x\", "
                 "\"optimizer\": true}}",
                 "t.json: swap_tensor.optimizer true needs zero_optimization.cpu_offload true: "
                 "NVMe swapping moves the CPU-offloaded state");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 2, \"offload_param\": {\"device\": "
                 "\"cpu\"}}}",
                 "t.json: zero_optimization.offload_param.device offloads parameters, which needs "
                 "zero_optimization.stage 3 (it is 2)");
    EXPECT_ERROR("{\"zero_optimization\": {\"stage\": 3, \"offload_optimizer\": {\"device\": "
                 "\"cpu\", \"ratio\": 0.5}}}",
                 "t.json: zero_optimization.offload_optimizer.ratio 0.5: partial optimizer "
                 "offload (ratio below 1) is not implemented here: remove it");
    EXPECT_ERROR("{\"aio\": {\"use_gds\": true}}",
                 "t.json: aio.use_gds true: GPUDirect Storage is not implemented here: set it "
                 "false");

    /* swap_tensor has its own defaults (optimizer_buffer_count 10, not offload_optimizer's 4). */
    struct ds_config c = PARSE_OK("{\"zero_optimization\": {\"stage\": 3, \"cpu_offload\": true}, "
                                  "\"swap_tensor\": {\"folder\": \"/x\", \"optimizer\": true}}");
    EXPECT(c.optim_device == TIER_NVME && c.optim_buffer_count == 10 &&
               strcmp(origin_key(&c, DS_OPTIM_BUFFER_COUNT), "(2021 schema)") == 0,
           "%lld %s", (long long)c.optim_buffer_count, origin_key(&c, DS_OPTIM_BUFFER_COUNT));
    c = PARSE_OK("{\"fp16\": {\"enabled\": false, \"loss_scale\": 128}}");
    EXPECT(strcmp(warnings,
                  "warning: t.json: fp16.loss_scale: no effect, fp16.enabled is not true\n") == 0,
           "%s", warnings);
    EXPECT(c.precision == DTYPE_FP32 && strcmp(origin_key(&c, DS_PRECISION), "fp16.enabled") == 0,
           "%s", origin_key(&c, DS_PRECISION));
}

static void test_optimizer_scheduler(void)
{
    struct ds_config c = PARSE_OK(
        "{\"optimizer\": {\"type\": \"adamw\", \"params\": {\"lr\": 1.5e-4, \"betas\": [0.9, "
        "0.95], \"eps\": 1e-8, \"weight_decay\": 0.01, \"torch_adam\": true}}, \"scheduler\": "
        "{\"type\": \"WarmupCosineLR\", \"params\": {\"total_num_steps\": 100, "
        "\"warmup_num_steps\": 1, \"warmup_type\": \"linear\", \"cos_min_ratio\": 0.0667}}}");
    EXPECT(c.optimizer == DS_OPTIMIZER_ADAMW && c.lr == 1.5e-4 && c.beta1 == 0.9 &&
               c.beta2 == 0.95 && c.eps == 1e-8 && c.weight_decay == 0.01,
           "optimizer");
    EXPECT(strcmp(origin_key(&c, DS_BETA2), "optimizer.params.betas") == 0, "%s",
           origin_key(&c, DS_BETA2));
    EXPECT(c.scheduler == DS_SCHEDULER_WARMUP_COSINE_LR && c.total_num_steps == 100 &&
               c.warmup_num_steps == 1 && c.warmup_type == DS_WARMUP_LINEAR &&
               c.cos_min_ratio == 0.0667,
           "scheduler");
    EXPECT(strcmp(c.no_effect, "optimizer.params.torch_adam") == 0, "%s", c.no_effect);
    char v[64];
    dsconfig_format(&c, DS_SCHEDULER, v, sizeof v);
    EXPECT(strcmp(v, "WarmupCosineLR") == 0, "%s", v);
    EXPECT_ERROR("{\"optimizer\": {\"type\": \"Lamb\"}}",
                 "t.json: optimizer.type: optimizer Lamb is not implemented here: use Adam or "
                 "AdamW");
    EXPECT_ERROR("{\"optimizer\": {\"params\": {\"lr\": 1}}}",
                 "t.json: optimizer.type is missing: write \"type\": \"AdamW\" (or \"Adam\")");
    EXPECT_ERROR("{\"optimizer\": {\"type\": \"Adam\", \"params\": {\"adam_w_mode\": false}}}",
                 "t.json: optimizer.params.adam_w_mode false (Adam with L2 regularisation) is not "
                 "implemented here: remove it to get AdamW");
    EXPECT_ERROR("{\"scheduler\": {\"type\": \"WarmupDecayLR\", \"params\": "
                 "{\"warmup_num_steps\": 10}}}",
                 "t.json: scheduler.params.total_num_steps is missing: WarmupDecayLR needs it");
    EXPECT_ERROR("{\"scheduler\": {\"type\": \"WarmupLR\", \"params\": {\"total_num_steps\": "
                 "10}}}",
                 "t.json: scheduler.params.total_num_steps: WarmupLR takes no such parameter: "
                 "remove it");
    EXPECT_ERROR("{\"scheduler\": {\"type\": \"OneCycle\"}}",
                 "t.json: scheduler.type: scheduler OneCycle is not implemented here: choose "
                 "WarmupLR, WarmupDecayLR or WarmupCosineLR");
}

static void test_batch(void)
{
    char err[DSCONFIG_ERR_SIZE];
    struct ds_config c = PARSE_OK("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": "
                                  "2, \"gradient_accumulation_steps\": 1}");
    EXPECT(dsconfig_resolve_batch(&c, 8, err, sizeof err) == -1 &&
               strcmp(err, "t.json: train_batch_size 32 (config) is not "
                           "train_micro_batch_size_per_gpu 2 (config) x "
                           "gradient_accumulation_steps 1 (config) x world size 8 = 16: make them "
                           "agree") == 0,
           "%s", err);
    EXPECT(dsconfig_resolve_batch(&c, 16, err, sizeof err) == 0, "%s", err);

    c.micro_batch = 3;
    dsconfig_set_origin(&c, DS_MICRO_BATCH, SOURCE_FLAG, "--micro-batch-size");
    EXPECT(dsconfig_resolve_batch(&c, 16, err, sizeof err) == -1 &&
               strstr(err, "train_micro_batch_size_per_gpu 3 (flag --micro-batch-size)"),
           "%s", err);

    c = PARSE_OK("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 2}");
    EXPECT(dsconfig_resolve_batch(&c, 4, err, sizeof err) == 0 && c.grad_accum == 4, "%s %lld", err,
           (long long)c.grad_accum);
    c = PARSE_OK("{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2}");
    EXPECT(dsconfig_resolve_batch(&c, 4, err, sizeof err) == 0 && c.micro_batch == 4, "%s %lld",
           err, (long long)c.micro_batch);
    c = PARSE_OK("{\"train_batch_size\": 32}");
    EXPECT(dsconfig_resolve_batch(&c, 8, err, sizeof err) == 0 && c.micro_batch == 4 &&
               c.grad_accum == 1,
           "%s %lld", err, (long long)c.micro_batch);
    c = PARSE_OK("{\"train_batch_size\": 30, \"train_micro_batch_size_per_gpu\": 4}");
    EXPECT(dsconfig_resolve_batch(&c, 2, err, sizeof err) == -1 &&
               strcmp(err, "t.json: train_batch_size 30 (config) is not divisible by "
                           "train_micro_batch_size_per_gpu 4 (config) x world size 2: make them "
                           "agree") == 0,
           "%s", err);
    c = PARSE_OK("{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 3}");
    EXPECT(dsconfig_resolve_batch(&c, 4, err, sizeof err) == 0 && c.train_batch_size == 24, "%lld",
           (long long)c.train_batch_size);
}

static void test_json_errors(void)
{
    struct ds_config c;
    char err[DSCONFIG_ERR_SIZE];
    EXPECT(parse(&c, "{\n  \"fp16\": {\"enabled\": true,}\n}", 0, err, sizeof err) == -1 &&
               strncmp(err, "t.json:2:", 9) == 0 && strstr(err, ": invalid JSON: "),
           "%s", err);
    EXPECT(parse(&c, "{\"zero_optimization\": {\"stage\": 3, \"stage\": 2}}", 0, err, sizeof err) ==
                   -1 &&
               strstr(err, "duplicate"),
           "%s", err);
    EXPECT(dsconfig_load(&c, "/nonexistent/ds.json", 0, err, sizeof err) == -1 &&
               strcmp(err, "/nonexistent/ds.json: cannot open the DeepSpeed config: No such file "
                           "or directory") == 0,
           "%s", err);
    char path[] = "/tmp/test_dsconfig_XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0, "mkstemp");
    const char bad[] = "{\n\"train_batch_size\": 8\n\"fp16\": {}\n}\n";
    EXPECT(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1), "write");
    close(fd);
    char want[128];
    snprintf(want, sizeof want, "%s:3:", path);
    EXPECT(dsconfig_load(&c, path, 0, err, sizeof err) == -1 &&
               strncmp(err, want, strlen(want)) == 0,
           "%s", err);
    unlink(path);
}

int main(void)
{
    const char *top = getenv("GPT50B_TOP");
    if (!top) top = ".";
    test_fixtures(top);
    test_unknown_keys();
    test_types();
    test_conflicts();
    test_optimizer_scheduler();
    test_batch();
    test_json_errors();
    return test_finish("test_dsconfig");
}
