/* gpt50b: trains a GPT-2 / Megatron GPT whose every operation is a StarPU task.
 *
 * Megatron-LM's flag names, presets from a CPU-sized "tiny" model to the SC21 50B run, Hugging
 * Face checkpoints, one Megatron-style log line per iteration and a JSON metrics line per
 * iteration. StarPU's environment variables (STARPU_SCHED, STARPU_NCPU, STARPU_NCUDA, ...) keep
 * their meaning. See docs/usage.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "comm.h"
#include "dataset.h"
#include "dsconfig.h"
#include "gpt.h"
#include "loader.h"
#include "plan.h"
#include "rt.h"
#include "schedule.h"
#include "swap.h"
#include "timer.h"

struct args {
    struct gpt_config cfg; /* Vp derived from V and vocab_divisor */
    int vocab_divisor;
    int B, T;
    int64_t iters;
    struct lr_schedule lr;
    double warmup_fraction;
    int64_t warmup_iters; /* -1: from warmup_fraction */
    int64_t decay_iters;  /* 0: train iters */
    double weight_decay, clip_grad, beta1, beta2, eps;
    enum dtype dt;
    int checkpointing;
    int tile_size; /* memory-centric tiling: max output channels per linear task, 0: off */
    uint64_t seed;
    const char *data_path, *load, *save, *metrics;
    int save_optim; /* 0: --no-save-optim, checkpoints hold the weights and config only */
    int64_t save_interval, log_interval, eval_interval, eval_iters;
    double split[3];
    enum data_order order;
    double loss_scale, initial_loss_scale, min_loss_scale;
    int64_t loss_scale_window;
    int hysteresis;
    enum tier optim_tier;
    const char *nvme_path;
    int swap_buffers;
    double resident_fraction; /* < 0: the plan's share */
    int param_offload;        /* fp16 parameters in pinned CPU memory (gpt_options.offload_param) */
    int ckpt_in_cpu;          /* activation checkpoints in pinned CPU memory */
    int64_t optim_chunk;      /* elements per CPU AdamW task */
    int grad_accum;
    struct aio_config aio;
    int world_size, ranks_per_node, dry_run;
    int num_gpus;                    /* ZeRO-3 ranks in this process (gpt_options.comm) */
    int64_t global_batch;            /* --global-batch-size: sets grad_accum (0: not given) */
    int64_t trace_first, trace_last; /* --trace: iterations recorded by FxT (0: all or none) */
    const char *ds_path;             /* --deepspeed_config */
    int strict_config;
    struct ds_config ds;
    struct setting_origin origin[PLAN_NKNOBS]; /* where the planned settings came from */
    unsigned model_flags; /* model-shape flags given explicitly, checked against --load */
};

enum model_flag { MF_LAYERS = 1, MF_HIDDEN = 2, MF_HEADS = 4, MF_MAXPOS = 8, MF_VOCAB = 16 };

struct preset {
    const char *name;
    int L, C, NH, T, maxT, B;
    enum dtype dt;
    int checkpointing;
    int64_t iters;
    double lr, min_lr, warmup_fraction, weight_decay;
    enum lr_decay_style style;
    int64_t eval_interval, eval_iters;
};

/* gpt2-124m follows llm.c's GPT-2 small run; sc21-small and gpt50b the SC21 scripts
 * (run_sc21_small_test.sh, run_sc21.sh): lr 1.5e-4 cosine to 1e-5, warmup 1%, weight decay 0.01,
 * fp16, activation checkpointing. */
static const struct preset presets[] = {
    {"tiny", 4, 128, 4, 128, 128, 4, DTYPE_FP32, 0, 100, 3e-3, 3e-4, 0.1, 0.1, LR_DECAY_COSINE, 50,
     5},
    {"gpt2-124m", 12, 768, 12, 1024, 1024, 4, DTYPE_BF16, 0, 1000, 6e-4, 6e-5, 0.01, 0.1,
     LR_DECAY_COSINE, 250, 10},
    {"sc21-small", 24, 1024, 32, 1024, 1024, 4, DTYPE_FP16, 1, 100, 1.5e-4, 1e-5, 0.01, 0.01,
     LR_DECAY_COSINE, 1000, 10},
    {"gpt50b", 62, 8192, 32, 1024, 1024, 4, DTYPE_FP16, 1, 100, 1.5e-4, 1e-5, 0.01, 0.01,
     LR_DECAY_COSINE, 1000, 10},
};

/* True when setting k was given in the DeepSpeed config; then records its origin in knob. */
static int from_config(struct args *a, enum ds_setting k, int knob)
{
    if (a->ds.origin[k].source != SOURCE_CONFIG) return 0;
    if (knob >= 0) a->origin[knob] = a->ds.origin[k];
    return 1;
}

/* The DeepSpeed config's values, over the defaults and the preset, under the flags. */
static void apply_ds_config(struct args *a)
{
    const struct ds_config *d = &a->ds;
    if (from_config(a, DS_MICRO_BATCH, PLAN_KNOB_MICRO_BATCH)) a->B = (int)d->micro_batch;
    if (from_config(a, DS_GRAD_ACCUM, PLAN_KNOB_GRAD_ACCUM)) a->grad_accum = (int)d->grad_accum;
    if (from_config(a, DS_GRAD_CLIP, -1)) a->clip_grad = d->grad_clip;
    if (from_config(a, DS_PRECISION, PLAN_KNOB_DTYPE)) a->dt = d->precision;
    if (from_config(a, DS_LOSS_SCALE, -1)) a->loss_scale = d->loss_scale;
    if (from_config(a, DS_INITIAL_SCALE_POWER, -1))
        a->initial_loss_scale = ldexp(1.0, (int)d->initial_scale_power);
    if (from_config(a, DS_LOSS_SCALE_WINDOW, -1)) a->loss_scale_window = d->loss_scale_window;
    if (from_config(a, DS_HYSTERESIS, -1)) a->hysteresis = (int)d->hysteresis;
    if (from_config(a, DS_MIN_LOSS_SCALE, -1)) a->min_loss_scale = d->min_loss_scale;
    if (from_config(a, DS_LR, -1)) a->lr.max_lr = d->lr;
    if (from_config(a, DS_BETA1, -1)) a->beta1 = d->beta1;
    if (from_config(a, DS_BETA2, -1)) a->beta2 = d->beta2;
    if (from_config(a, DS_EPS, -1)) a->eps = d->eps;
    if (from_config(a, DS_WEIGHT_DECAY, -1)) a->weight_decay = d->weight_decay;
    if (from_config(a, DS_SCHEDULER, -1)) {
        a->lr.style = d->scheduler == DS_SCHEDULER_WARMUP_LR          ? LR_DECAY_CONSTANT
                      : d->scheduler == DS_SCHEDULER_WARMUP_DECAY_LR  ? LR_DECAY_LINEAR
                      : d->scheduler == DS_SCHEDULER_WARMUP_COSINE_LR ? LR_DECAY_COSINE
                                                                      : a->lr.style;
        a->lr.min_lr =
            d->scheduler == DS_SCHEDULER_WARMUP_COSINE_LR ? d->cos_min_ratio * a->lr.max_lr : 0;
    }
    if (from_config(a, DS_WARMUP_MAX_LR, -1)) a->lr.max_lr = d->warmup_max_lr;
    if (from_config(a, DS_WARMUP_NUM_STEPS, -1)) a->warmup_iters = d->warmup_num_steps;
    if (from_config(a, DS_TOTAL_NUM_STEPS, -1)) a->decay_iters = d->total_num_steps;
    if (from_config(a, DS_OPTIM_DEVICE, PLAN_KNOB_TIER_OPTIM)) a->optim_tier = d->optim_device;
    if (from_config(a, DS_OPTIM_NVME_PATH, -1)) a->nvme_path = d->optim_nvme_path;
    if (from_config(a, DS_OPTIM_BUFFER_COUNT, PLAN_KNOB_OPTIM_BUFFERS))
        a->swap_buffers = (int)d->optim_buffer_count;
    if (from_config(a, DS_PARAM_DEVICE, PLAN_KNOB_TIER_PARAMS))
        a->param_offload = d->param_device != TIER_GPU;
    if (from_config(a, DS_CPU_CHECKPOINTING, PLAN_KNOB_CKPT_IN_CPU))
        a->ckpt_in_cpu = d->cpu_checkpointing;
    if (from_config(a, DS_AIO_BLOCK_SIZE, -1)) a->aio.block_size = (size_t)d->aio_block_size;
    if (from_config(a, DS_AIO_QUEUE_DEPTH, -1)) a->aio.queue_depth = (int)d->aio_queue_depth;
    if (from_config(a, DS_AIO_THREADS, -1)) a->aio.threads = (int)d->aio_threads;
    if (from_config(a, DS_AIO_SINGLE_SUBMIT, -1)) a->aio.single_submit = d->aio_single_submit;
    if (from_config(a, DS_AIO_OVERLAP_EVENTS, -1)) a->aio.overlap_events = d->aio_overlap_events;
}

/* Settings read from the config that this version does not act on, named in one line so that
 * nothing is silently ignored. Why depends on the ranks planned (--world-size in a dry run), not
 * on this process's. */
