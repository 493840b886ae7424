/* settings.h: the run's settings, resolved once from the flags, the DeepSpeed config and the
 * preset, each with where it came from (flag, config key, preset, default).
 *
 * One path feeds both consumers: settings_resolve() turns the parsed flags and the loaded
 * DeepSpeed config into a struct settings; settings_plan_input() gives the memory plan its
 * inputs (plan.h), and the program (apps/) gives the engine its options (gpt.h, rt.h) from the
 * same struct. No StarPU here: every rule can be checked by a test alone.
 *
 * Precedence, lowest first:
 *   1. the built-in default;
 *   2. flags given before the last --preset;
 *   3. the preset (tiny when none is given);
 *   4. the DeepSpeed config, key by key (only the keys it gives);
 *   5. flags given after the last --preset.
 * So "--preset gpt50b --micro-batch-size 2" trains micro-batch 2 whatever the config says, and
 * "--micro-batch-size 2 --preset gpt50b" trains the preset's (or the config's) micro-batch. Then
 * the launch: the world is the processes x --num-gpus ranks unless --world-size says otherwise
 * (only a dry run may plan another), --global-batch-size sets the accumulation, and the config's
 * train_batch_size must agree with the batch (dsconfig_resolve_batch).
 *
 *     struct settings_flags f;
 *     settings_flags_init(&f);
 *     f.value.B = 8;                                          // --micro-batch-size 8
 *     settings_flags_mark(&f, SETTING_MICRO_BATCH, "--micro-batch-size", 3);
 *     struct settings s;
 *     if (settings_resolve(&s, &f, &ds, processes, processes_on_node, err, sizeof err) != 0)
 *         user_fail("%s", err);
 *     struct gpt_config cfg = settings_model(&s);             // the shape, Vp padded
 *     settings_plan_input(&s, swap_unit, &in);                // then capacities, plan_compute
 */
#ifndef GPT50B_SETTINGS_H
#define GPT50B_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dsconfig.h"
#include "dtype.h"
#include "model.h"
#include "plan.h"
#include "schedule.h"
#include "tier.h"

/* One id per setting, in the order of struct settings' fields: indexes origin[], and the flags'
 * marks. The model's shape comes first (SETTING_LAYERS .. SETTING_VOCAB). */
enum setting {
    SETTING_LAYERS,
    SETTING_HIDDEN,
    SETTING_HEADS,
    SETTING_SEQ_LENGTH,
    SETTING_MAX_POSITIONS,
    SETTING_VOCAB,
    SETTING_VOCAB_DIVISOR,
    SETTING_MICRO_BATCH,
    SETTING_GRAD_ACCUM,
    SETTING_GLOBAL_BATCH,
    SETTING_NUM_GPUS,
    SETTING_WORLD_SIZE,
    SETTING_RANKS_PER_NODE,
    SETTING_TRAIN_ITERS,
    SETTING_LR,
    SETTING_MIN_LR,
    SETTING_LR_DECAY_STYLE,
    SETTING_LR_DECAY_ITERS,
    SETTING_LR_WARMUP_FRACTION,
    SETTING_LR_WARMUP_ITERS,
    SETTING_WEIGHT_DECAY,
    SETTING_CLIP_GRAD,
    SETTING_ADAM_BETA1,
    SETTING_ADAM_BETA2,
    SETTING_ADAM_EPS,
    SETTING_SEED,
    SETTING_DTYPE,
    SETTING_LOSS_SCALE,
    SETTING_INITIAL_LOSS_SCALE,
    SETTING_MIN_LOSS_SCALE,
    SETTING_LOSS_SCALE_WINDOW,
    SETTING_HYSTERESIS,
    SETTING_CHECKPOINTING,
    SETTING_CKPT_IN_CPU,
    SETTING_TILE_SIZE,
    SETTING_OPTIM_TIER,
    SETTING_GRADS_TIER,
    SETTING_PARAM_OFFLOAD,
    SETTING_NVME_PATH,
    SETTING_SWAP_BUFFERS,
    SETTING_RESIDENT_FRACTION,
    SETTING_OPTIM_CHUNK,
    SETTING_DELAYED_UPDATE,
    SETTING_PIN_PARAMS,
    SETTING_PIN_OPTIM,
    SETTING_PARAM_BUFFER_COUNT,
    SETTING_PARAM_BUFFER_SIZE,
    SETTING_SUB_GROUP_SIZE,
    SETTING_PREFETCH,
    SETTING_MAX_LIVE_PARAMETERS,
    SETTING_AIO_BLOCK_SIZE,
    SETTING_AIO_QUEUE_DEPTH,
    SETTING_AIO_THREADS,
    SETTING_AIO_SINGLE_SUBMIT,
    SETTING_AIO_OVERLAP_EVENTS,
    SETTING_DATA_PATH,
    SETTING_SPLIT,
    SETTING_DATA_SHUFFLE,
    SETTING_LOAD,
    SETTING_SAVE,
    SETTING_SAVE_INTERVAL,
    SETTING_SAVE_OPTIM,
    SETTING_LOG_INTERVAL,
    SETTING_EVAL_INTERVAL,
    SETTING_EVAL_ITERS,
    SETTING_METRICS,
    SETTING_TRACE,
    SETTING_DRY_RUN,
    SETTING_MACHINE,
    SETTING_N
};

