/* dsconfig.c: the DeepSpeed JSON config reader (see dsconfig.h).
 *
 * Two tables drive it. `settings` names every field of struct ds_config with its type, default
 * and range: it gives defaults, conversions, range checks, names and printing. The key tree
 * (`top` and its children) says what each JSON key does: set a field directly, feed a "special"
 * that is resolved after the walk (keys whose meaning depends on other keys: fp16/bf16, the 2021
 * offload switches, optimizer and scheduler types), descend into an object, or nothing here. A
 * field set by two keys (a 2021 and a current spelling of one thing) is an error, which is how
 * mixed schemas are caught without a list of pairs. */
#include "dsconfig.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "check.h"

/* Largest integer a double holds exactly: the bound of integer settings. */
#define BIG 9007199254740992.0

enum set_type {
    SET_BOOL, /* int 0/1 */
    SET_INT,  /* int64_t */
    SET_NUM,  /* double */
    SET_PATH, /* char[DSCONFIG_PATH_MAX] */
    SET_ENUM, /* an enum, read and written as int, spelled by `names` */
    SET_PAIR, /* two numbers (specials only: betas) */
};

struct setting_def {
    const char *name;
    enum set_type type;
    size_t offset;
    double def;
    double min, max; /* accepted range of SET_INT and SET_NUM values, inclusive */
    const char *const *names;
};

static const char *const device_names[] = {"none", "cpu", "nvme", NULL};
static const char *const optimizer_names[] = {"Adam", "AdamW", NULL};
static const char *const scheduler_names[] = {"none", "WarmupLR", "WarmupDecayLR", "WarmupCosineLR",
                                              NULL};
static const char *const warmup_names[] = {"log", "linear", NULL};
static const char *const precision_names[] = {"fp32", "fp16", "bf16", NULL}; /* enum dtype */

#define F(field) offsetof(struct ds_config, field)
static const struct setting_def settings[DS_NSETTINGS] = {
    [DS_TRAIN_BATCH_SIZE] = {"train_batch_size", SET_INT, F(train_batch_size), 0, 1, BIG},
    [DS_MICRO_BATCH] = {"train_micro_batch_size_per_gpu", SET_INT, F(micro_batch), 1, 1, BIG},
    [DS_GRAD_ACCUM] = {"gradient_accumulation_steps", SET_INT, F(grad_accum), 1, 1, BIG},
    [DS_GRAD_CLIP] = {"gradient_clipping", SET_NUM, F(grad_clip), 0, 0, INFINITY},
    [DS_PRECISION] = {"precision", SET_ENUM, F(precision), DTYPE_FP32, 0, 0, precision_names},
    [DS_LOSS_SCALE] = {"fp16.loss_scale", SET_NUM, F(loss_scale), 0, 0, INFINITY},
    [DS_INITIAL_SCALE_POWER] = {"fp16.initial_scale_power", SET_INT, F(initial_scale_power), 16, 0,
                                64},
    [DS_LOSS_SCALE_WINDOW] = {"fp16.loss_scale_window", SET_INT, F(loss_scale_window), 1000, 1,
                              BIG},
    [DS_HYSTERESIS] = {"fp16.hysteresis", SET_INT, F(hysteresis), 2, 1, BIG},
    [DS_MIN_LOSS_SCALE] = {"fp16.min_loss_scale", SET_NUM, F(min_loss_scale), 1, 0, INFINITY},
    [DS_OPTIMIZER] = {"optimizer.type", SET_ENUM, F(optimizer), DS_OPTIMIZER_ADAMW, 0, 0,
                      optimizer_names},
    [DS_LR] = {"optimizer.params.lr", SET_NUM, F(lr), 1e-3, 0, INFINITY},
    [DS_BETA1] = {"optimizer.params.betas[0]", SET_NUM, F(beta1), 0.9, 0, 1},
    [DS_BETA2] = {"optimizer.params.betas[1]", SET_NUM, F(beta2), 0.999, 0, 1},
    [DS_EPS] = {"optimizer.params.eps", SET_NUM, F(eps), 1e-8, 0, INFINITY},
    [DS_WEIGHT_DECAY] = {"optimizer.params.weight_decay", SET_NUM, F(weight_decay), 0, 0, INFINITY},
    [DS_SCHEDULER] = {"scheduler.type", SET_ENUM, F(scheduler), DS_SCHEDULER_NONE, 0, 0,
                      scheduler_names},
    [DS_WARMUP_MIN_LR] = {"scheduler.params.warmup_min_lr", SET_NUM, F(warmup_min_lr), 0, 0,
                          INFINITY},
    [DS_WARMUP_MAX_LR] = {"scheduler.params.warmup_max_lr", SET_NUM, F(warmup_max_lr), 1e-3, 0,
                          INFINITY},
    [DS_WARMUP_NUM_STEPS] = {"scheduler.params.warmup_num_steps", SET_INT, F(warmup_num_steps),
                             1000, 0, BIG},
    [DS_WARMUP_TYPE] = {"scheduler.params.warmup_type", SET_ENUM, F(warmup_type), DS_WARMUP_LOG, 0,
                        0, warmup_names},
    [DS_TOTAL_NUM_STEPS] = {"scheduler.params.total_num_steps", SET_INT, F(total_num_steps), 0, 1,
                            BIG},
    [DS_WARMUP_MIN_RATIO] = {"scheduler.params.warmup_min_ratio", SET_NUM, F(warmup_min_ratio), 0,
                             0, 1},
    [DS_COS_MIN_RATIO] = {"scheduler.params.cos_min_ratio", SET_NUM, F(cos_min_ratio), 1e-4, 0, 1},
    [DS_CPU_CHECKPOINTING] = {"activation_checkpointing.cpu_checkpointing", SET_BOOL,
                              F(cpu_checkpointing), 0},
    [DS_ZERO_STAGE] = {"zero_optimization.stage", SET_INT, F(zero_stage), 0, 0, 3},
    [DS_PARAM_DEVICE] = {"zero_optimization.offload_param.device", SET_ENUM, F(param_device),
                         TIER_GPU, 0, 0, device_names},
    [DS_PARAM_PIN_MEMORY] = {"zero_optimization.offload_param.pin_memory", SET_BOOL,
                             F(param_pin_memory), 0},
    [DS_PARAM_NVME_PATH] = {"zero_optimization.offload_param.nvme_path", SET_PATH,
                            F(param_nvme_path)},
    [DS_PARAM_BUFFER_COUNT] = {"zero_optimization.offload_param.buffer_count", SET_INT,
                               F(param_buffer_count), 5, 1, BIG},
    [DS_PARAM_BUFFER_SIZE] = {"zero_optimization.offload_param.buffer_size", SET_INT,
                              F(param_buffer_size), 1e8, 1, BIG},
    [DS_OPTIM_DEVICE] = {"zero_optimization.offload_optimizer.device", SET_ENUM, F(optim_device),
                         TIER_GPU, 0, 0, device_names},
    [DS_OPTIM_PIN_MEMORY] = {"zero_optimization.offload_optimizer.pin_memory", SET_BOOL,
                             F(optim_pin_memory), 0},
    [DS_OPTIM_NVME_PATH] = {"zero_optimization.offload_optimizer.nvme_path", SET_PATH,
                            F(optim_nvme_path)},
    [DS_OPTIM_BUFFER_COUNT] = {"zero_optimization.offload_optimizer.buffer_count", SET_INT,
                               F(optim_buffer_count), 4, 1, BIG},
    [DS_OPTIM_PIPELINE_READ] = {"zero_optimization.offload_optimizer.pipeline_read", SET_BOOL,
                                F(optim_pipeline_read), 0},
    [DS_OPTIM_PIPELINE_WRITE] = {"zero_optimization.offload_optimizer.pipeline_write", SET_BOOL,
                                 F(optim_pipeline_write), 0},
    [DS_SUB_GROUP_SIZE] = {"zero_optimization.sub_group_size", SET_INT, F(sub_group_size), 1e9, 1,
                           BIG},
    [DS_PREFETCH_BUCKET_SIZE] = {"zero_optimization.stage3_prefetch_bucket_size", SET_INT,
                                 F(prefetch_bucket_size), 5e7, 0, BIG},
    [DS_MAX_LIVE_PARAMETERS] = {"zero_optimization.stage3_max_live_parameters", SET_INT,
                                F(max_live_parameters), 1e9, 0, BIG},
    [DS_MAX_REUSE_DISTANCE] = {"zero_optimization.stage3_max_reuse_distance", SET_INT,
                               F(max_reuse_distance), 1e9, 0, BIG},
    [DS_PARAM_PERSISTENCE_THRESHOLD] = {"zero_optimization.stage3_param_persistence_threshold",
                                        SET_INT, F(param_persistence_threshold), 1e5, 0, BIG},
    [DS_AIO_BLOCK_SIZE] = {"aio.block_size", SET_INT, F(aio_block_size), 1048576, 1, BIG},
    [DS_AIO_QUEUE_DEPTH] = {"aio.queue_depth", SET_INT, F(aio_queue_depth), 8, 1, BIG},
    [DS_AIO_THREADS] = {"aio.intra_op_parallelism", SET_INT, F(aio_threads), 1, 1, BIG},
    [DS_AIO_SINGLE_SUBMIT] = {"aio.single_submit", SET_BOOL, F(aio_single_submit), 0},
    [DS_AIO_OVERLAP_EVENTS] = {"aio.overlap_events", SET_BOOL, F(aio_overlap_events), 1},
};
#undef F