static void note_no_effect(const struct args *a)
{
    static const struct {
        enum ds_setting k;
        const char *one;  /* why, with one rank */
        const char *many; /* why, with several (after "N ranks: "); NULL: the same as one's */
    } later[] = {
        {DS_SUB_GROUP_SIZE, "the swap unit is one tensor",
         "the swap unit is a rank's shard of one tensor"},
        {DS_PREFETCH_BUCKET_SIZE, "one rank: nothing to gather",
         "the prefetch is each layer's all-gather, as far ahead as stage3_max_live_parameters "
         "allows"},
        {DS_MAX_LIVE_PARAMETERS, "one rank: nothing to gather", NULL},
        {DS_MAX_REUSE_DISTANCE, "one rank: nothing to gather",
         "the backward gathers every layer again"},
        {DS_PARAM_PERSISTENCE_THRESHOLD, "one rank: nothing to gather",
         "every tensor is gathered for each use, however small"},
        {DS_OPTIM_PIPELINE_READ, "swap-in is always pipelined", NULL},
        {DS_OPTIM_PIPELINE_WRITE, "swap-out is always pipelined", NULL},
        {DS_OPTIM_PIN_MEMORY, "swap buffers are page-aligned, not pinned", NULL},
        {DS_PARAM_PIN_MEMORY, "offloaded parameters are always pinned", NULL},
        {DS_PARAM_NVME_PATH, "parameters are offloaded to CPU memory, not NVMe", NULL},
        {DS_PARAM_BUFFER_COUNT, "parameters are offloaded to CPU memory, not NVMe", NULL},
        {DS_PARAM_BUFFER_SIZE, "parameters are offloaded to CPU memory, not NVMe", NULL},
        {DS_ZERO_STAGE, "one rank", "partitioned as ZeRO stage 3 whatever the setting"},
        {DS_WARMUP_MIN_LR, "warmup starts at lr/warmup_num_steps", NULL},
        {DS_WARMUP_TYPE, "warmup is linear", NULL},
        {DS_WARMUP_MIN_RATIO, "warmup starts at lr/warmup_num_steps", NULL},
    };
    char line[2048] = "";
    size_t len = 0;
    int many = a->world_size > 1;
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        const char *key = a->ds.origin[later[i].k].key;
        /* 2021 keys feed several settings (swap_tensor.folder is also the optimizer's folder,
         * which does take effect): name each key once, and only where it has no effect. The
         * whole key: zero_optimization.stage begins zero_optimization.stage3_... */
        char named[sizeof a->ds.origin[0].key + 2];
        snprintf(named, sizeof named, "%s (", key);
        if (a->ds.origin[later[i].k].source != SOURCE_CONFIG || strstr(line, named) ||
            (many && (later[i].k == DS_MAX_LIVE_PARAMETERS ||
                      (later[i].k == DS_ZERO_STAGE && a->ds.zero_stage == 3))) ||
            ((later[i].k == DS_PARAM_NVME_PATH || later[i].k == DS_PARAM_BUFFER_COUNT ||
              later[i].k == DS_PARAM_BUFFER_SIZE) &&
             a->ds.param_device != TIER_NVME) ||
            len >= sizeof line)
            continue;
        const char *why = many && later[i].many ? later[i].many : later[i].one;
        char ranks[32] = "";
        if (why == later[i].many) snprintf(ranks, sizeof ranks, "%d ranks: ", a->world_size);
        len += snprintf(line + len, sizeof line - len, "%s%s (%s%s)", len ? ", " : "", key, ranks,
                        why);
    }
    if (a->ds.param_device == TIER_NVME && len < sizeof line)
        len += snprintf(line + len, sizeof line - len, "%s%s nvme (parameters go to CPU memory)",
                        len ? ", " : "", a->ds.origin[DS_PARAM_DEVICE].key);
    if (len)
        fprintf(stderr, "note: %s: read but without effect in this version: %s\n", a->ds_path,
                line);
}

static void apply_preset(struct args *a, const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const struct preset *p = &presets[i];
        if (strcmp(p->name, name) != 0) continue;
        a->cfg.L = p->L;
        a->cfg.C = p->C;
        a->cfg.NH = p->NH;
        a->cfg.maxT = p->maxT;
        a->T = p->T;
        a->B = p->B;
        a->dt = p->dt;
        a->checkpointing = p->checkpointing;
        a->iters = p->iters;
        a->lr.max_lr = p->lr;
        a->lr.min_lr = p->min_lr;
        a->lr.style = p->style;
        a->warmup_fraction = p->warmup_fraction;
        a->warmup_iters = -1;
        a->weight_decay = p->weight_decay;
        a->eval_interval = p->eval_interval;
        a->eval_iters = p->eval_iters;
        /* the SC21 run: fp16 parameters in CPU memory, optimizer state on NVMe */
        a->param_offload = p->L == 62;
        a->ckpt_in_cpu = p->L == 62;
        a->optim_tier = p->L == 62 ? TIER_NVME : TIER_GPU;
        static const enum plan_knob set_by_preset[] = {
            PLAN_KNOB_MODEL,         PLAN_KNOB_MICRO_BATCH, PLAN_KNOB_DTYPE,
            PLAN_KNOB_CHECKPOINTING, PLAN_KNOB_TIER_PARAMS, PLAN_KNOB_TIER_OPTIM,
            PLAN_KNOB_CKPT_IN_CPU};
        for (size_t k = 0; k < sizeof set_by_preset / sizeof set_by_preset[0]; k++)
            setting_origin_set(&a->origin[set_by_preset[k]], SOURCE_PRESET, name);
        if (a->ds_path) apply_ds_config(a);
        return;
    }
    user_fail("unknown --preset %s: choose tiny, gpt2-124m, sc21-small or gpt50b", name);
}

/* Defaults, the DeepSpeed config of ds_path (NULL: none) and the tiny preset: what the flags
 * start from. */
static void defaults(struct args *a, const char *ds_path, int strict)
{
    char err[DSCONFIG_ERR_SIZE];
    memset(a, 0, sizeof *a);
    a->ds_path = ds_path;
    a->strict_config = strict;
    if (ds_path && dsconfig_load(&a->ds, ds_path, strict, err, sizeof err) != 0)
        user_fail("%s", err);
    a->resident_fraction = -1;
    a->grad_accum = 1;
    a->world_size = 1;
    a->num_gpus = 1;
    a->aio = aio_config_default();
    a->cfg.V = 50257; /* GPT-2's BPE vocabulary */
    a->vocab_divisor = 128;
    a->clip_grad = 1.0;
    a->beta1 = 0.9;
    a->beta2 = 0.999;
    a->eps = 1e-8;
    a->seed = 1234;
    a->data_path = "data/brown.bin";
    a->log_interval = 1;
    a->split[0] = 949;
    a->split[1] = 50;
    a->split[2] = 1;
    a->initial_loss_scale = 65536; /* DeepSpeed's initial_scale_power 16 */
    a->min_loss_scale = 1;
    a->loss_scale_window = 1000;
    a->hysteresis = 2;
    a->swap_buffers = 4; /* DeepSpeed's optimizer_buffer_count */
    a->save_optim = 1;
    a->optim_chunk = 1 << 23;
    apply_preset(a, "tiny");
}