/* --nvme-resident-fraction auto: the share at which the disk and the CPU AdamW balance at this
 * host's rates measured at start (probe.h), or --machine's (plan_balance_share), RAM permitting. */
#define SETTINGS_RESIDENT_AUTO (-2.0)

struct settings {
    /* the model, gpt.h's legend */
    int L, C, NH, T, maxT, V;
    int vocab_divisor; /* --make-vocab-size-divisible-by */

    /* batch and data parallelism */
    int B;                /* micro-batch of each rank */
    int grad_accum;       /* micro-batches per optimizer step */
    int64_t global_batch; /* --global-batch-size, which sets grad_accum; 0: not given */
    int num_gpus;         /* ZeRO-3 ranks in this process */
    int world_size;       /* ranks in all processes */
    int ranks_per_node;   /* 0: the launch's, or in a plan of one process at most 8 */

    /* optimisation */
    int64_t iters; /* iterations in all, counting a resumed run's */
    double lr, min_lr;
    enum lr_decay_style lr_decay_style;
    int64_t lr_decay_iters;    /* 0: iters */
    double lr_warmup_fraction; /* of the decay iterations */
    int64_t lr_warmup_iters;   /* -1: from lr_warmup_fraction */
    double weight_decay, clip_grad, beta1, beta2, eps;
    uint64_t seed;

    /* precision */
    enum dtype dt;
    double loss_scale; /* fp16: 0 dynamic, else static */
    double initial_loss_scale, min_loss_scale;
    int64_t loss_scale_window;
    int hysteresis;

    /* memory: where each kind of tensor lives */
    int checkpointing; /* keep each layer's input only, recompute the layer in backward */
    int ckpt_in_cpu;   /* the checkpoints live in pinned CPU memory */
    int tile_size;     /* output channels per linear task, 0: whole */
    enum tier optim_tier;
    enum tier grads_tier; /* follows optim_tier: GPU, else CPU (offloaded AdamW reads them
                             there); its origin is the config's offload_optimizer key alone */
    int param_offload;    /* dt parameters in pinned CPU memory */
    const char *nvme_path;
    int swap_buffers;         /* optimizer swap buffer sets */
    double resident_fraction; /* share of NVMe optimizer state kept in RAM, -1: the plan's,
                                 SETTINGS_RESIDENT_AUTO: the balance of measured rates */
    int64_t optim_chunk;      /* elements per CPU AdamW task */
    int delayed_update;       /* ZeRO-Offload's delayed parameter update (gpt.h) */