/* Keys resolved after the walk, because their meaning depends on other keys. */
enum special {
    SP_FP16_ENABLED,
    SP_BF16_ENABLED,
    SP_OPTIMIZER_TYPE,
    SP_BETAS,
    SP_ADAM_W_MODE,
    SP_BIAS_CORRECTION,
    SP_SCHEDULER_TYPE,
    SP_CPU_OFFLOAD,
    SP_CPU_OFFLOAD_PARAMS,
    SP_CPU_OFFLOAD_PIN,
    SP_SWAP_FOLDER,
    SP_SWAP_OPTIMIZER,
    SP_SWAP_FP16_PARAMS,
    SP_OFFLOAD_RATIO,
    SP_USE_GDS,
    SP_COUNT
};

static const struct {
    const char *name;
    enum set_type type;
} specials[SP_COUNT] = {
    [SP_FP16_ENABLED] = {"fp16.enabled", SET_BOOL},
    [SP_BF16_ENABLED] = {"bf16.enabled", SET_BOOL},
    [SP_OPTIMIZER_TYPE] = {"optimizer.type", SET_PATH},
    [SP_BETAS] = {"optimizer.params.betas", SET_PAIR},
    [SP_ADAM_W_MODE] = {"optimizer.params.adam_w_mode", SET_BOOL},
    [SP_BIAS_CORRECTION] = {"optimizer.params.bias_correction", SET_BOOL},
    [SP_SCHEDULER_TYPE] = {"scheduler.type", SET_PATH},
    [SP_CPU_OFFLOAD] = {"zero_optimization.cpu_offload", SET_BOOL},
    [SP_CPU_OFFLOAD_PARAMS] = {"zero_optimization.cpu_offload_params", SET_BOOL},
    [SP_CPU_OFFLOAD_PIN] = {"zero_optimization.cpu_offload_use_pin_memory", SET_BOOL},
    [SP_SWAP_FOLDER] = {"swap_tensor.folder", SET_PATH},
    [SP_SWAP_OPTIMIZER] = {"swap_tensor.optimizer", SET_BOOL},
    [SP_SWAP_FP16_PARAMS] = {"swap_tensor.fp16_params", SET_BOOL},
    [SP_OFFLOAD_RATIO] = {"zero_optimization.offload_optimizer.ratio", SET_NUM},
    [SP_USE_GDS] = {"aio.use_gds", SET_BOOL},
};

/* Objects whose mere presence matters. */
enum object_id { OBJ_PLAIN, OBJ_OPTIMIZER, OBJ_SCHEDULER, OBJ_SWAP_TENSOR, OBJ_COUNT };

enum key_kind {
    KEY_SETTING,   /* sets settings[id] */
    KEY_SPECIAL,   /* feeds specials[id] */
    KEY_OBJECT,    /* an object of `children`; id is an enum object_id */
    KEY_NO_EFFECT, /* DeepSpeed's, does nothing here: listed on the note line */
};