static const char usage[] =
    "usage: gpt50b [--preset NAME] [flags]\n"
    "Trains a GPT as a StarPU task graph. Flags after --preset override it; flags keep\n"
    "Megatron-LM's names. StarPU's environment variables (STARPU_SCHED, STARPU_NCPU,\n"
    "STARPU_NCUDA, STARPU_LIMIT_CUDA_MEM, STARPU_FXT_TRACE, ...) work as documented.\n"
    "\n"
    "model:\n"
    "  --preset NAME                  tiny (default, CPU), gpt2-124m, sc21-small, gpt50b\n"
    "  --num-layers N                 transformer blocks\n"
    "  --hidden-size N                channels\n"
    "  --num-attention-heads N        heads (must divide the hidden size)\n"
    "  --seq-length N                 tokens per sequence\n"
    "  --max-position-embeddings N    rows of the position table\n"
    "  --vocab-size N                 vocabulary (default 50257, GPT-2's BPE)\n"
    "  --make-vocab-size-divisible-by N  pad the vocabulary for speed (default 128)\n"
    "training:\n"
    "  --micro-batch-size N           sequences per iteration\n"
    "  --train-iters N                iterations to train (in all, counting a resumed run's)\n"
    "  --lr X  --min-lr X             peak and final learning rate\n"
    "  --lr-decay-style S             constant, linear or cosine\n"
    "  --lr-decay-iters N             iterations of decay (default: --train-iters)\n"
    "  --lr-warmup-fraction X         warmup as a fraction of the decay iterations\n"
    "  --lr-warmup-iters N            warmup in iterations (overrides the fraction)\n"
    "  --weight-decay X               AdamW weight decay, matrices only\n"
    "  --clip-grad X                  max global gradient norm (0: off)\n"
    "  --adam-beta1 X  --adam-beta2 X  --adam-eps X\n"
    "  --fp16 | --bf16                mixed precision with fp32 master weights (default fp32)\n"
    "  --loss-scale X                 fp16 static loss scale (default: dynamic)\n"
    "  --initial-loss-scale X  --min-loss-scale X  --loss-scale-window N  --hysteresis N\n"
    "  --checkpoint-activations       keep each layer's input, recompute the layer in backward\n"
    "  --checkpoint-in-cpu            activation checkpoints in pinned CPU memory, moved back\n"
    "                                 one layer ahead of their recompute\n"
    "  --tile-size N                  split linear layers wider than N output channels into\n"
    "                                 tiles of at most N, one task each (default 0: off)\n"
    "  --seed N                       weight initialisation and shuffling\n"
    "offload:\n"
    "  --offload-optimizer none|cpu|nvme  fp32 master weights and AdamW moments with the\n"
    "                                 compute (none, default), in CPU memory or on NVMe; AdamW\n"
    "                                 runs on CPU workers when offloaded\n"
    "  --nvme-path DIR                folder for this run's swap files (nvme)\n"
    "  --swap-buffer-count N          RAM buffer sets cycled through the swap (default 4)\n"
    "  --nvme-resident-fraction X     share of the optimizer state kept in RAM (default: the\n"
    "                                 plan's, what RAM holds after everything else)\n"
    "  --offload-param none|cpu       fp16 parameters and gradients in pinned CPU memory, each\n"
    "                                 layer's moved to the GPU a layer ahead of use and evicted\n"
    "                                 first after it\n"
    "  --optimizer-chunk-size N       elements per CPU AdamW task: large tensors step in\n"
    "                                 pieces shared by the CPU workers (default 8388608)\n"
    "  --deepspeed_config FILE        DeepSpeed JSON (2021 or current schema); flags override it\n"
    "  --strict-config                unknown config keys are errors, not warnings\n"
    "  --gradient-accumulation-steps N  micro-batches per optimizer step (default 1)\n"
    "  --num-gpus N                   ZeRO-3 data parallelism over N ranks in this process: one\n"
    "                                 per GPU (NCCL), or N simulated ranks on the CPU without\n"
    "                                 GPUs; each rank runs its own micro-batch (default 1).\n"
    "                                 Under mpirun -np P: P x N ranks (docs/multinode.md)\n"
    "  --global-batch-size N          sequences per step in all ranks: sets the accumulation\n"
    "                                 to N / (micro-batch x ranks), which must be whole\n"
    "  --world-size N  --ranks-per-node N  data-parallel ranks to plan for (--dry-run); when\n"
    "                                 training, N must be the launch's processes x --num-gpus\n"
    "  --dry-run                      print the memory plan and exit without allocating\n"
    "  --trace FIRST:LAST             FxT-trace only these iterations (sets STARPU_FXT_TRACE=1\n"
    "                                 unless set; files in STARPU_FXT_PREFIX, default /tmp)\n"
    "data:\n"
    "  --data-path PATH               llm.c token file or Megatron indexed dataset prefix\n"
    "                                 (default data/brown.bin, made by scripts/setup.sh)\n"
    "  --split A,B,C                  train, validation, test weights (default 949,50,1)\n"
    "  --data-order S                 sequential (llm.c's exact order) or shuffle\n"
    "checkpoints and logs:\n"
    "  --load DIR  --save DIR         Hugging Face GPT-2 directories (+ optimizer state); with\n"
    "                                 --train-iters 0, --save writes the initial weights\n"
    "  --save-interval N              save every N iterations (and at the end)\n"
    "  --no-save-optim                save the weights and config only: no optimizer or\n"
    "                                 trainer state, so --load starts at iteration 1\n"
    "  --log-interval N               log line every N iterations (default 1)\n"
    "  --eval-interval N  --eval-iters N  validation loss every N iterations, over N batches\n"
    "  --metrics FILE                 one JSON object per iteration\n"
    "  --help\n";

static long long parse_int(const char *flag, const char *s, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) user_fail("%s: '%s' is not an integer", flag, s);
    if (v < min) user_fail("%s: %lld is below the minimum %lld", flag, v, min);
    return v;
}

static double parse_float(const char *flag, const char *s, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) user_fail("%s: '%s' is not a number", flag, s);
    if (v < min) user_fail("%s: %g is below the minimum %g", flag, v, min);
    return v;
}

enum {
    OPT_PRESET = 256,
    OPT_LAYERS,
    OPT_HIDDEN,
    OPT_HEADS,
    OPT_SEQ,
    OPT_MAXPOS,
    OPT_VOCAB,
    OPT_DIVISOR,
    OPT_MBS,
    OPT_ITERS,
    OPT_LR,
    OPT_MIN_LR,
    OPT_DECAY_STYLE,
    OPT_DECAY_ITERS,
    OPT_WARMUP_FRACTION,
    OPT_WARMUP_ITERS,
    OPT_WD,
    OPT_CLIP,
    OPT_BETA1,
    OPT_BETA2,
    OPT_EPS,
    OPT_FP16,
    OPT_BF16,
    OPT_LOSS_SCALE,
    OPT_INITIAL_LOSS_SCALE,
    OPT_MIN_LOSS_SCALE,
    OPT_LOSS_SCALE_WINDOW,
    OPT_HYSTERESIS,
    OPT_CKPT,
    OPT_CKPT_IN_CPU,
    OPT_TILE,
    OPT_SEED,
    OPT_DATA,
    OPT_SPLIT,
    OPT_ORDER,
    OPT_LOAD,
    OPT_SAVE,
    OPT_SAVE_INTERVAL,
    OPT_NO_SAVE_OPTIM,
    OPT_LOG_INTERVAL,
    OPT_EVAL_INTERVAL,
    OPT_EVAL_ITERS,
    OPT_METRICS,
    OPT_OFFLOAD_OPTIMIZER,
    OPT_NVME_PATH,
    OPT_SWAP_BUFFERS,
    OPT_RESIDENT,
    OPT_OFFLOAD_PARAM,
    OPT_OPTIM_CHUNK,
    OPT_DS_CONFIG,
    OPT_STRICT_CONFIG,
    OPT_DRY_RUN,
    OPT_WORLD_SIZE,
    OPT_NUM_GPUS,
    OPT_RANKS_PER_NODE,
    OPT_GRAD_ACCUM,
    OPT_GLOBAL_BATCH,
    OPT_TRACE,
    OPT_HELP,
};

static const struct option options[] = {
    {"preset", required_argument, 0, OPT_PRESET},
    {"num-layers", required_argument, 0, OPT_LAYERS},
    {"hidden-size", required_argument, 0, OPT_HIDDEN},
    {"num-attention-heads", required_argument, 0, OPT_HEADS},
    {"seq-length", required_argument, 0, OPT_SEQ},
    {"max-position-embeddings", required_argument, 0, OPT_MAXPOS},
    {"vocab-size", required_argument, 0, OPT_VOCAB},
    {"make-vocab-size-divisible-by", required_argument, 0, OPT_DIVISOR},
    {"micro-batch-size", required_argument, 0, OPT_MBS},
    {"train-iters", required_argument, 0, OPT_ITERS},
    {"lr", required_argument, 0, OPT_LR},
    {"min-lr", required_argument, 0, OPT_MIN_LR},
    {"lr-decay-style", required_argument, 0, OPT_DECAY_STYLE},
    {"lr-decay-iters", required_argument, 0, OPT_DECAY_ITERS},
    {"lr-warmup-fraction", required_argument, 0, OPT_WARMUP_FRACTION},
    {"lr-warmup-iters", required_argument, 0, OPT_WARMUP_ITERS},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"clip-grad", required_argument, 0, OPT_CLIP},
    {"adam-beta1", required_argument, 0, OPT_BETA1},
    {"adam-beta2", required_argument, 0, OPT_BETA2},
    {"adam-eps", required_argument, 0, OPT_EPS},
    {"fp16", no_argument, 0, OPT_FP16},
    {"bf16", no_argument, 0, OPT_BF16},
    {"loss-scale", required_argument, 0, OPT_LOSS_SCALE},
    {"initial-loss-scale", required_argument, 0, OPT_INITIAL_LOSS_SCALE},
    {"min-loss-scale", required_argument, 0, OPT_MIN_LOSS_SCALE},
    {"loss-scale-window", required_argument, 0, OPT_LOSS_SCALE_WINDOW},
    {"hysteresis", required_argument, 0, OPT_HYSTERESIS},
    {"checkpoint-activations", no_argument, 0, OPT_CKPT},
    {"checkpoint-in-cpu", no_argument, 0, OPT_CKPT_IN_CPU},
    {"tile-size", required_argument, 0, OPT_TILE},
    {"seed", required_argument, 0, OPT_SEED},
    {"data-path", required_argument, 0, OPT_DATA},
    {"split", required_argument, 0, OPT_SPLIT},
    {"data-order", required_argument, 0, OPT_ORDER},
    {"load", required_argument, 0, OPT_LOAD},
    {"save", required_argument, 0, OPT_SAVE},
    {"save-interval", required_argument, 0, OPT_SAVE_INTERVAL},
    {"no-save-optim", no_argument, 0, OPT_NO_SAVE_OPTIM},
    {"log-interval", required_argument, 0, OPT_LOG_INTERVAL},
    {"eval-interval", required_argument, 0, OPT_EVAL_INTERVAL},
    {"eval-iters", required_argument, 0, OPT_EVAL_ITERS},
    {"metrics", required_argument, 0, OPT_METRICS},
    {"offload-optimizer", required_argument, 0, OPT_OFFLOAD_OPTIMIZER},
    {"nvme-path", required_argument, 0, OPT_NVME_PATH},
    {"swap-buffer-count", required_argument, 0, OPT_SWAP_BUFFERS},
    {"nvme-resident-fraction", required_argument, 0, OPT_RESIDENT},
    {"offload-param", required_argument, 0, OPT_OFFLOAD_PARAM},
    {"optimizer-chunk-size", required_argument, 0, OPT_OPTIM_CHUNK},
    {"deepspeed_config", required_argument, 0, OPT_DS_CONFIG},
    {"deepspeed-config", required_argument, 0, OPT_DS_CONFIG},
    {"strict-config", no_argument, 0, OPT_STRICT_CONFIG},
    {"dry-run", no_argument, 0, OPT_DRY_RUN},
    {"world-size", required_argument, 0, OPT_WORLD_SIZE},
    {"num-gpus", required_argument, 0, OPT_NUM_GPUS},
    {"ranks-per-node", required_argument, 0, OPT_RANKS_PER_NODE},
    {"gradient-accumulation-steps", required_argument, 0, OPT_GRAD_ACCUM},
    {"global-batch-size", required_argument, 0, OPT_GLOBAL_BATCH},
    {"trace", required_argument, 0, OPT_TRACE},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