    /* DeepSpeed config keys without a flag (DeepSpeed's defaults otherwise) */
    int pin_params, pin_optim;
    int param_buffer_count;
    int64_t param_buffer_size, prefetch;
    int64_t sub_group_size; /* its origin is the plan's sub-group line's; the value is not used:
                               the engine swaps tensor shards (settings_note_config says so) */
    int64_t max_live_parameters; /* 0: the engine's 2 layers */
    struct {
        int64_t block_size, queue_depth, threads; /* -1: the I/O engine's default */
        int single_submit, overlap_events;        /* -1: the I/O engine's default */
    } aio;

    /* data */
    const char *data_path;
    double split[3];  /* train, validation, test weights */
    int data_shuffle; /* --data-order shuffle; 0: sequential, llm.c's order */

    /* checkpoints and logs */
    const char *load, *save, *metrics;
    int save_optim; /* 0: --no-save-optim */
    int64_t save_interval, log_interval, eval_interval, eval_iters;

    /* what to run */
    struct {
        int64_t first, last; /* iterations recorded by FxT; 0: all or none */
    } trace;
    int dry_run;
    /* --machine NAME|PATH: the described machine (runtime/formats/machine.h) a dry run plans for
     * and the simulation build simulates; NULL: this one */
    const char *machine;

    /* Strings point into argv and into the ds_config given to settings_resolve, which must
     * outlive these settings. */
    struct setting_origin origin[SETTING_N];
    /* The shape as a whole, as the plan shows it: the origin of the last of its settings set. */
    struct setting_origin model_origin;
};

/* The command line as parsed: each flag's value in `value`, and for each setting the flag that
 * set it last (value.origin[id]) and where (pos[id], the argv index after it; 0: no flag). */
struct settings_flags {
    struct settings value;
    int pos[SETTING_N];
    const char *preset; /* the last --preset, "tiny" when none */
    int preset_pos;     /* the argv index after it; 0: none given */
};

/* The storage of setting id in s and its size: for code that handles settings by id (the
 * flags' parser). */
void *settings_field(struct settings *s, enum setting id, size_t *size);

/* No flag given, preset tiny. */
void settings_flags_init(struct settings_flags *f);
/* Records that `flag` (e.g. "--micro-batch-size"), ending before argv[pos], set setting id, whose
 * value the caller wrote into f->value. */
void settings_flags_mark(struct settings_flags *f, enum setting id, const char *flag, int pos);
/* Whether name is a preset: tiny, gpt2-124m, sc21-small, gpt50b. */
int settings_preset_exists(const char *name);

/* The settings of a run launched as `processes` processes, processes_on_node of them on this
 * node (<= 0: unknown), from the flags and the DeepSpeed config `ds` (dsconfig_init's when none
 * was given). Returns 0, or -1 with one line in err when the flags disagree with the launch or
 * the config's train_batch_size with the batch. Everything else about the values is checked
 * where they are used. O(number of settings). */
int settings_resolve(struct settings *s, const struct settings_flags *f, const struct ds_config *ds,
                     int processes, int processes_on_node, char *err, size_t errlen);

/* The model's shape (model.h), the vocabulary padded to a multiple of vocab_divisor. */
struct gpt_config settings_model(const struct settings *s);
/* The learning-rate schedule: decay over lr_decay_iters (or all iterations), warmup over
 * lr_warmup_iters (or the fraction of the decay). */
struct lr_schedule settings_lr_schedule(const struct settings *s);
/* fp16: dynamic scaling from initial_loss_scale unless loss_scale is given; else a scale of 1. */
void settings_loss_scaler(const struct settings *s, struct loss_scaler *scaler);

/* The memory plan's inputs, each knob with its setting's origin; swap_unit: the elements the
 * engine swaps at once (a rank's shard of the largest tensor). Capacities are left unknown: the
 * caller measures them (plan_capacity_*). */
void settings_plan_input(const struct settings *s, int64_t swap_unit, struct plan_input *in);

/* One "note: PATH: read but without effect in this version: ..." line naming the keys of the
 * config at path that this version reads but does not act on, with why for the world_size ranks
 * planned; nothing when there are none. */
void settings_note_config(const struct settings *s, const struct ds_config *ds, const char *path,
                          FILE *f);

#endif