struct key_def {
    const char *name;
    enum key_kind kind;
    int id;
    const struct key_def *children;
};

#define SETTING(name, id)                                                                          \
    {                                                                                              \
        name, KEY_SETTING, id, NULL                                                                \
    }
#define SPECIAL(name, id)                                                                          \
    {                                                                                              \
        name, KEY_SPECIAL, id, NULL                                                                \
    }
#define OBJECT(name, id, children)                                                                 \
    {                                                                                              \
        name, KEY_OBJECT, id, children                                                             \
    }
#define NO_EFFECT(name)                                                                            \
    {                                                                                              \
        name, KEY_NO_EFFECT, 0, NULL                                                               \
    }

static const struct key_def offload_param_keys[] = {
    SETTING("device", DS_PARAM_DEVICE),
    SETTING("pin_memory", DS_PARAM_PIN_MEMORY),
    SETTING("nvme_path", DS_PARAM_NVME_PATH),
    SETTING("buffer_count", DS_PARAM_BUFFER_COUNT),
    SETTING("buffer_size", DS_PARAM_BUFFER_SIZE),
    NO_EFFECT("max_in_cpu"),
    {NULL},
};

static const struct key_def offload_optimizer_keys[] = {
    SETTING("device", DS_OPTIM_DEVICE),
    SETTING("nvme_path", DS_OPTIM_NVME_PATH),
    SETTING("pin_memory", DS_OPTIM_PIN_MEMORY),
    SETTING("buffer_count", DS_OPTIM_BUFFER_COUNT),
    SETTING("pipeline_read", DS_OPTIM_PIPELINE_READ),
    SETTING("pipeline_write", DS_OPTIM_PIPELINE_WRITE),
    SPECIAL("ratio", SP_OFFLOAD_RATIO),
    NO_EFFECT("fast_init"),
    {NULL},
};

/* The stage3_ knobs also have unprefixed names (pydantic aliases in current DeepSpeed). */
static const struct key_def zero_keys[] = {
    SETTING("stage", DS_ZERO_STAGE),
    SPECIAL("cpu_offload", SP_CPU_OFFLOAD),
    SPECIAL("cpu_offload_params", SP_CPU_OFFLOAD_PARAMS),
    SPECIAL("cpu_offload_param", SP_CPU_OFFLOAD_PARAMS),
    SPECIAL("cpu_offload_use_pin_memory", SP_CPU_OFFLOAD_PIN),
    OBJECT("offload_param", OBJ_PLAIN, offload_param_keys),
    OBJECT("offload_optimizer", OBJ_PLAIN, offload_optimizer_keys),
    SETTING("sub_group_size", DS_SUB_GROUP_SIZE),
    SETTING("stage3_prefetch_bucket_size", DS_PREFETCH_BUCKET_SIZE),
    SETTING("prefetch_bucket_size", DS_PREFETCH_BUCKET_SIZE),
    SETTING("stage3_max_live_parameters", DS_MAX_LIVE_PARAMETERS),
    SETTING("max_live_parameters", DS_MAX_LIVE_PARAMETERS),
    SETTING("stage3_max_reuse_distance", DS_MAX_REUSE_DISTANCE),
    SETTING("max_reuse_distance", DS_MAX_REUSE_DISTANCE),
    SETTING("stage3_param_persistence_threshold", DS_PARAM_PERSISTENCE_THRESHOLD),
    SETTING("param_persistence_threshold", DS_PARAM_PERSISTENCE_THRESHOLD),
    NO_EFFECT("overlap_comm"),
    NO_EFFECT("contiguous_gradients"),
    NO_EFFECT("reduce_bucket_size"),
    NO_EFFECT("reduce_scatter"),
    NO_EFFECT("allgather_partitions"),
    NO_EFFECT("allgather_bucket_size"),
    NO_EFFECT("load_from_fp32_weights"),
    NO_EFFECT("elastic_checkpoint"),
    NO_EFFECT("ignore_unused_parameters"),
    NO_EFFECT("round_robin_gradients"),
    NO_EFFECT("stage3_gather_fp16_weights_on_model_save"),
    NO_EFFECT("stage3_gather_16bit_weights_on_model_save"),
    NO_EFFECT("gather_16bit_weights_on_model_save"),
    NO_EFFECT("stage3_model_persistence_threshold"),
    NO_EFFECT("memory_efficient_linear"),
    {NULL},
};

static const struct key_def swap_tensor_keys[] = {
    SPECIAL("folder", SP_SWAP_FOLDER),
    SPECIAL("optimizer", SP_SWAP_OPTIMIZER),
    SETTING("optimizer_buffer_count", DS_OPTIM_BUFFER_COUNT),
    SETTING("pipeline_read", DS_OPTIM_PIPELINE_READ),
    SETTING("pipeline_write", DS_OPTIM_PIPELINE_WRITE),
    SPECIAL("fp16_params", SP_SWAP_FP16_PARAMS),
    SETTING("fp16_params_buffer_size", DS_PARAM_BUFFER_SIZE),
    SETTING("fp16_params_buffer_count", DS_PARAM_BUFFER_COUNT),
    NO_EFFECT("max_fp16_params_in_cpu"),
    {NULL},
};

static const struct key_def aio_keys[] = {
    SETTING("block_size", DS_AIO_BLOCK_SIZE),
    SETTING("queue_depth", DS_AIO_QUEUE_DEPTH),
    SETTING("thread_count", DS_AIO_THREADS),
    SETTING("intra_op_parallelism", DS_AIO_THREADS),
    SETTING("single_submit", DS_AIO_SINGLE_SUBMIT),
    SETTING("overlap_events", DS_AIO_OVERLAP_EVENTS),
    SPECIAL("use_gds", SP_USE_GDS),
    {NULL},
};

static const struct key_def fp16_keys[] = {
    SPECIAL("enabled", SP_FP16_ENABLED),
    SETTING("loss_scale", DS_LOSS_SCALE),
    SETTING("initial_scale_power", DS_INITIAL_SCALE_POWER),
    SETTING("loss_scale_window", DS_LOSS_SCALE_WINDOW),
    SETTING("hysteresis", DS_HYSTERESIS),
    SETTING("min_loss_scale", DS_MIN_LOSS_SCALE),
    NO_EFFECT("auto_cast"),
    NO_EFFECT("consecutive_hysteresis"),
    {NULL},
};