static void parse_split(struct args *a, const char *s)
{
    double w[3] = {0, 0, 0};
    int n = 0;
    char copy[128], *save = NULL;
    snprintf(copy, sizeof copy, "%s", s);
    for (char *tok = strtok_r(copy, ",/", &save); tok; tok = strtok_r(NULL, ",/", &save)) {
        if (n == 3) user_fail("--split %s: give at most three weights, e.g. 949,50,1", s);
        w[n++] = parse_float("--split", tok, 0);
    }
    if (n == 0 || w[0] <= 0)
        user_fail("--split %s: the training weight must be positive, e.g. 949,50,1", s);
    memcpy(a->split, w, sizeof w);
}

static void parse_args(struct args *a, int argc, char **argv)
{
    int c, idx;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", options, &idx)) != -1) {
        /* argv[optind - 1] is the value when it came as a separate argument: name the flag from
         * the table (idx is only set for a recognised flag that got its value). */
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", c >= OPT_PRESET ? options[idx].name : "");
        switch (c) {
        case OPT_PRESET:
            apply_preset(a, optarg);
            break;
        case OPT_LAYERS:
            a->cfg.L = (int)parse_int(flag, optarg, 1);
            a->model_flags |= MF_LAYERS;
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_HIDDEN:
            a->cfg.C = (int)parse_int(flag, optarg, 1);
            a->model_flags |= MF_HIDDEN;
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_HEADS:
            a->cfg.NH = (int)parse_int(flag, optarg, 1);
            a->model_flags |= MF_HEADS;
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_SEQ:
            a->T = (int)parse_int(flag, optarg, 1);
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_MAXPOS:
            a->cfg.maxT = (int)parse_int(flag, optarg, 1);
            a->model_flags |= MF_MAXPOS;
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_VOCAB:
            a->cfg.V = (int)parse_int(flag, optarg, 2);
            a->model_flags |= MF_VOCAB;
            setting_origin_set(&a->origin[PLAN_KNOB_MODEL], SOURCE_FLAG, flag);
            break;
        case OPT_DIVISOR:
            a->vocab_divisor = (int)parse_int(flag, optarg, 1);
            break;
        case OPT_MBS:
            a->B = (int)parse_int(flag, optarg, 1);
            setting_origin_set(&a->origin[PLAN_KNOB_MICRO_BATCH], SOURCE_FLAG, flag);
            break;
        case OPT_ITERS:
            a->iters = parse_int(flag, optarg, 0);
            break;
        case OPT_LR:
            a->lr.max_lr = parse_float(flag, optarg, 0);
            break;
        case OPT_MIN_LR:
            a->lr.min_lr = parse_float(flag, optarg, 0);
            break;
        case OPT_DECAY_STYLE:
            if (strcmp(optarg, "constant") == 0)
                a->lr.style = LR_DECAY_CONSTANT;
            else if (strcmp(optarg, "linear") == 0)
                a->lr.style = LR_DECAY_LINEAR;
            else if (strcmp(optarg, "cosine") == 0)
                a->lr.style = LR_DECAY_COSINE;
            else
                user_fail("--lr-decay-style %s: choose constant, linear or cosine", optarg);
            break;
        case OPT_DECAY_ITERS:
            a->decay_iters = parse_int(flag, optarg, 1);
            break;
        case OPT_WARMUP_FRACTION:
            a->warmup_fraction = parse_float(flag, optarg, 0);
            if (a->warmup_fraction > 1)
                user_fail("--lr-warmup-fraction %g: give a fraction of the decay iterations, "
                          "between 0 and 1",
                          a->warmup_fraction);
            a->warmup_iters = -1;
            break;
        case OPT_WARMUP_ITERS:
            a->warmup_iters = parse_int(flag, optarg, 0);
            break;
        case OPT_WD:
            a->weight_decay = parse_float(flag, optarg, 0);
            break;
        case OPT_CLIP:
            a->clip_grad = parse_float(flag, optarg, 0);
            break;
        case OPT_BETA1:
            a->beta1 = parse_float(flag, optarg, 0);
            break;
        case OPT_BETA2:
            a->beta2 = parse_float(flag, optarg, 0);
            break;
        case OPT_EPS:
            a->eps = parse_float(flag, optarg, 0);
            break;
        case OPT_FP16:
            if (a->origin[PLAN_KNOB_DTYPE].source == SOURCE_FLAG && a->dt == DTYPE_BF16)
                user_fail("--fp16 and --bf16 contradict each other: give one of them");
            a->dt = DTYPE_FP16;
            setting_origin_set(&a->origin[PLAN_KNOB_DTYPE], SOURCE_FLAG, flag);
            break;
        case OPT_BF16:
            if (a->origin[PLAN_KNOB_DTYPE].source == SOURCE_FLAG && a->dt == DTYPE_FP16)
                user_fail("--fp16 and --bf16 contradict each other: give one of them");
            a->dt = DTYPE_BF16;
            setting_origin_set(&a->origin[PLAN_KNOB_DTYPE], SOURCE_FLAG, flag);
            break;
        case OPT_LOSS_SCALE:
            a->loss_scale = parse_float(flag, optarg, 0);
            break;
        case OPT_INITIAL_LOSS_SCALE:
            a->initial_loss_scale = parse_float(flag, optarg, 1);
            break;
        case OPT_MIN_LOSS_SCALE:
            a->min_loss_scale = parse_float(flag, optarg, 0);
            break;
        case OPT_LOSS_SCALE_WINDOW:
            a->loss_scale_window = parse_int(flag, optarg, 1);
            break;
        case OPT_HYSTERESIS:
            a->hysteresis = (int)parse_int(flag, optarg, 1);
            break;
        case OPT_CKPT:
            a->checkpointing = 1;
            setting_origin_set(&a->origin[PLAN_KNOB_CHECKPOINTING], SOURCE_FLAG, flag);
            break;
        case OPT_CKPT_IN_CPU:
            a->ckpt_in_cpu = 1;
            setting_origin_set(&a->origin[PLAN_KNOB_CKPT_IN_CPU], SOURCE_FLAG, flag);
            break;
        case OPT_TILE:
            a->tile_size = (int)parse_int(flag, optarg, 0);
            setting_origin_set(&a->origin[PLAN_KNOB_TILE], SOURCE_FLAG, flag);
            break;
        case OPT_SEED:
            a->seed = (uint64_t)parse_int(flag, optarg, 0);
            break;
        case OPT_DATA:
            a->data_path = optarg;
            break;
        case OPT_SPLIT:
            parse_split(a, optarg);
            break;
        case OPT_ORDER:
            if (strcmp(optarg, "sequential") == 0)
                a->order = DATA_ORDER_SEQUENTIAL;
            else if (strcmp(optarg, "shuffle") == 0)
                a->order = DATA_ORDER_SHUFFLE;
            else
                user_fail("--data-order %s: choose sequential or shuffle", optarg);
            break;
        case OPT_LOAD:
            a->load = optarg;
            break;
        case OPT_SAVE:
            a->save = optarg;
            break;
        case OPT_SAVE_INTERVAL:
            a->save_interval = parse_int(flag, optarg, 1);
            break;
        case OPT_NO_SAVE_OPTIM:
            a->save_optim = 0;
            break;
        case OPT_LOG_INTERVAL:
            a->log_interval = parse_int(flag, optarg, 1);
            break;
        case OPT_EVAL_INTERVAL:
            a->eval_interval = parse_int(flag, optarg, 0);
            break;
        case OPT_EVAL_ITERS:
            a->eval_iters = parse_int(flag, optarg, 0);
            break;
        case OPT_METRICS:
            a->metrics = optarg;
            break;
        case OPT_OFFLOAD_OPTIMIZER:
            if (strcmp(optarg, "none") == 0)
                a->optim_tier = TIER_GPU;
            else if (strcmp(optarg, "cpu") == 0)
                a->optim_tier = TIER_CPU;
            else if (strcmp(optarg, "nvme") == 0)
                a->optim_tier = TIER_NVME;
            else
                user_fail("--offload-optimizer %s: choose none, cpu or nvme", optarg);
            setting_origin_set(&a->origin[PLAN_KNOB_TIER_OPTIM], SOURCE_FLAG, flag);
            break;
        case OPT_NVME_PATH:
            a->nvme_path = optarg;
            break;
        case OPT_SWAP_BUFFERS:
            a->swap_buffers = (int)parse_int(flag, optarg, 1);
            setting_origin_set(&a->origin[PLAN_KNOB_OPTIM_BUFFERS], SOURCE_FLAG, flag);
            break;
        case OPT_RESIDENT:
            a->resident_fraction = parse_float(flag, optarg, 0);
            if (a->resident_fraction > 1)
                user_fail("--nvme-resident-fraction %g: give a share between 0 and 1",
                          a->resident_fraction);
            setting_origin_set(&a->origin[PLAN_KNOB_RESIDENT], SOURCE_FLAG, flag);
            break;
        case OPT_OFFLOAD_PARAM:
            if (strcmp(optarg, "none") != 0 && strcmp(optarg, "cpu") != 0)
                user_fail("--offload-param %s: choose none or cpu", optarg);
            a->param_offload = strcmp(optarg, "cpu") == 0;
            setting_origin_set(&a->origin[PLAN_KNOB_TIER_PARAMS], SOURCE_FLAG, flag);
            break;
        case OPT_OPTIM_CHUNK:
            a->optim_chunk = parse_int(flag, optarg, 0);
            break;
        case OPT_DS_CONFIG:
        case OPT_STRICT_CONFIG:
            break; /* read before the other flags (main) */
        case OPT_DRY_RUN:
            a->dry_run = 1;
            break;
        case OPT_WORLD_SIZE:
            a->world_size = (int)parse_int(flag, optarg, 1);
            setting_origin_set(&a->origin[PLAN_KNOB_WORLD], SOURCE_FLAG, flag);
            break;
        case OPT_NUM_GPUS:
            a->num_gpus = (int)parse_int(flag, optarg, 1);
            break;
        case OPT_RANKS_PER_NODE:
            a->ranks_per_node = (int)parse_int(flag, optarg, 1);
            break;
        case OPT_GRAD_ACCUM:
            a->grad_accum = (int)parse_int(flag, optarg, 1);
            setting_origin_set(&a->origin[PLAN_KNOB_GRAD_ACCUM], SOURCE_FLAG, flag);
            break;
        case OPT_GLOBAL_BATCH:
            a->global_batch = parse_int(flag, optarg, 1);
            break;
        case OPT_TRACE: {
            long long first, last;
            char tail;
            int n = sscanf(optarg, "%lld:%lld%c", &first, &last, &tail);
            if (n == 1 && sscanf(optarg, "%lld%c", &first, &tail) == 1)
                last = first;
            else if (n != 2)
                user_fail("--trace %s: give FIRST:LAST (iterations, e.g. 3:4) or one iteration",
                          optarg);
            if (first < 1 || last < first)
                user_fail("--trace %s: iterations count from 1 and LAST >= FIRST", optarg);
            a->trace_first = first;
            a->trace_last = last;
            break;
        }
        case OPT_HELP:
            fputs(usage, stdout);
            exit(0);
        case ':':
            user_fail("%s needs a value: see --help", argv[optind - 1]);
        default:
            user_fail("unknown flag %s: see --help", argv[optind - 1]);
        }
    }
    if (optind < argc) user_fail("unexpected argument %s: see --help", argv[optind]);
}

