/* dsconfig.h: reads a DeepSpeed JSON config into plain settings, each with where it came from.
 *
 * Both spellings DeepSpeed has used are read: the 2021 one of the SC21 run (zero_optimization
 * cpu_offload / cpu_offload_params / cpu_offload_use_pin_memory, swap_tensor {folder, optimizer,
 * fp16_params, optimizer_buffer_count, ...}, aio.thread_count) and the current one
 * (zero_optimization.offload_param / offload_optimizer {device, nvme_path, ...},
 * aio.intra_op_parallelism). Both resolve to the same fields, so a setting has one name here
 * whatever the file said: the current-schema key path (dsconfig_name()).
 *
 * Every key of the file is accounted for. A key either sets a field, or is one DeepSpeed has that
 * does nothing in this program (overlap_comm, reduce_bucket_size, wall_clock_breakdown, ...):
 * those are listed on one "recognised, no effect here" note line, never dropped silently. An
 * unknown key is a warning naming its path and the nearest known key at its level (Levenshtein
 * distance, ignoring case), or an error in strict mode.
 *
 * Types: integers may be written as integral floats (1e8, 5e7, 100000000.0), as DeepSpeed accepts;
 * 1.5 or a string where a number belongs is an error. Booleans are true/false, and also 0/1 as
 * Python's truthiness reads them (DeepSpeed passes them through to `if`); any other number and
 * any string ("true", "auto") is an error, because Python would read "false" as true. A null
 * value keeps the default, as DeepSpeed's get_scalar_param does.
 *
 * Errors (return -1, the message in err, one line naming the file and key path; the caller exits
 * 2): a missing or unreadable file, invalid JSON (with jansson's line and column), a wrong type
 * or an out-of-range value, two keys setting the same field (e.g. cpu_offload and
 * offload_optimizer, thread_count and intra_op_parallelism), fp16 and bf16 both enabled, an NVMe
 * offload without a folder, features DeepSpeed has and this program lacks (optimizers other than
 * Adam/AdamW, adam_w_mode false, offload_optimizer.ratio below 1, aio.use_gds), and with
 * dsconfig_resolve_batch() a train_batch_size that is not micro-batch x accumulation x ranks.
 *
 *     struct ds_config ds;
 *     char err[DSCONFIG_ERR_SIZE];
 *     if (dsconfig_load(&ds, "ds_zero3_sc21.json", 0, err, sizeof err) != 0)
 *         user_fail("%s", err);
 *     if (flag_given) {                          // a flag overrides the config, and says so
 *         ds.micro_batch = 4;
 *         dsconfig_set_origin(&ds, DS_MICRO_BATCH, SOURCE_FLAG, "--micro-batch-size");
 *     }
 *     if (dsconfig_resolve_batch(&ds, world_size, err, sizeof err) != 0)
 *         user_fail("%s", err);
 *     dsconfig_print(&ds, stdout);               // every setting, its value and its source
 */
#ifndef GPT50B_DSCONFIG_H
#define GPT50B_DSCONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtype.h"
#include "tier.h"

/* Enough for any message dsconfig writes into err (long paths are cut short). */
#define DSCONFIG_ERR_SIZE 512
/* Longest NVMe folder accepted, terminating zero included. */
#define DSCONFIG_PATH_MAX 512

/* Where a setting's value came from, in increasing precedence as the program applies them. */
enum setting_source {
    SOURCE_DEFAULT, /* built in (DeepSpeed's default where it has one) */
    SOURCE_PRESET,  /* a --preset of the program */
    SOURCE_CONFIG,  /* the DeepSpeed JSON config */
    SOURCE_FLAG,    /* a command-line flag */
    SOURCE_ENV,     /* an environment variable */
};

/* The source and its detail: the JSON key path (several joined by " + " when a 2021 setting
 * needs two keys), the flag, the variable, the preset's name, or for a default an optional note.
 */
struct setting_origin {
    enum setting_source source;
    char key[128];
};