static const struct key_def bf16_keys[] = {
    SPECIAL("enabled", SP_BF16_ENABLED),
    {NULL},
};

static const struct key_def optimizer_params_keys[] = {
    SETTING("lr", DS_LR),
    SPECIAL("betas", SP_BETAS),
    SETTING("eps", DS_EPS),
    SETTING("weight_decay", DS_WEIGHT_DECAY),
    SPECIAL("adam_w_mode", SP_ADAM_W_MODE),
    SPECIAL("bias_correction", SP_BIAS_CORRECTION),
    NO_EFFECT("torch_adam"),
    {NULL},
};

static const struct key_def optimizer_keys[] = {
    SPECIAL("type", SP_OPTIMIZER_TYPE),
    OBJECT("params", OBJ_PLAIN, optimizer_params_keys),
    {NULL},
};

/* The union of the three schedulers' parameters; resolve() checks each against the type. */
static const struct key_def scheduler_params_keys[] = {
    SETTING("warmup_min_lr", DS_WARMUP_MIN_LR),
    SETTING("warmup_max_lr", DS_WARMUP_MAX_LR),
    SETTING("warmup_num_steps", DS_WARMUP_NUM_STEPS),
    SETTING("warmup_type", DS_WARMUP_TYPE),
    SETTING("total_num_steps", DS_TOTAL_NUM_STEPS),
    SETTING("warmup_min_ratio", DS_WARMUP_MIN_RATIO),
    SETTING("cos_min_ratio", DS_COS_MIN_RATIO),
    NO_EFFECT("last_batch_iteration"),
    {NULL},
};

static const struct key_def scheduler_keys[] = {
    SPECIAL("type", SP_SCHEDULER_TYPE),
    OBJECT("params", OBJ_PLAIN, scheduler_params_keys),
    {NULL},
};

static const struct key_def activation_checkpointing_keys[] = {
    SETTING("cpu_checkpointing", DS_CPU_CHECKPOINTING),
    NO_EFFECT("partition_activations"),
    NO_EFFECT("contiguous_memory_optimization"),
    NO_EFFECT("number_checkpoints"),
    NO_EFFECT("synchronize_checkpoint_boundary"),
    NO_EFFECT("profile"),
    {NULL},
};

static const struct key_def top_keys[] = {
    SETTING("train_batch_size", DS_TRAIN_BATCH_SIZE),
    SETTING("train_micro_batch_size_per_gpu", DS_MICRO_BATCH),
    SETTING("gradient_accumulation_steps", DS_GRAD_ACCUM),
    SETTING("gradient_clipping", DS_GRAD_CLIP),
    OBJECT("fp16", OBJ_PLAIN, fp16_keys),
    OBJECT("bf16", OBJ_PLAIN, bf16_keys),
    OBJECT("bfloat16", OBJ_PLAIN, bf16_keys),
    OBJECT("optimizer", OBJ_OPTIMIZER, optimizer_keys),
    OBJECT("scheduler", OBJ_SCHEDULER, scheduler_keys),
    OBJECT("zero_optimization", OBJ_PLAIN, zero_keys),
    OBJECT("swap_tensor", OBJ_SWAP_TENSOR, swap_tensor_keys),
    OBJECT("aio", OBJ_PLAIN, aio_keys),
    OBJECT("activation_checkpointing", OBJ_PLAIN, activation_checkpointing_keys),
    NO_EFFECT("steps_per_print"),
    NO_EFFECT("wall_clock_breakdown"),
    NO_EFFECT("zero_allow_untested_optimizer"),
    NO_EFFECT("zero_force_ds_cpu_optimizer"),
    NO_EFFECT("memory_breakdown"),
    NO_EFFECT("dump_state"),
    NO_EFFECT("prescale_gradients"),
    NO_EFFECT("gradient_predivide_factor"),
    NO_EFFECT("tensorboard"),
    NO_EFFECT("wandb"),
    NO_EFFECT("csv_monitor"),
    NO_EFFECT("flops_profiler"),
    NO_EFFECT("comms_logger"),
    {NULL},
};

/* A special's value as read by the walk. */
struct raw {
    bool present;
    char path[128];
    int b;
    double num;
    double pair[2];
    const char *str; /* points into the JSON tree, alive until the parse ends */
};

struct ctx {
    struct ds_config *c;
    const char *name;
    int strict;
    FILE *warn;
    char *err;
    size_t errlen;
    struct raw raw[SP_COUNT];
    bool seen[OBJ_COUNT];
};