/* Model shape from --load's config.json; a shape flag given explicitly must agree with it. */
static void shape_from_checkpoint(struct args *a)
{
    struct gpt_config ck;
    checkpoint_read_config(a->load, &ck);
    const struct {
        unsigned flag;
        const char *name;
        int given, stored;
    } f[] = {{MF_LAYERS, "--num-layers", a->cfg.L, ck.L},
             {MF_HIDDEN, "--hidden-size", a->cfg.C, ck.C},
             {MF_HEADS, "--num-attention-heads", a->cfg.NH, ck.NH},
             {MF_MAXPOS, "--max-position-embeddings", a->cfg.maxT, ck.maxT},
             {MF_VOCAB, "--vocab-size", a->cfg.V, ck.V}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if ((a->model_flags & f[i].flag) && f[i].given != f[i].stored)
            user_fail("%s %d disagrees with the checkpoint %s (%d): drop the flag or load another "
                      "checkpoint",
                      f[i].name, f[i].given, a->load, f[i].stored);
    a->cfg.L = ck.L;
    a->cfg.C = ck.C;
    a->cfg.NH = ck.NH;
    a->cfg.maxT = ck.maxT;
    a->cfg.V = ck.V;
}

static const char *dtype_label(enum dtype dt)
{
    return dt == DTYPE_FP32 ? "fp32" : dt == DTYPE_FP16 ? "fp16" : "bf16";
}

/* The data-parallel ranks: W in all processes, this process's R of them from global rank first
 * (1, 1, 0 for one rank). */
struct ranks {
    int W, R, first;
};

/* Micro-batch `micro` of the run's sequence into local rank r's slot of in/tg (N tokens each):
 * global rank g of W gets what micro-batch micro * W + g of one rank would (the single-rank run
 * with W times the accumulation sees the same data, whatever the split into processes). */
static void load_ranks(struct loader *l, int64_t micro, const struct ranks *rk, size_t N,
                       int32_t *in, int32_t *tg)
{
    for (int r = 0; r < rk->R; r++)
        loader_batch(l, micro * rk->W + rk->first + r, in + r * N, tg + r * N);
}

static double evaluate(struct gpt *m, struct loader *val, int64_t iters, const struct ranks *rk,
                       size_t N, int32_t *in, int32_t *tg)
{
    double sum = 0;
    for (int64_t j = 0; j < iters; j++) {
        float loss;
        load_ranks(val, j, rk, N, in, tg);
        gpt_set_batch(m, in, tg);
        gpt_forward(m);
        gpt_step_stats(m, &loss, NULL);
        sum += loss;
    }
    return iters ? sum / iters : NAN;
}

/* SIGINT and SIGTERM. The first asks the training loop to stop at its next safe point, the end
 * of the iteration or save in flight; the second kills at once (the default action, re-raised):
 * saves are atomic, so the checkpoint at --save stays whole, and the next run removes what this
 * one leaves (its swap folder, an unfinished save), one line each. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    static const char again[] =
        "gpt50b: second signal: stopping at once; the last checkpoint is whole, and the next run "
        "removes what this one leaves\n";
    if (stop_signal) {
        if (write(STDERR_FILENO, again, sizeof again - 1) < 0) _exit(128 + sig);
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0);
}

/* Pushes what f holds to its file and stops the run (exit 2, one line) when a write failed: a
 * full disk must not leave a metrics file or log that silently lacks iterations. The checkpoint at
 * --save stays the last one saved. */
static void check_written(FILE *f, const char *what)
{
    if (fflush(f) == 0 && !ferror(f)) return;
    user_fail("%s: cannot write: %s: free space or choose another file", what, strerror(errno));
}

/* The folder of StarPU's FxT trace when one is recorded (STARPU_FXT_TRACE set and not 0, as
 * --trace sets it), else NULL. */
static const char *trace_folder(void)
{
    const char *on = getenv("STARPU_FXT_TRACE"), *prefix = getenv("STARPU_FXT_PREFIX");
    if (!on || atoi(on) == 0) return NULL;
    return prefix && *prefix ? prefix : "/tmp/";
}

/* FxT writes the trace at StarPU's shutdown and reports a failed write only with a line of its
 * own on stderr, the run still exiting 0: a trace folder left with no free block means the write
 * ran out of room and the trace is cut. */
static void check_trace_written(const char *folder)
{
    struct statvfs v;
    if (!folder || statvfs(folder, &v) != 0 || v.f_bavail > 0) return;
    user_fail("STARPU_FXT_PREFIX=%s: the file system is full, so the FxT trace written there is "
              "cut short: free space or point STARPU_FXT_PREFIX elsewhere, and run again",
              folder);
}

static int64_t saved_iteration = -1; /* of the checkpoint at --save, -1: none yet from this run */

static void save_checkpoint(struct gpt *m, const struct args *a, const struct train_state *st)
{
    char err[512];
    double t0 = timer_now_s() * 1e3;
    if (checkpoint_save(m, a->save, st, a->save_optim, err, sizeof err) != 0)
        user_fail("saving the checkpoint failed, the previous one is intact: %s", err);
    printf(" saved checkpoint at iteration %8lld to %s in %.1f ms\n", (long long)st->iteration,
           a->save, (timer_now_s() * 1e3) - t0);
    saved_iteration = st->iteration;
}

/* --deepspeed_config FILE (or --deepspeed-config, or =FILE) and --strict-config, read before the
 * other flags so that those override the file. */
static void prescan_config(int argc, char **argv, const char **path, int *strict)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--strict-config") == 0)
            *strict = 1;
        else if ((strcmp(s, "--deepspeed_config") == 0 || strcmp(s, "--deepspeed-config") == 0) &&
                 i + 1 < argc)
            *path = argv[++i];
        else if (strncmp(s, "--deepspeed_config=", 19) == 0 ||
                 strncmp(s, "--deepspeed-config=", 19) == 0)
            *path = s + 19;
    }
}