/* "default", "preset", "config", "flag", "env" */
const char *setting_source_name(enum setting_source s);
/* "config zero_optimization.cpu_offload", "env STARPU_LIMIT_CUDA_MEM", "default". */
void setting_origin_format(const struct setting_origin *o, char *buf, size_t n);
/* Sets an origin; key may be NULL or "" (no detail). */
void setting_origin_set(struct setting_origin *o, enum setting_source source, const char *key);

/* Both run decoupled weight decay: DeepSpeed's Adam defaults to adam_w_mode true. */
enum ds_optimizer {
    DS_OPTIMIZER_ADAM,
    DS_OPTIMIZER_ADAMW,
};

enum ds_scheduler {
    DS_SCHEDULER_NONE,
    DS_SCHEDULER_WARMUP_LR,        /* warmup from warmup_min_lr to warmup_max_lr, then constant */
    DS_SCHEDULER_WARMUP_DECAY_LR,  /* the same, then linear decay to 0 at total_num_steps */
    DS_SCHEDULER_WARMUP_COSINE_LR, /* warmup as a ratio of the optimizer's lr, then cosine */
};

enum ds_warmup_type {
    DS_WARMUP_LOG,
    DS_WARMUP_LINEAR,
};

/* One id per setting; indexes ds_config.origin and the name/format functions. */
enum ds_setting {
    DS_TRAIN_BATCH_SIZE,
    DS_MICRO_BATCH,
    DS_GRAD_ACCUM,
    DS_GRAD_CLIP,
    DS_PRECISION,
    DS_LOSS_SCALE,
    DS_INITIAL_SCALE_POWER,
    DS_LOSS_SCALE_WINDOW,
    DS_HYSTERESIS,
    DS_MIN_LOSS_SCALE,
    DS_OPTIMIZER,
    DS_LR,
    DS_BETA1,
    DS_BETA2,
    DS_EPS,
    DS_WEIGHT_DECAY,
    DS_SCHEDULER,
    DS_WARMUP_MIN_LR,
    DS_WARMUP_MAX_LR,
    DS_WARMUP_NUM_STEPS,
    DS_WARMUP_TYPE,
    DS_TOTAL_NUM_STEPS,
    DS_WARMUP_MIN_RATIO,
    DS_COS_MIN_RATIO,
    DS_CPU_CHECKPOINTING,
    DS_ZERO_STAGE,
    DS_PARAM_DEVICE,
    DS_PARAM_PIN_MEMORY,
    DS_PARAM_NVME_PATH,
    DS_PARAM_BUFFER_COUNT,
    DS_PARAM_BUFFER_SIZE,
    DS_OPTIM_DEVICE,
    DS_OPTIM_PIN_MEMORY,
    DS_OPTIM_NVME_PATH,
    DS_OPTIM_BUFFER_COUNT,
    DS_OPTIM_PIPELINE_READ,
    DS_OPTIM_PIPELINE_WRITE,
    DS_SUB_GROUP_SIZE,
    DS_PREFETCH_BUCKET_SIZE,
    DS_MAX_LIVE_PARAMETERS,
    DS_MAX_REUSE_DISTANCE,
    DS_PARAM_PERSISTENCE_THRESHOLD,
    DS_AIO_BLOCK_SIZE,
    DS_AIO_QUEUE_DEPTH,
    DS_AIO_THREADS,
    DS_AIO_SINGLE_SUBMIT,
    DS_AIO_OVERLAP_EVENTS,
    DS_NSETTINGS
};

/* The resolved settings. Sizes of buffers and buckets are in elements, as DeepSpeed counts them.
 * Booleans are 0/1. */
struct ds_config {
    char file[256]; /* the config's name in messages */

    int64_t train_batch_size; /* 0: not given (dsconfig_resolve_batch derives it) */
    int64_t micro_batch;      /* train_micro_batch_size_per_gpu */
    int64_t grad_accum;       /* gradient_accumulation_steps */
    double grad_clip;         /* gradient_clipping, 0: off */