__attribute__((format(printf, 2, 3))) static int fail(struct ctx *x, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(x->err, x->errlen, "%s: ", x->name);
    if (n >= 0 && (size_t)n < x->errlen) {
        va_start(ap, fmt);
        vsnprintf(x->err + n, x->errlen - n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

__attribute__((format(printf, 2, 3))) static void warnf(struct ctx *x, const char *fmt, ...)
{
    va_list ap;
    fprintf(x->warn, "warning: %s: ", x->name);
    va_start(ap, fmt);
    vfprintf(x->warn, fmt, ap);
    va_end(ap);
    fputc('\n', x->warn);
    x->c->nwarnings++;
}

const char *setting_source_name(enum setting_source s)
{
    static const char *const names[] = {"default", "preset", "config", "flag", "env"};
    CHECK((unsigned)s < sizeof names / sizeof names[0]);
    return names[s];
}

void setting_origin_set(struct setting_origin *o, enum setting_source source, const char *key)
{
    o->source = source;
    snprintf(o->key, sizeof o->key, "%s", key ? key : "");
}

void setting_origin_format(const struct setting_origin *o, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", setting_source_name(o->source), o->key[0] ? " " : "", o->key);
}

const char *dsconfig_name(enum ds_setting id)
{
    CHECK((unsigned)id < DS_NSETTINGS);
    return settings[id].name;
}

static void *field(struct ds_config *c, enum ds_setting id)
{
    return (char *)c + settings[id].offset;
}

void dsconfig_init(struct ds_config *c)
{
    memset(c, 0, sizeof *c);
    for (int id = 0; id < DS_NSETTINGS; id++) {
        const struct setting_def *s = &settings[id];
        void *p = field(c, id);
        switch (s->type) {
        case SET_BOOL:
        case SET_ENUM:
            *(int *)p = (int)s->def;
            break;
        case SET_INT:
            *(int64_t *)p = (int64_t)s->def;
            break;
        case SET_NUM:
            *(double *)p = s->def;
            break;
        case SET_PATH:
        case SET_PAIR:
            break;
        }
        setting_origin_set(&c->origin[id], SOURCE_DEFAULT, NULL);
    }
}

void dsconfig_set_origin(struct ds_config *c, enum ds_setting id, enum setting_source source,
                         const char *key)
{
    CHECK((unsigned)id < DS_NSETTINGS);
    setting_origin_set(&c->origin[id], source, key);
}

void dsconfig_format(const struct ds_config *c, enum ds_setting id, char *buf, size_t n)
{
    CHECK((unsigned)id < DS_NSETTINGS);
    const struct setting_def *s = &settings[id];
    const void *p = (const char *)c + s->offset;
    switch (s->type) {
    case SET_BOOL:
        snprintf(buf, n, "%s", *(const int *)p ? "true" : "false");
        break;
    case SET_INT:
        snprintf(buf, n, "%lld", (long long)*(const int64_t *)p);
        break;
    case SET_NUM:
        snprintf(buf, n, "%.6g", *(const double *)p);
        break;
    case SET_PATH:
        snprintf(buf, n, "%s", *(const char *)p ? (const char *)p : "(none)");
        break;
    case SET_ENUM:
        snprintf(buf, n, "%s", s->names[*(const int *)p]);
        break;
    case SET_PAIR:
        CHECK(!"settings hold no pairs");
    }
}

void dsconfig_print(const struct ds_config *c, FILE *f)
{
    char value[DSCONFIG_PATH_MAX], from[160];
    for (int id = 0; id < DS_NSETTINGS; id++) {
        dsconfig_format(c, id, value, sizeof value);
        setting_origin_format(&c->origin[id], from, sizeof from);
        fprintf(f, "  %-52s %-14s %s\n", settings[id].name, value, from);
    }
    if (c->no_effect[0]) fprintf(f, "  recognised, no effect here: %s\n", c->no_effect);
}

/* The value as JSON text, cut short for messages. */
static void repr(const json_t *v, char *buf, size_t n)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    CHECK(s);
    if (strlen(s) > 40)
        snprintf(buf, n, "%.37s...", s);
    else
        snprintf(buf, n, "%s", s);
    free(s);
}

/* "expected <what>, got <value>", with a word on Hugging Face's "auto". */
static int type_error(struct ctx *x, const char *path, const char *what, const json_t *v)
{
    char got[64];
    repr(v, got, sizeof got);
    int is_auto = json_is_string(v) && strcmp(json_string_value(v), "auto") == 0;
    return fail(x, "%s: expected %s, got %s%s", path, what, got,
                is_auto ? " (\"auto\" is filled in by the Hugging Face Trainer; write the value)"
                        : "");
}

static void range_words(enum set_type t, double min, double max, char *buf, size_t n)
{
    const char *kind = t == SET_INT ? "an integer" : "a number";
    if (max >= BIG)
        snprintf(buf, n, "%s >= %.15g", kind, min);
    else
        snprintf(buf, n, "%s from %.15g to %.15g", kind, min, max);
}

static int get_bool(struct ctx *x, const json_t *v, const char *path, int *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    return type_error(x, path, "true or false", v);
}

static int get_num(struct ctx *x, const json_t *v, const char *path, enum set_type t, double min,
                   double max, double *out)
{
    char what[96];
    range_words(t, min, max, what, sizeof what);
    if (!json_is_number(v)) return type_error(x, path, what, v);
    double d = json_number_value(v);
    if (t == SET_INT && (d != floor(d) || fabs(d) > BIG)) return type_error(x, path, what, v);
    if (!(d >= min && d <= max)) return type_error(x, path, what, v);
    *out = d;
    return 0;
}

static int get_string(struct ctx *x, const json_t *v, const char *path, const char **out)
{
    if (!json_is_string(v)) return type_error(x, path, "a string", v);
    *out = json_string_value(v);
    return 0;
}

/* Index of s among names (case-insensitive, as DeepSpeed lowercases optimizer names), or -1. */
static int name_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (strcasecmp(names[i], s) == 0) return i;
    return -1;
}

static void names_words(const char *const *names, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; names[i] && len < n; i++)
        len += snprintf(buf + len, n - len, "%s%s",
                        i == 0         ? ""
                        : names[i + 1] ? ", "
                                       : " or ",
                        names[i]);
}

static int get_enum(struct ctx *x, const json_t *v, const char *path, const char *const *names,
                    int *out)
{
    char what[160], list[128];
    names_words(names, list, sizeof list);
    snprintf(what, sizeof what, "one of %s", list);
    if (!json_is_string(v) || (*out = name_index(names, json_string_value(v))) < 0)
        return type_error(x, path, what, v);
    return 0;
}

/* Marks a setting as set by the config at path; a second key setting it is an error. */
static int claim(struct ctx *x, enum ds_setting id, const char *path)
{
    struct setting_origin *o = &x->c->origin[id];
    if (o->source == SOURCE_CONFIG)
        return fail(x, "%s and %s both set %s: keep one", o->key, path, settings[id].name);
    setting_origin_set(o, SOURCE_CONFIG, path);
    return 0;
}

static int set_setting(struct ctx *x, enum ds_setting id, const json_t *v, const char *path)
{
    const struct setting_def *s = &settings[id];
    void *p = field(x->c, id);
    double d;
    const char *str = NULL;
    switch (s->type) {
    case SET_BOOL:
        if (get_bool(x, v, path, p)) return -1;
        break;
    case SET_INT:
        if (get_num(x, v, path, SET_INT, s->min, s->max, &d)) return -1;
        *(int64_t *)p = (int64_t)d;
        break;
    case SET_NUM:
        if (get_num(x, v, path, SET_NUM, s->min, s->max, &d)) return -1;
        *(double *)p = d;
        break;
    case SET_PATH:
        if (get_string(x, v, path, &str)) return -1;
        if (strlen(str) >= DSCONFIG_PATH_MAX)
            return fail(x, "%s: the path is longer than %d bytes: choose a shorter one", path,
                        DSCONFIG_PATH_MAX - 1);
        strcpy(p, str);
        break;
    case SET_ENUM:
        if (get_enum(x, v, path, s->names, p)) return -1;
        break;
    case SET_PAIR:
        CHECK(!"settings hold no pairs");
    }
    return claim(x, id, path);
}