/* The data-parallel world: the launch's processes x --num-gpus ranks each, which --world-size
 * (for training) and --global-batch-size must agree with. Sets world_size, ranks_per_node (unless
 * given) and, from --global-batch-size, the accumulation. */
static void check_ranks(struct args *a, const struct rt_launch *l)
{
    int world = l->size * a->num_gpus, W = a->world_size;
    if (a->origin[PLAN_KNOB_WORLD].source != SOURCE_FLAG) {
        a->world_size = world;
    } else if (!a->dry_run && W != world) {
        char fix[128] = "";
        if (W % l->size == 0)
            snprintf(fix, sizeof fix, "give --num-gpus %d, ", W / l->size);
        else if (W % a->num_gpus == 0)
            snprintf(fix, sizeof fix, "launch mpirun -np %d, ", W / a->num_gpus);
        user_fail("--world-size %d, but this run has %d process%s x --num-gpus %d = %d rank%s: "
                  "%sor drop --world-size",
                  W, l->size, l->size > 1 ? "es" : "", a->num_gpus, world, world > 1 ? "s" : "",
                  fix);
    }
    if (!a->ranks_per_node && l->size > 1 && l->local_size > 0)
        a->ranks_per_node = l->local_size * a->num_gpus;
    if (!a->global_batch) return;
    int64_t per_micro = (int64_t)a->B * a->world_size;
    if (a->global_batch % per_micro != 0)
        user_fail("--global-batch-size %lld is not a multiple of --micro-batch-size %d x %d "
                  "data-parallel ranks (%lld): change one of them",
                  (long long)a->global_batch, a->B, a->world_size, (long long)per_micro);
    if (a->origin[PLAN_KNOB_GRAD_ACCUM].source == SOURCE_FLAG &&
        a->grad_accum != a->global_batch / per_micro)
        user_fail("--global-batch-size %lld is not --gradient-accumulation-steps %d x "
                  "--micro-batch-size %d x %d ranks: give one of the two",
                  (long long)a->global_batch, a->grad_accum, a->B, a->world_size);
    a->grad_accum = (int)(a->global_batch / per_micro);
    setting_origin_set(&a->origin[PLAN_KNOB_GRAD_ACCUM], SOURCE_FLAG, "--global-batch-size");
}

/* FNV-1a of the flags (not the program's path, which may differ from node to node), to find
 * processes started with different flags. */
static uint64_t argv_hash(int argc, char **argv)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 1; i < argc; i++)
        for (const char *p = argv[i];; p++) {
            h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
            if (!*p) break;
        }
    return h;
}

/* The memory plan of this run, before anything is allocated: printed, and checked against each
 * tier's capacity. Returns whether it fits (a message in verdict otherwise). */
static int make_plan(struct args *a, struct plan *p, char *verdict, size_t n)
{
    struct plan_input in;
    char err[PLAN_ERR_SIZE];
    int64_t gpu_bytes = rt_probe_gpu_bytes();
    plan_input_init(&in);
    if (a->ds_path) plan_input_from_dsconfig(&in, &a->ds);
    in.L = a->cfg.L;
    in.C = a->cfg.C;
    in.NH = a->cfg.NH;
    in.T = a->T;
    in.maxT = a->cfg.maxT;
    in.Vp = a->cfg.Vp;
    in.B = a->B;
    in.grad_accum = a->grad_accum;
    in.dt = a->dt;
    in.checkpointing = a->checkpointing;
    in.tile = a->tile_size;
    in.ckpt_in_cpu = a->ckpt_in_cpu;
    in.world_size = a->world_size;
    in.ranks_per_node = a->ranks_per_node   ? a->ranks_per_node
                        : a->world_size > 8 ? 8
                                            : a->world_size;
    /* TIER_GPU is the compute device: the plan puts it on the CPU when there is no GPU */
    in.tier_params = a->param_offload ? TIER_CPU : TIER_GPU;
    in.tier_optim = a->optim_tier;
    /* gradients stay in the model's dtype; offloaded AdamW reads them in CPU memory */
    in.tier_grads = a->optim_tier == TIER_GPU ? TIER_GPU : TIER_CPU;
    in.grads_with_optim = 0;
    in.optim_buffer_count = a->swap_buffers;
    in.optim_buffer_tensors = 3; /* each set holds a tensor's master, m and v */
    /* the swap unit: a rank's shard of the largest tensor (the whole tensor with one rank) */
    in.sub_group_size = (int64_t)comm_shard_elems((size_t)a->cfg.Vp * a->cfg.C, a->world_size, 4096,
                                                  dtype_size(a->dt));
    in.resident_fraction = a->resident_fraction >= 0 ? a->resident_fraction : 1.0;
    for (int k = 0; k < PLAN_NKNOBS; k++)
        if (a->origin[k].source != SOURCE_DEFAULT) in.origin[k] = a->origin[k];
    if (plan_capacity_gpu(&in.cap[TIER_GPU], gpu_bytes, err, sizeof err) ||
        plan_capacity_ram(&in.cap[TIER_CPU], err, sizeof err))
        user_fail("%s", err);
    /* A dry run plans without the folder (it may be made later, or exist on the nodes only): the
     * plan's NVMe line says why the space is not checked. A run stops here. */
    if (plan_capacity_nvme(&in.cap[TIER_NVME], a->optim_tier == TIER_NVME ? a->nvme_path : NULL,
                           err, sizeof err) != 0 &&
        !a->dry_run)
        user_fail("%s", err);
    if (plan_compute(p, &in, err, sizeof err) != 0) user_fail("%s", err);
    plan_print(p, stdout);
    return plan_verdict(p, verdict, n) == 0;
}