    enum dtype precision;        /* fp16.enabled -> FP16, bf16.enabled -> BF16, else FP32 */
    double loss_scale;           /* fp16.loss_scale: 0 dynamic, else static */
    int64_t initial_scale_power; /* dynamic scaling starts at 2^power */
    int64_t loss_scale_window;
    int64_t hysteresis;
    double min_loss_scale;

    enum ds_optimizer optimizer;
    double lr, beta1, beta2, eps, weight_decay;

    enum ds_scheduler scheduler;
    double warmup_min_lr, warmup_max_lr;
    int64_t warmup_num_steps;
    enum ds_warmup_type warmup_type;
    int64_t total_num_steps; /* 0: not given */
    double warmup_min_ratio, cos_min_ratio;

    int cpu_checkpointing; /* activation_checkpointing.cpu_checkpointing: checkpoints in RAM */

    int64_t zero_stage;
    enum tier param_device;
    int param_pin_memory;
    char param_nvme_path[DSCONFIG_PATH_MAX]; /* "" when none */
    int64_t param_buffer_count, param_buffer_size;
    enum tier optim_device;
    int optim_pin_memory;
    char optim_nvme_path[DSCONFIG_PATH_MAX];
    int64_t optim_buffer_count;
    int optim_pipeline_read, optim_pipeline_write;
    int64_t sub_group_size;       /* elements of one optimizer step unit (swap unit on NVMe) */
    int64_t prefetch_bucket_size; /* stage3_prefetch_bucket_size */
    int64_t max_live_parameters;  /* stage3_max_live_parameters */
    int64_t max_reuse_distance;   /* stage3_max_reuse_distance */
    int64_t param_persistence_threshold; /* stage3_param_persistence_threshold */

    int64_t aio_block_size, aio_queue_depth;
    int64_t aio_threads; /* aio.intra_op_parallelism (2021: thread_count) */
    int aio_single_submit, aio_overlap_events;

    struct setting_origin origin[DS_NSETTINGS];
    /* Key paths recognised but without effect here, ", "-separated (cut short if very long). */
    char no_effect[1024];
    int nwarnings; /* unknown keys and other warnings of the last load */
};

/* Defaults (DeepSpeed's current ones; micro-batch 1), every origin SOURCE_DEFAULT. */
void dsconfig_init(struct ds_config *c);

/* Reads the JSON file at path. Warnings go to stderr as "warning: <path>: ..." lines and the
 * no-effect keys on one "note: <path>: recognised, no effect here: ..." line. strict: unknown
 * keys are errors. Returns 0, or -1 with a one-line message in err; *out is initialised either
 * way. O(size of the file). */
int dsconfig_load(struct ds_config *out, const char *path, int strict, char *err, size_t errlen);

/* The same from JSON text; `name` stands for the file in messages; warnings and the note go to
 * `warn` (stderr when NULL). */
int dsconfig_parse(struct ds_config *out, const char *text, const char *name, int strict,
                   FILE *warn, char *err, size_t errlen);

/* Completes and checks the batch settings for world_size data-parallel ranks, as DeepSpeed does:
 * two of train_batch_size, micro_batch, grad_accum given derive the third; train_batch_size
 * alone gives grad_accum 1. Call after flags have overridden fields. Returns 0, or -1 when
 * train_batch_size is not micro_batch x grad_accum x world_size (or not divisible), naming the
 * origin of each. */
int dsconfig_resolve_batch(struct ds_config *c, int world_size, char *err, size_t errlen);

/* Records that setting id now comes from `source` (key: flag name, variable, preset). */
void dsconfig_set_origin(struct ds_config *c, enum ds_setting id, enum setting_source source,
                         const char *key);

/* The setting's name: its current-schema key path, e.g. "zero_optimization.sub_group_size";
 * "precision" for fp16.enabled / bf16.enabled. */
const char *dsconfig_name(enum ds_setting id);
/* The value as text: "400000000", "0.00015", "true", "nvme", "fp16", "WarmupCosineLR". */
void dsconfig_format(const struct ds_config *c, enum ds_setting id, char *buf, size_t n);
/* One line per setting: name, value, origin; then the no-effect note when there is one. */
void dsconfig_print(const struct ds_config *c, FILE *f);

#endif