static int set_special(struct ctx *x, enum special id, const json_t *v, const char *path)
{
    struct raw *r = &x->raw[id];
    if (r->present)
        return fail(x, "%s and %s both set %s: keep one", r->path, path, specials[id].name);
    switch (specials[id].type) {
    case SET_BOOL:
        if (get_bool(x, v, path, &r->b)) return -1;
        break;
    case SET_NUM:
        if (get_num(x, v, path, SET_NUM, 0, 1, &r->num)) return -1;
        break;
    case SET_PATH:
        if (get_string(x, v, path, &r->str)) return -1;
        break;
    case SET_PAIR:
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
            !json_is_number(json_array_get(v, 1)))
            return type_error(x, path, "two numbers [beta1, beta2]", v);
        for (int i = 0; i < 2; i++) {
            r->pair[i] = json_number_value(json_array_get(v, i));
            if (!(r->pair[i] >= 0 && r->pair[i] < 1))
                return type_error(x, path, "two numbers from 0 to below 1", v);
        }
        break;
    default:
        CHECK(!"no special of this type");
    }
    r->present = true;
    snprintf(r->path, sizeof r->path, "%s", path);
    return 0;
}

/* Levenshtein distance of a and b, ignoring case; O(|a| |b|), names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof *row);
    CHECK(row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub =
                diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = sub < up + 1 ? sub : up + 1;
            row[j] = best < row[j - 1] + 1 ? best : row[j - 1] + 1;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

static void join(char *buf, size_t n, const char *prefix, const char *key)
{
    snprintf(buf, n, "%s%s%s", prefix, prefix[0] ? "." : "", key);
}

static int unknown_key(struct ctx *x, const struct key_def *level, const char *prefix,
                       const char *key, const char *path)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const struct key_def *k = level; k->name; k++) {
        size_t d = edit_distance(key, k->name);
        if (d < best_d) {
            best_d = d;
            best = k->name;
        }
    }
    char near[160];
    join(near, sizeof near, prefix, best ? best : "(none)"); /* a level without keys */
    size_t close = strlen(key) / 3 > 2 ? strlen(key) / 3 : 2;
    char hint[200];
    snprintf(hint, sizeof hint, best_d <= close ? "did you mean %s?" : "nearest known key: %s",
             near);
    if (x->strict) return fail(x, "unknown key %s (%s)", path, hint);
    warnf(x, "unknown key %s ignored (%s)", path, hint);
    return 0;
}

static void note_no_effect(struct ctx *x, const char *path)
{
    char *list = x->c->no_effect;
    size_t len = strlen(list), cap = sizeof x->c->no_effect;
    if (len >= 3 && strcmp(list + len - 3, "...") == 0) return;
    int n = snprintf(list + len, cap - len, "%s%s", len ? ", " : "", path);
    if (n < 0 || (size_t)n >= cap - len) strcpy(list + cap - 4, "...");
}

static int walk(struct ctx *x, const json_t *obj, const struct key_def *level, const char *prefix)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[128];
        join(path, sizeof path, prefix, key);
        const struct key_def *k = level;
        while (k->name && strcmp(k->name, key) != 0)
            k++;
        if (!k->name) {
            if (unknown_key(x, level, prefix, key, path)) return -1;
            continue;
        }
        if (k->kind == KEY_NO_EFFECT) {
            note_no_effect(x, path);
            continue;
        }
        if (json_is_null(v)) continue; /* DeepSpeed reads null as "use the default" */
        switch (k->kind) {
        case KEY_OBJECT:
            if (!json_is_object(v)) return type_error(x, path, "an object {...}", v);
            x->seen[k->id] = true;
            if (walk(x, v, k->children, path)) return -1;
            break;
        case KEY_SETTING:
            if (set_setting(x, k->id, v, path)) return -1;
            break;
        case KEY_SPECIAL:
            if (set_special(x, k->id, v, path)) return -1;
            break;
        case KEY_NO_EFFECT:
            break;
        }
    }
    return 0;
}

static void copy_path(struct ds_config *c, enum ds_setting id, const char *path)
{
    snprintf(field(c, id), DSCONFIG_PATH_MAX, "%s", path);
}

static int resolve_precision(struct ctx *x)
{
    struct ds_config *c = x->c;
    const struct raw *f16 = &x->raw[SP_FP16_ENABLED], *b16 = &x->raw[SP_BF16_ENABLED];
    bool fp16 = f16->present && f16->b, bf16 = b16->present && b16->b;
    if (fp16 && bf16)
        return fail(x, "%s and %s are both true: choose one precision", f16->path, b16->path);
    if (fp16 || bf16 || f16->present || b16->present) {
        c->precision = fp16 ? DTYPE_FP16 : bf16 ? DTYPE_BF16 : DTYPE_FP32;
        if (claim(x, DS_PRECISION, bf16 || !f16->present ? b16->path : f16->path)) return -1;
    }
    if (c->precision == DTYPE_FP16) return 0;
    char keys[256] = "";
    size_t len = 0;
    for (int id = DS_LOSS_SCALE; id <= DS_MIN_LOSS_SCALE; id++)
        if (c->origin[id].source == SOURCE_CONFIG && len < sizeof keys)
            len +=
                snprintf(keys + len, sizeof keys - len, "%s%s", len ? ", " : "", c->origin[id].key);
    if (len) warnf(x, "%s: no effect, fp16.enabled is not true", keys);
    return 0;
}