int main(int argc, char **argv)
{
    struct args a;
    char err[512];
    const char *ds_path = NULL;
    int strict = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Under mpirun every process parses the same command line: process 0 reports what is wrong
     * with it (the others wait to let it: check_set_delay) and prints the log (the others'
     * stdout goes nowhere); errors in files, found by each process, are each one's own. */
    struct rt_launch launch = rt_mpi_launch();
    int delay = launch.rank != 0 ? 3 : 0; /* seconds: process 0's exit ends the job first */
    check_set_delay(delay);
    if (launch.rank != 0 && !freopen("/dev/null", "w", stdout))
        user_fail("cannot open /dev/null for process %d's log", launch.rank);
    prescan_config(argc, argv, &ds_path, &strict);
    defaults(&a, ds_path, strict);
    parse_args(&a, argc, argv);
    check_ranks(&a, &launch);
    if (a.ds_path) {
        if (dsconfig_resolve_batch(&a.ds, a.world_size, err, sizeof err) != 0) user_fail("%s", err);
        if (launch.rank == 0) note_no_effect(&a);
    }
    check_set_delay(0);
    rt_mpi_pick_gpus(&launch, a.num_gpus);
    /* Process 0 writes the checkpoints: it locks --save and tidies what dead runs left there
     * and beside --load (a lost --load comes back here) before anything reads them. */
    if (a.save && launch.rank == 0 && !a.dry_run) checkpoint_claim(a.save, 1);
    if (a.load && launch.rank == 0 && !a.dry_run) checkpoint_claim(a.load, 0);
    if (a.load) shape_from_checkpoint(&a);
    a.cfg.Vp = gpt_padded_vocab(a.cfg.V, a.vocab_divisor);
    if (a.save && launch.rank == 0) checkpoint_check_writable(a.save, &a.cfg, a.save_optim);
    a.lr.decay_iters = a.decay_iters ? a.decay_iters : a.iters;
    a.lr.warmup_iters =
        a.warmup_iters >= 0 ? a.warmup_iters : (int64_t)(a.warmup_fraction * a.lr.decay_iters);
    struct plan plan;
    char verdict[PLAN_ERR_SIZE];
    int fits = make_plan(&a, &plan, verdict, sizeof verdict);
    if (a.dry_run) {
        printf("%s\n", fits ? "plan: fits" : verdict);
        return fits ? 0 : EXIT_USER;
    }
    if (!fits) user_fail("%s", verdict);
    const char *ncuda = getenv("STARPU_NCUDA");
    if (a.num_gpus > 1 && ncuda && atoi(ncuda) > 0 && atoi(ncuda) < a.num_gpus)
        user_fail("--num-gpus %d with STARPU_NCUDA=%s: raise STARPU_NCUDA to at least %d or unset "
                  "it",
                  a.num_gpus, ncuda, a.num_gpus);
    if (a.resident_fraction < 0) a.resident_fraction = plan.resident_share;
    if (a.optim_tier == TIER_NVME && !a.nvme_path)
        user_fail("--offload-optimizer nvme needs --nvme-path DIR: a folder on a fast local disk");
    /* one lock per run and node: the first process of each node takes it */
    if (a.optim_tier == TIER_NVME &&
        (launch.local_rank == 0 || (launch.local_rank < 0 && launch.rank == 0)) &&
        swap_path_claim(a.nvme_path, err, sizeof err) != 0)
        user_fail("%s", err);
    if (a.lr.min_lr > a.lr.max_lr)
        user_fail("--min-lr %g is above --lr %g", a.lr.min_lr, a.lr.max_lr);

    struct dataset *data = dataset_open(a.data_path, err, sizeof err);
    if (!data) user_fail("%s", err);
    size_t ntok = dataset_ntokens(data);
    size_t bad = dataset_find_above(data, a.cfg.V - 1);
    if (bad < ntok)
        user_fail("--data-path %s: token %d at position %zu is outside the vocabulary of %d: "
                  "the data was tokenized for another vocabulary; give the matching --vocab-size "
                  "or --load",
                  a.data_path, dataset_token(data, bad), bad, a.cfg.V);
    double wsum = a.split[0] + a.split[1] + a.split[2];
    size_t train_end = (size_t)(ntok * (a.split[0] / wsum));
    size_t val_end = (size_t)(ntok * ((a.split[0] + a.split[1]) / wsum));
    struct loader train, val;
    loader_init(&train, data, 0, train_end, a.B, a.T, a.order, a.seed, "training");
    int have_val = a.eval_iters > 0 && val_end > train_end + (size_t)a.T + 2;
    if (have_val)
        loader_init(&val, data, train_end, val_end, a.B, a.T, DATA_ORDER_SEQUENTIAL, a.seed,
                    "validation");

    struct gpt_options opt = {.dt = a.dt,
                              .B = a.B,
                              .T = a.T,
                              .checkpointing = a.checkpointing,
                              .seed = a.seed,
                              .tile_size = a.tile_size,
                              .optim_tier = a.optim_tier,
                              .nvme_path = a.nvme_path,
                              .offload_param = a.param_offload,
                              .offload_checkpoints = a.ckpt_in_cpu,
                              .optim_chunk = a.optim_chunk,
                              .swap_buffers = a.swap_buffers,
                              .resident_fraction = a.resident_fraction,
                              .aio = &a.aio};
    gpt_check_config(&a.cfg, &opt);
    if (a.trace_first) {
        const char *fxt = getenv("STARPU_FXT_TRACE");
        if (fxt && atoi(fxt) == 0)
            user_fail("--trace %lld:%lld with STARPU_FXT_TRACE=%s: unset it or set it to 1",
                      (long long)a.trace_first, (long long)a.trace_last, fxt);
        setenv("STARPU_FXT_TRACE", "1", 0);
        printf("> tracing iterations %lld to %lld with FxT into %s\n", (long long)a.trace_first,
               (long long)a.trace_last,
               getenv("STARPU_FXT_PREFIX") ? getenv("STARPU_FXT_PREFIX") : "/tmp/");
    }
    const char *trace_dir = trace_folder();
    if (trace_dir && access(trace_dir, W_OK) != 0)
        user_fail(
            "STARPU_FXT_PREFIX=%s: cannot write the FxT trace there: %s: create the folder or "
            "point STARPU_FXT_PREFIX elsewhere",
            trace_dir, strerror(errno));
    double t_init = timer_now_s() * 1e3;
    rt_init(&(struct rt_options){.cpu_workers = a.optim_tier != TIER_GPU,
                                 .trace_later = a.trace_first > 0,
                                 .mpi = launch.size > 1});
    struct comm *comm = NULL;
    if (a.world_size > 1) {
        enum comm_backend be = rt_ncuda() > 0 ? COMM_BACKEND_NCCL : COMM_BACKEND_HOST;
        check_set_delay(delay); /* what every process finds alike */
        comm = comm_create(&(struct comm_config){be, a.num_gpus});
        if (!comm_same_everywhere(comm, argv_hash(argc, argv)))
            user_fail("the %d processes were started with different flags: give every process "
                      "the same command line",
                      launch.size);
        check_set_delay(0);
        printf("> ZeRO-3 over %d ranks: %d process%s x %d (%s)\n", a.world_size, launch.size,
               launch.size > 1 ? "es" : "", a.num_gpus,
               be == COMM_BACKEND_NCCL ? "NCCL, one rank per GPU"
               : launch.size > 1       ? "host buffers, MPI between processes"
                                       : "simulated on the CPU");
    }
    opt.comm = comm;
    opt.micro_steps = a.grad_accum;
    opt.max_live_elems =
        a.ds.origin[DS_MAX_LIVE_PARAMETERS].source == SOURCE_CONFIG ? a.ds.max_live_parameters : 0;
    struct ranks rk = {a.world_size, a.num_gpus, comm ? comm_rank(comm, 0) : 0};
    struct gpt *m = gpt_create(&a.cfg, &opt);
    struct train_state st = {0};
    int dynamic = a.dt == DTYPE_FP16 && a.loss_scale == 0;
    double scale0 = a.dt != DTYPE_FP16 ? 1.0 : dynamic ? a.initial_loss_scale : a.loss_scale;
    loss_scaler_init(&st.scaler, dynamic, scale0, a.min_loss_scale, a.loss_scale_window,
                     a.hysteresis);
    if (a.load) {
        int resumed = checkpoint_load(m, a.load, &st);
        printf("> loaded %s from %s%s\n", resumed ? "weights and optimizer state" : "weights",
               a.load, resumed ? "" : " (training starts at iteration 1)");
        if (st.iteration > a.iters)
            user_fail("--load %s holds iteration %lld, beyond --train-iters %lld (which counts "
                      "the loaded iterations): give --train-iters above %lld",
                      a.load, (long long)st.iteration, (long long)a.iters, (long long)st.iteration);
        if (st.iteration == a.iters)
            printf("> nothing to train: %s holds iteration %lld = --train-iters\n", a.load,
                   (long long)st.iteration);
    }

    printf("> StarPU started, model allocated and initialised in %.1f s\n",
           ((timer_now_s() * 1e3) - t_init) / 1e3);
    int64_t nparams = gpt_num_params(&a.cfg);
    int ngpu = rt_ncuda() == 0 ? 1 : a.world_size > 1 ? a.world_size : rt_ncuda();
    /* what the FLOP rate is divided by: the GPUs, or on CPU workers alone the process */
    const char *per = rt_ncuda() == 0 ? "process" : "GPU";
    double flops = gpt_flops_per_iteration(&a.cfg, a.B, a.T, a.checkpointing);
    printf("> model: %d layers, hidden %d, %d heads, seq %d, vocab %d (padded %d), %lld "
           "parameters, %s%s\n",
           a.cfg.L, a.cfg.C, a.cfg.NH, a.T, a.cfg.V, a.cfg.Vp, (long long)nparams,
           dtype_label(a.dt),
           !a.checkpointing ? ""
           : a.ckpt_in_cpu  ? ", activation checkpointing (checkpoints in pinned CPU memory)"
                            : ", activation checkpointing");
    struct host_pool_info pool = rt_pool_info();
    printf("> pinned host pool: %.3f GB (%s, %s)\n", pool.capacity / 1e9,
           pool.pinned ? "page-locked" : "not page-locked: no GPU",
           pool.numa_node >= 0 ? "on the GPU's NUMA node" : "one NUMA node or no GPU: unbound");
    if (a.optim_tier != TIER_GPU) {
        struct state_optim_placement pl;
        state_optim_placement(gpt_get_state(m), &pl);
        printf("> optimizer state: %d tensors (%.3f GB) in RAM, %d tensors (%.3f GB) on NVMe "
               "(%s), swap buffers %.3f GB; resident share %.1f%%; %d AdamW tasks per step\n",
               pl.resident_tensors, pl.resident_bytes / 1e9, pl.swapped_tensors,
               pl.swapped_bytes / 1e9, a.nvme_path ? a.nvme_path : "-", pl.swap_buffer_bytes / 1e9,
               100.0 * pl.resident_bytes / (double)(pl.resident_bytes + pl.swapped_bytes),
               pl.adamw_tasks);
        char nodes[64], io[160];
        rt_cpu_worker_nodes(nodes, sizeof nodes);
        numa_io_describe(pl.io_numa, io, sizeof io);
        printf(
            "> NUMA: CPU workers (AdamW) on node %s, as StarPU bound them; NVMe I/O threads %s\n",
            nodes, a.optim_tier == TIER_NVME ? io : "none");
    }
    printf("> data: %s (%s, %zu tokens; %zu training, %zu validation), order %s\n", a.data_path,
           dataset_format(data), ntok, train_end, have_val ? val_end - train_end : 0,
           a.order == DATA_ORDER_SEQUENTIAL ? "sequential" : "shuffle");

    FILE *metrics = NULL;
    if (a.metrics && launch.rank == 0 && !(metrics = fopen(a.metrics, "a")))
        user_fail("--metrics %s: %s: choose a writable file", a.metrics, strerror(errno));
    char metrics_what[4200];
    snprintf(metrics_what, sizeof metrics_what, "--metrics %s", a.metrics ? a.metrics : "");

    size_t N = (size_t)a.B * a.T;
    int micro_per_step = a.grad_accum * rk.W; /* micro-batches of all ranks */
    int32_t *in = malloc(N * rk.R * sizeof *in), *tg = malloc(N * rk.R * sizeof *tg);
    CHECK(in && tg);
    uint64_t nvme_read0, nvme_written0, nvme_kept0; /* the initial state's writes are not an
                                                        iteration's */
    state_nvme_traffic(gpt_get_state(m), &nvme_read0, &nvme_written0, &nvme_kept0);
    double t_start = (timer_now_s() * 1e3), t_steady = 0, interval_loss = 0;
    int64_t first = st.iteration + 1, skipped_total = 0, nan_total = 0, interval_n = 0;
    float loss = NAN, val_loss = NAN;
    if (a.load && a.save && strcmp(a.load, a.save) == 0) saved_iteration = st.iteration;
    /* From here on a stop can wait for a safe point. Before, the default action is right: nothing
     * is written yet, and mpirun ends the other processes of a failed start with SIGTERM. This
     * replaces StarPU's own SIGINT handler. */
    catch_stop_signals();
    for (int64_t it = first; it <= a.iters && !stop_signal; it++) {
        double t0 = timer_now_s() * 1e3;
        if (it == first + 1) t_steady = t0;
        if (it == a.trace_first) rt_trace_start();
        double lr = lr_at(&a.lr, it);
        float scale = (float)st.scaler.scale, sumsq;
        struct adamw_hparams hp = {(float)lr,    (float)a.beta1,        (float)a.beta2,
                                   (float)a.eps, (float)a.weight_decay, (int)st.adam_step + 1,
                                   1.0f / scale, (float)a.clip_grad};
        double loss_sum = 0;
        for (int micro = 0; micro < a.grad_accum; micro++) {
            float micro_loss;
            load_ranks(&train, (it - 1) * a.grad_accum + micro, &rk, N, in, tg);
            gpt_set_batch(m, in, tg);
            gpt_forward(m);
            gpt_backward(m, scale, micro, a.grad_accum);
            if (micro < a.grad_accum - 1) {
                gpt_step_stats(m, &micro_loss, NULL);
                loss_sum += micro_loss;
            }
        }
        gpt_update(m, &hp);
        gpt_step_stats(m, &loss, &sumsq);
        loss = (float)((loss_sum + loss) / a.grad_accum);
        double dt_ms = (timer_now_s() * 1e3) - t0;
        if (it == a.trace_last)
            rt_trace_stop(); /* after the timing: the wait for the optimizer's tail is not the
                                step's */

        int overflow = !isfinite(sumsq);
        float grad_norm = sqrtf(sumsq) / scale;
        skipped_total += overflow;
        nan_total += isnan(sumsq) || isnan(loss);
        if (!overflow) st.adam_step++;
        loss_scaler_update(&st.scaler, overflow);
        st.iteration = it;
        interval_loss += loss;
        interval_n++;

        double tokens_s = (double)N * micro_per_step / (dt_ms / 1e3),
               tflops = flops * micro_per_step / (dt_ms / 1e3) / ngpu / 1e12;
        if (metrics) {
            fprintf(metrics,
                    "{\"iteration\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"loss_scale\": %.9g, "
                    "\"grad_norm\": %.9g, \"skipped\": %s, \"elapsed_ms\": %.3f, "
                    "\"tokens_per_s\": %.1f, \"tflops\": %.4f}\n",
                    (long long)it, loss, lr, scale, isfinite(grad_norm) ? grad_norm : -1.0,
                    overflow ? "true" : "false", dt_ms, tokens_s, tflops);
            check_written(metrics, metrics_what);
        }
        if (it % a.log_interval == 0 || it == a.iters) {
            printf(" iteration %8lld/%8lld | consumed samples: %12lld | elapsed time per iteration "
                   "(ms): %.1f | learning rate: %.3E | global batch size: %5d | lm loss: %.6E | "
                   "loss scale: %.1f | grad norm: %.3f | number of skipped iterations: %3lld | "
                   "number of nan iterations: %3lld | TFLOP/s per %s: %.2f | tokens/s: %.0f\n",
                   (long long)it, (long long)a.iters, (long long)(it * a.B * micro_per_step), dt_ms,
                   lr, a.B * micro_per_step, interval_loss / interval_n, scale, grad_norm,
                   (long long)skipped_total, (long long)nan_total, per, tflops, tokens_s);
            interval_loss = 0;
            interval_n = 0;
            check_written(stdout, "the log (stdout)");
        }
        if (have_val && a.eval_interval > 0 && it % a.eval_interval == 0) {
            val_loss = (float)evaluate(m, &val, a.eval_iters, &rk, N, in, tg);
            printf(" validation loss at iteration %lld | lm loss value: %.6E | lm loss PPL: %.6E\n",
                   (long long)it, val_loss, exp(val_loss));
        }
        if (a.save && a.save_interval > 0 && it % a.save_interval == 0 && it != a.iters)
            save_checkpoint(m, &a, &st);
    }
    /* the last optimizer step (CPU AdamW, swap-out) may still run: it belongs to the run's time */
    rt_wait_all();
    if (stop_signal) { /* the statistics of an interrupted run would mislead: only what was kept */
        if (a.save && st.iteration > saved_iteration) save_checkpoint(m, &a, &st);
        char kept[4200] = "no checkpoint kept (no --save)";
        if (a.save)
            snprintf(kept, sizeof kept, "the checkpoint %s holds iteration %lld", a.save,
                     (long long)saved_iteration);
        fprintf(stderr, "gpt50b: stopped by %s after iteration %lld: %s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)st.iteration, kept,
                a.optim_tier == TIER_NVME ? "; swap folder removed" : "");
        goto cleanup;
    }
    double t_end = timer_now_s() * 1e3;
    int64_t done = a.iters - first + 1;
    int evaluated_last = a.eval_interval > 0 && a.iters % a.eval_interval == 0;
    if (done > 0 && have_val && !evaluated_last) {
        val_loss = (float)evaluate(m, &val, a.eval_iters, &rk, N, in, tg);
        printf(" validation loss at the end of training | lm loss value: %.6E | lm loss PPL: "
               "%.6E\n",
               val_loss, exp(val_loss));
    }
    if (a.save && (done > 0 || a.iters == 0)) save_checkpoint(m, &a, &st); /* 0: initial weights */
    if (done > 0) {
        double steady_ms = done > 1 ? (t_end - t_steady) / (done - 1) : t_end - t_start;
        char val[64] = "";
        if (have_val) snprintf(val, sizeof val, " | validation loss %.4f", val_loss);
        printf("> done: %lld iterations in %.1f s on %s | %.1f ms per iteration after the first | "
               "%.0f tokens/s | %.2f TFLOP/s per %s | final lm loss %.4f%s | skipped %lld\n",
               (long long)done, (t_end - t_start) / 1e3, rt_device_name(), steady_ms,
               (double)N * micro_per_step / (steady_ms / 1e3),
               flops * micro_per_step / (steady_ms / 1e3) / ngpu / 1e12, per, loss, val,
               (long long)skipped_total);
    }
    if (comm && done > 0) {
        /* the time inside the collective tasks, and of it in MPI/NCCL, which holds the wait for
         * the other processes (evaluation's collectives count too) */
        static const char *const names[COMM_NOPS] = {"all-gather", "reduce-scatter", "all-reduce"};
        struct comm_stats cs = comm_stats(comm);
        printf("> collectives of process 0, per iteration:");
        for (int op = 0; op < COMM_NOPS; op++)
            printf("%s %.1f %s, %.3f ms each (%.3f in %s)", op ? ";" : "",
                   (double)cs.count[op] / done, names[op],
                   cs.count[op] ? 1e3 * cs.task_s[op] / cs.count[op] : 0.0,
                   cs.count[op] ? 1e3 * cs.wire_s[op] / cs.count[op] : 0.0,
                   rt_ncuda() > 0 ? "NCCL" : "MPI");
        printf("; loss all-reduce on the host %.1f, %.3f ms each\n", (double)cs.host_count / done,
               cs.host_count ? 1e3 * cs.host_s / cs.host_count : 0.0);
    }
    if (a.optim_tier == TIER_NVME && done > 0) {
        /* the engine counts this process's ranks, the plan one rank */
        uint64_t r, w, k, local = a.world_size > 1 ? (uint64_t)a.num_gpus : 1;
        state_nvme_traffic(gpt_get_state(m), &r, &w, &k);
        printf("> NVMe optimizer traffic: %.3f GB read, %.3f GB written per iteration (plan: %.3f "
               "GB each way; %.3f GB without the resident share); skipped steps left %.3f GB "
               "unwritten\n",
               (r - nvme_read0) / 1e9 / done, (w - nvme_written0) / 1e9 / done,
               local * plan.nvme_read / 1e9, local * plan.nvme_read_swapped / 1e9,
               (k - nvme_kept0) / 1e9);
    }
    if (done > 0) {
        printf("> memory of process 0 (of %d): peak resident set %.1f MB; StarPU's buffers: %.1f "
               "MB in RAM",
               launch.size, rt_peak_rss_bytes() / 1e6, rt_starpu_bytes_used(-1) / 1e6);
        for (int g = 0; g < rt_ncuda(); g++)
            printf(", %.1f MB on GPU %d", rt_starpu_bytes_used(g) / 1e6, g);
        printf("\n");
    }
cleanup:
    if (metrics && fclose(metrics) != 0)
        user_fail("--metrics %s: cannot write: %s: free space or choose another file", a.metrics,
                  strerror(errno));
    check_written(stdout, "the log (stdout)");
    free(in);
    free(tg);
    gpt_destroy(m);
    if (comm) comm_destroy(comm);
    loader_free(&train);
    if (have_val) loader_free(&val);
    dataset_close(data);
    rt_shutdown();
    check_trace_written(trace_dir);
    return stop_signal ? 128 + stop_signal : 0;
}