static int resolve_optimizer(struct ctx *x)
{
    struct ds_config *c = x->c;
    const struct raw *type = &x->raw[SP_OPTIMIZER_TYPE];
    if (x->seen[OBJ_OPTIMIZER] && !type->present)
        return fail(x, "optimizer.type is missing: write \"type\": \"AdamW\" (or \"Adam\")");
    if (type->present) {
        int i = name_index(optimizer_names, type->str);
        if (i < 0)
            return fail(x, "%s: optimizer %s is not implemented here: use Adam or AdamW",
                        type->path, type->str);
        c->optimizer = i;
        if (claim(x, DS_OPTIMIZER, type->path)) return -1;
    }
    const struct raw *mode = &x->raw[SP_ADAM_W_MODE], *bias = &x->raw[SP_BIAS_CORRECTION];
    if (mode->present && !mode->b)
        return fail(x,
                    "%s false (Adam with L2 regularisation) is not implemented here: remove it "
                    "to get AdamW",
                    mode->path);
    if (bias->present && !bias->b)
        return fail(x, "%s false is not implemented here: remove it", bias->path);
    const struct raw *betas = &x->raw[SP_BETAS];
    if (betas->present) {
        c->beta1 = betas->pair[0];
        c->beta2 = betas->pair[1];
        if (claim(x, DS_BETA1, betas->path) || claim(x, DS_BETA2, betas->path)) return -1;
    }
    return 0;
}

static int resolve_scheduler(struct ctx *x)
{
    struct ds_config *c = x->c;
    const struct raw *type = &x->raw[SP_SCHEDULER_TYPE];
    if (x->seen[OBJ_SCHEDULER] && !type->present)
        return fail(x, "scheduler.type is missing: choose WarmupLR, WarmupDecayLR or "
                       "WarmupCosineLR");
    if (!type->present) return 0;
    int t = name_index(scheduler_names, type->str);
    if (t <= DS_SCHEDULER_NONE)
        return fail(x,
                    "%s: scheduler %s is not implemented here: choose WarmupLR, "
                    "WarmupDecayLR or WarmupCosineLR",
                    type->path, type->str);
    c->scheduler = t;
    if (claim(x, DS_SCHEDULER, type->path)) return -1;
    /* DeepSpeed passes params as keyword arguments: one the class lacks is a TypeError there. */
    enum { LR = 1 << DS_SCHEDULER_WARMUP_LR, DECAY = 1 << DS_SCHEDULER_WARMUP_DECAY_LR };
    enum { COS = 1 << DS_SCHEDULER_WARMUP_COSINE_LR };
    static const struct {
        enum ds_setting id;
        unsigned types;
    } takes[] = {
        {DS_WARMUP_MIN_LR, LR | DECAY},
        {DS_WARMUP_MAX_LR, LR | DECAY},
        {DS_WARMUP_NUM_STEPS, LR | DECAY | COS},
        {DS_WARMUP_TYPE, LR | DECAY | COS},
        {DS_TOTAL_NUM_STEPS, DECAY | COS},
        {DS_WARMUP_MIN_RATIO, COS},
        {DS_COS_MIN_RATIO, COS},
    };
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++)
        if (c->origin[takes[i].id].source == SOURCE_CONFIG && !(takes[i].types & (1u << t)))
            return fail(x, "%s: %s takes no such parameter: remove it", c->origin[takes[i].id].key,
                        scheduler_names[t]);
    if ((t == DS_SCHEDULER_WARMUP_DECAY_LR || t == DS_SCHEDULER_WARMUP_COSINE_LR) &&
        c->origin[DS_TOTAL_NUM_STEPS].source != SOURCE_CONFIG)
        return fail(x, "scheduler.params.total_num_steps is missing: %s needs it",
                    scheduler_names[t]);
    return 0;
}

/* The 2021 switches: cpu_offload(_params) offload to RAM, swap_tensor moves that to NVMe. */
static int resolve_offload_device(struct ctx *x, enum ds_setting id, enum special cpu,
                                  enum special swap)
{
    const struct raw *rc = &x->raw[cpu], *rs = &x->raw[swap];
    enum tier *dev = field(x->c, id);
    if (rs->present && rs->b) {
        if (!rc->present || !rc->b)
            return fail(x, "%s true needs %s true: NVMe swapping moves the CPU-offloaded state",
                        rs->path, specials[cpu].name);
        *dev = TIER_NVME;
        char both[128];
        snprintf(both, sizeof both, "%s + %s", rc->path, rs->path);
        return claim(x, id, both);
    }
    if (!rc->present) return 0;
    *dev = rc->b ? TIER_CPU : TIER_GPU;
    return claim(x, id, rc->path);
}

static int resolve_offload(struct ctx *x)
{
    struct ds_config *c = x->c;
    if (resolve_offload_device(x, DS_OPTIM_DEVICE, SP_CPU_OFFLOAD, SP_SWAP_OPTIMIZER) ||
        resolve_offload_device(x, DS_PARAM_DEVICE, SP_CPU_OFFLOAD_PARAMS, SP_SWAP_FP16_PARAMS))
        return -1;
    const struct raw *pin = &x->raw[SP_CPU_OFFLOAD_PIN], *folder = &x->raw[SP_SWAP_FOLDER];
    if (pin->present) {
        c->param_pin_memory = c->optim_pin_memory = pin->b;
        if (claim(x, DS_PARAM_PIN_MEMORY, pin->path) || claim(x, DS_OPTIM_PIN_MEMORY, pin->path))
            return -1;
    }
    if (folder->present) {
        if (strlen(folder->str) >= DSCONFIG_PATH_MAX)
            return fail(x, "%s: the path is longer than %d bytes: choose a shorter one",
                        folder->path, DSCONFIG_PATH_MAX - 1);
        copy_path(c, DS_PARAM_NVME_PATH, folder->str);
        copy_path(c, DS_OPTIM_NVME_PATH, folder->str);
        if (claim(x, DS_PARAM_NVME_PATH, folder->path) ||
            claim(x, DS_OPTIM_NVME_PATH, folder->path))
            return -1;
    }
    /* swap_tensor's own defaults differ from offload_optimizer/offload_param's. */
    if (x->seen[OBJ_SWAP_TENSOR]) {
        if (c->origin[DS_OPTIM_BUFFER_COUNT].source == SOURCE_DEFAULT) {
            c->optim_buffer_count = 10;
            setting_origin_set(&c->origin[DS_OPTIM_BUFFER_COUNT], SOURCE_DEFAULT, "(2021 schema)");
        }
        if (c->origin[DS_PARAM_BUFFER_SIZE].source == SOURCE_DEFAULT) {
            c->param_buffer_size = 10000000;
            setting_origin_set(&c->origin[DS_PARAM_BUFFER_SIZE], SOURCE_DEFAULT, "(2021 schema)");
        }
    }
    const struct raw *ratio = &x->raw[SP_OFFLOAD_RATIO], *gds = &x->raw[SP_USE_GDS];
    if (ratio->present && ratio->num < 1)
        return fail(x,
                    "%s %g: partial optimizer offload (ratio below 1) is not implemented here: "
                    "remove it",
                    ratio->path, ratio->num);
    if (gds->present && gds->b)
        return fail(x, "%s true: GPUDirect Storage is not implemented here: set it false",
                    gds->path);
    static const struct {
        enum ds_setting device, path;
        const char *what, *key2021;
    } nvme[] = {
        {DS_PARAM_DEVICE, DS_PARAM_NVME_PATH, "parameters", "swap_tensor.folder"},
        {DS_OPTIM_DEVICE, DS_OPTIM_NVME_PATH, "optimizer state", "swap_tensor.folder"},
    };
    for (int i = 0; i < 2; i++)
        if (*(int *)field(c, nvme[i].device) == TIER_NVME && !*(char *)field(c, nvme[i].path))
            return fail(x, "%s puts the %s on NVMe but names no folder: add %s (2021 schema: %s)",
                        c->origin[nvme[i].device].key, nvme[i].what, settings[nvme[i].path].name,
                        nvme[i].key2021);
    if (c->param_device != TIER_GPU && c->zero_stage < 3)
        return fail(x,
                    "%s offloads parameters, which needs zero_optimization.stage 3 (it is "
                    "%lld)",
                    c->origin[DS_PARAM_DEVICE].key, (long long)c->zero_stage);
    if (c->optim_device != TIER_GPU && c->zero_stage < 1)
        return fail(x,
                    "%s offloads the optimizer, which needs zero_optimization.stage 1 to 3 "
                    "(it is 0)",
                    c->origin[DS_OPTIM_DEVICE].key);
    return 0;
}

static int parse_root(struct ds_config *out, const json_t *root, const char *name, int strict,
                      FILE *warn, char *err, size_t errlen)
{
    struct ctx x = {.c = out,
                    .name = name,
                    .strict = strict,
                    .warn = warn ? warn : stderr,
                    .err = err,
                    .errlen = errlen};
    if (!json_is_object(root))
        return type_error(&x, "the top level", "an object {...} of DeepSpeed settings", root);
    if (walk(&x, root, top_keys, "") || resolve_precision(&x) || resolve_optimizer(&x) ||
        resolve_scheduler(&x) || resolve_offload(&x))
        return -1;
    if (out->no_effect[0])
        fprintf(x.warn, "note: %s: recognised, no effect here: %s\n", name, out->no_effect);
    return 0;
}

int dsconfig_parse(struct ds_config *out, const char *text, const char *name, int strict,
                   FILE *warn, char *err, size_t errlen)
{
    dsconfig_init(out);
    snprintf(out->file, sizeof out->file, "%s", name);
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", name, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = parse_root(out, root, name, strict, warn, err, errlen);
    json_decref(root);
    return rc;
}

int dsconfig_load(struct ds_config *out, const char *path, int strict, char *err, size_t errlen)
{
    dsconfig_init(out);
    snprintf(out->file, sizeof out->file, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the DeepSpeed config: %s", path, strerror(errno));
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = parse_root(out, root, path, strict, NULL, err, errlen);
    json_decref(root);
    return rc;
}

/* "config" for the file's own keys (the name says which), else the whole origin. */
static void origin_words(const struct setting_origin *o, char *buf, size_t n)
{
    if (o->source == SOURCE_CONFIG)
        snprintf(buf, n, "config");
    else
        setting_origin_format(o, buf, n);
}

int dsconfig_resolve_batch(struct ds_config *c, int world_size, char *err, size_t errlen)
{
    CHECK(world_size >= 1);
    struct setting_origin *otb = &c->origin[DS_TRAIN_BATCH_SIZE], *omb = &c->origin[DS_MICRO_BATCH],
                          *oga = &c->origin[DS_GRAD_ACCUM];
    bool tb = c->train_batch_size > 0, mb = omb->source != SOURCE_DEFAULT,
         ga = oga->source != SOURCE_DEFAULT;
    char wtb[160], wmb[160], wga[160];
    origin_words(otb, wtb, sizeof wtb);
    origin_words(omb, wmb, sizeof wmb);
    origin_words(oga, wga, sizeof wga);
    int64_t tbs = c->train_batch_size, ws = world_size;
    if (!tb) {
        c->train_batch_size = c->micro_batch * c->grad_accum * ws;
        setting_origin_set(otb, omb->source, "(micro-batch x accumulation x world size)");
        return 0;
    }
    if (mb && ga) {
        if (tbs == c->micro_batch * c->grad_accum * ws) return 0;
        snprintf(err, errlen,
                 "%s: train_batch_size %lld (%s) is not train_micro_batch_size_per_gpu %lld (%s) x "
                 "gradient_accumulation_steps %lld (%s) x world size %lld = %lld: make them agree",
                 c->file, (long long)tbs, wtb, (long long)c->micro_batch, wmb,
                 (long long)c->grad_accum, wga, (long long)ws,
                 (long long)(c->micro_batch * c->grad_accum * ws));
        return -1;
    }
    /* Derive the missing one (grad_accum 1 when only the total is given). */
    int64_t known = mb ? c->micro_batch : c->grad_accum, div = known * ws;
    if (tbs % div != 0) {
        snprintf(err, errlen,
                 "%s: train_batch_size %lld (%s) is not divisible by %s %lld (%s) x world size "
                 "%lld: make them agree",
                 c->file, (long long)tbs, wtb,
                 mb ? "train_micro_batch_size_per_gpu" : "gradient_accumulation_steps",
                 (long long)known, mb ? wmb : wga, (long long)ws);
        return -1;
    }
    if (mb) {
        c->grad_accum = tbs / div;
        setting_origin_set(oga, otb->source, "(train_batch_size / micro-batch / world size)");
    } else {
        c->micro_batch = tbs / div;
        setting_origin_set(omb, otb->source, "(train_batch_size / accumulation / world size)");
    }
    return 0;
}
