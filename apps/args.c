/* args.c: gpt50b's flags: the --help text, and one table row per flag naming the setting it
 * sets, its kind and its minimum. Most flags are a number or a path; the few that do more (a
 * choice of words, a preset, a precision, a split, an iteration range) are parsed by name. */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "process.h"

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
    "  --nvme-path DIR[,DIR...]       folder(s) for this run's swap files (nvme); several: one\n"
    "                                 per drive, the files spread over them\n"
    "  --swap-buffer-count N          RAM buffer sets cycled through the swap (default 4)\n"
    "  --nvme-resident-fraction X|auto  share of the optimizer state kept in RAM (default: the\n"
    "                                 plan's, what RAM holds after everything else); auto: the\n"
    "                                 share at which disk and CPU AdamW times balance, at rates\n"
    "                                 measured at start (--machine's in a simulation)\n"
    "  --offload-param none|cpu       fp16 parameters and gradients in pinned CPU memory, each\n"
    "                                 layer's moved to the GPU a layer ahead of use and evicted\n"
    "                                 first after it\n"
    "  --optimizer-chunk-size N       elements per CPU AdamW task: large tensors step in\n"
    "                                 pieces shared by the CPU workers (default 8388608)\n"
    "  --delayed-param-update         ZeRO-Offload's delayed parameter update: each step's CPU\n"
    "                                 AdamW runs beside the next iteration, which uses the\n"
    "                                 parameters one step older (one GPU, --offload-optimizer\n"
    "                                 cpu or nvme, fp16/bf16; off by default)\n"
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
    "  --machine NAME|PATH            a described machine (scripts/machines/NAME.json, or a\n"
    "                                 file): --dry-run plans for its GPUs, RAM and NVMe; the\n"
    "                                 simulation build simulates it (docs/simulation.md)\n"
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

enum flag_kind {
    FLAG_INT,    /* an int setting, at least num */
    FLAG_INT64,  /* an int64_t (or uint64_t) setting, at least num */
    FLAG_REAL,   /* a double setting, at least num */
    FLAG_TEXT,   /* a path or file name */
    FLAG_SET,    /* no value: sets the int setting to num */
    FLAG_CHOICE, /* one of words[]: the setting (an int or enum) takes its index */
    FLAG_OTHER,  /* a value, parsed by name: parse_other */
    FLAG_BARE,   /* no value, handled by name: parse_other */
};

struct flag {
    const char *name;
    enum flag_kind kind;
    enum setting id;          /* SETTING_N: none (read elsewhere, or not a setting) */
    double num;               /* the minimum, or FLAG_SET's value */
    const char *const *words; /* FLAG_CHOICE, NULL-terminated */
    const char *alias;        /* another name of the same flag */
};

/* Indexes are the settings' values. */
static const char *const decay_styles[] = {[LR_DECAY_CONSTANT] = "constant",
                                           [LR_DECAY_LINEAR] = "linear",
                                           [LR_DECAY_COSINE] = "cosine",
                                           NULL};
static const char *const data_orders[] = {"sequential", "shuffle", NULL};
static const char *const optim_tiers[] = {
    [TIER_GPU] = "none", [TIER_CPU] = "cpu", [TIER_NVME] = "nvme", NULL};
static const char *const param_tiers[] = {"none", "cpu", NULL};

static const struct flag flags[] = {
    {"preset", FLAG_OTHER, .id = SETTING_N},
    {"num-layers", FLAG_INT, SETTING_LAYERS, .num = 1},
    {"hidden-size", FLAG_INT, SETTING_HIDDEN, .num = 1},
    {"num-attention-heads", FLAG_INT, SETTING_HEADS, .num = 1},
    {"seq-length", FLAG_INT, SETTING_SEQ_LENGTH, .num = 1},
    {"max-position-embeddings", FLAG_INT, SETTING_MAX_POSITIONS, .num = 1},
    {"vocab-size", FLAG_INT, SETTING_VOCAB, .num = 2},
    {"make-vocab-size-divisible-by", FLAG_INT, SETTING_VOCAB_DIVISOR, .num = 1},
    {"micro-batch-size", FLAG_INT, SETTING_MICRO_BATCH, .num = 1},
    {"train-iters", FLAG_INT64, SETTING_TRAIN_ITERS, .num = 0},
    {"lr", FLAG_REAL, SETTING_LR, .num = 0},
    {"min-lr", FLAG_REAL, SETTING_MIN_LR, .num = 0},
    {"lr-decay-style", FLAG_CHOICE, SETTING_LR_DECAY_STYLE, .words = decay_styles},
    {"lr-decay-iters", FLAG_INT64, SETTING_LR_DECAY_ITERS, .num = 1},
    {"lr-warmup-fraction", FLAG_OTHER, .id = SETTING_LR_WARMUP_FRACTION},
    {"lr-warmup-iters", FLAG_INT64, SETTING_LR_WARMUP_ITERS, .num = 0},
    {"weight-decay", FLAG_REAL, SETTING_WEIGHT_DECAY, .num = 0},
    {"clip-grad", FLAG_REAL, SETTING_CLIP_GRAD, .num = 0},
    {"adam-beta1", FLAG_REAL, SETTING_ADAM_BETA1, .num = 0},
    {"adam-beta2", FLAG_REAL, SETTING_ADAM_BETA2, .num = 0},
    {"adam-eps", FLAG_REAL, SETTING_ADAM_EPS, .num = 0},
    {"fp16", FLAG_BARE, .id = SETTING_DTYPE},
    {"bf16", FLAG_BARE, .id = SETTING_DTYPE},
    {"loss-scale", FLAG_REAL, SETTING_LOSS_SCALE, .num = 0},
    {"initial-loss-scale", FLAG_REAL, SETTING_INITIAL_LOSS_SCALE, .num = 1},
    {"min-loss-scale", FLAG_REAL, SETTING_MIN_LOSS_SCALE, .num = 0},
    {"loss-scale-window", FLAG_INT64, SETTING_LOSS_SCALE_WINDOW, .num = 1},
    {"hysteresis", FLAG_INT, SETTING_HYSTERESIS, .num = 1},
    {"checkpoint-activations", FLAG_SET, SETTING_CHECKPOINTING, .num = 1},
    {"checkpoint-in-cpu", FLAG_SET, SETTING_CKPT_IN_CPU, .num = 1},
    {"tile-size", FLAG_INT, SETTING_TILE_SIZE, .num = 0},
    {"seed", FLAG_INT64, SETTING_SEED, .num = 0},
    {"data-path", FLAG_TEXT, .id = SETTING_DATA_PATH},
    {"split", FLAG_OTHER, .id = SETTING_SPLIT},
    {"data-order", FLAG_CHOICE, SETTING_DATA_SHUFFLE, .words = data_orders},
    {"load", FLAG_TEXT, .id = SETTING_LOAD},
    {"save", FLAG_TEXT, .id = SETTING_SAVE},
    {"save-interval", FLAG_INT64, SETTING_SAVE_INTERVAL, .num = 1},
    {"no-save-optim", FLAG_SET, SETTING_SAVE_OPTIM, .num = 0},
    {"log-interval", FLAG_INT64, SETTING_LOG_INTERVAL, .num = 1},
    {"eval-interval", FLAG_INT64, SETTING_EVAL_INTERVAL, .num = 0},
    {"eval-iters", FLAG_INT64, SETTING_EVAL_ITERS, .num = 0},
    {"metrics", FLAG_TEXT, .id = SETTING_METRICS},
    {"offload-optimizer", FLAG_CHOICE, SETTING_OPTIM_TIER, .words = optim_tiers},
    {"nvme-path", FLAG_TEXT, .id = SETTING_NVME_PATH},
    {"swap-buffer-count", FLAG_INT, SETTING_SWAP_BUFFERS, .num = 1},
    {"nvme-resident-fraction", FLAG_OTHER, .id = SETTING_RESIDENT_FRACTION},
    {"offload-param", FLAG_CHOICE, SETTING_PARAM_OFFLOAD, .words = param_tiers},
    {"optimizer-chunk-size", FLAG_INT64, SETTING_OPTIM_CHUNK, .num = 0},
    {"delayed-param-update", FLAG_SET, SETTING_DELAYED_UPDATE, .num = 1},
    {"deepspeed_config", FLAG_OTHER, SETTING_N, .alias = "deepspeed-config"},
    {"strict-config", FLAG_BARE, .id = SETTING_N},
    {"dry-run", FLAG_SET, SETTING_DRY_RUN, .num = 1},
    {"machine", FLAG_TEXT, .id = SETTING_MACHINE},
    {"world-size", FLAG_INT, SETTING_WORLD_SIZE, .num = 1},
    {"num-gpus", FLAG_INT, SETTING_NUM_GPUS, .num = 1},
    {"ranks-per-node", FLAG_INT, SETTING_RANKS_PER_NODE, .num = 1},
    {"gradient-accumulation-steps", FLAG_INT, SETTING_GRAD_ACCUM, .num = 1},
    {"global-batch-size", FLAG_INT64, SETTING_GLOBAL_BATCH, .num = 1},
    {"trace", FLAG_OTHER, .id = SETTING_TRACE},
    {"help", FLAG_BARE, .id = SETTING_N},
};
#define NFLAGS (sizeof flags / sizeof flags[0])
/* getopt_long's values: flags[i] (and its alias) returns FIRST_FLAG + i, above any character. */
enum { FIRST_FLAG = 256 };

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

/* Writes the n bytes at v into setting id of the flags' values, whose size must be n. */
static void store(struct settings_flags *f, enum setting id, const void *v, size_t n)
{
    size_t size;
    void *field = settings_field(&f->value, id, &size);
    CHECK(size == n);
    memcpy(field, v, n);
}

/* The index of word in words[], or a one-line error listing them ("choose a, b or c"). */
static int parse_choice(const char *flag, const char *word, const char *const *words)
{
    char list[128] = "";
    size_t len = 0;
    int n = 0;
    while (words[n])
        n++;
    for (int i = 0; i < n; i++) {
        if (strcmp(word, words[i]) == 0) return i;
        len += snprintf(list + len, sizeof list - len, "%s%s",
                        i == 0      ? ""
                        : i < n - 1 ? ", "
                                    : " or ",
                        words[i]);
    }
    user_fail("%s %s: choose %s", flag, word, list);
}

static void parse_split(struct settings_flags *f, const char *s)
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
    memcpy(f->value.split, w, sizeof w);
}

static void parse_trace(struct settings_flags *f, const char *s)
{
    long long first, last;
    char tail;
    int n = sscanf(s, "%lld:%lld%c", &first, &last, &tail);
    if (n == 1 && sscanf(s, "%lld%c", &first, &tail) == 1)
        last = first;
    else if (n != 2)
        user_fail("--trace %s: give FIRST:LAST (iterations, e.g. 3:4) or one iteration", s);
    if (first < 1 || last < first)
        user_fail("--trace %s: iterations count from 1 and LAST >= FIRST", s);
    f->value.trace.first = first;
    f->value.trace.last = last;
}

/* The flags that are more than a number, a path or a choice. pos: the argv index after the
 * flag. */
static void parse_other(struct settings_flags *f, const struct flag *fl, const char *flag,
                        const char *value, int pos)
{
    const char *name = fl->name;
    if (strcmp(name, "preset") == 0) {
        if (!settings_preset_exists(value))
            user_fail("unknown --preset %s: choose tiny, gpt2-124m, sc21-small or gpt50b", value);
        f->preset = value;
        f->preset_pos = pos;
        return;
    }
    if (strcmp(name, "fp16") == 0 || strcmp(name, "bf16") == 0) {
        enum dtype dt = name[0] == 'f' ? DTYPE_FP16 : DTYPE_BF16;
        /* the other one after the last --preset, which overrides what came before it */
        if (f->pos[SETTING_DTYPE] > f->preset_pos && f->value.dt != dt)
            user_fail("--fp16 and --bf16 contradict each other: give one of them");
        f->value.dt = dt;
    } else if (strcmp(name, "lr-warmup-fraction") == 0) {
        f->value.lr_warmup_fraction = parse_float(flag, value, 0);
        if (f->value.lr_warmup_fraction > 1)
            user_fail("--lr-warmup-fraction %g: give a fraction of the decay iterations, "
                      "between 0 and 1",
                      f->value.lr_warmup_fraction);
        f->value.lr_warmup_iters = -1; /* the fraction, not an earlier --lr-warmup-iters */
        settings_flags_mark(f, SETTING_LR_WARMUP_ITERS, flag, pos);
    } else if (strcmp(name, "nvme-resident-fraction") == 0) {
        char *end = NULL;
        int is_auto = strcmp(value, "auto") == 0;
        double v = is_auto ? SETTINGS_RESIDENT_AUTO : strtod(value, &end);
        if (!is_auto && (end == value || *end || !(v >= 0 && v <= 1)))
            user_fail("--nvme-resident-fraction %s: give a share between 0 and 1, or auto", value);
        f->value.resident_fraction = v;
    } else if (strcmp(name, "split") == 0) {
        parse_split(f, value);
    } else if (strcmp(name, "trace") == 0) {
        parse_trace(f, value);
    } else if (strcmp(name, "help") == 0) {
        fputs(usage, stdout);
        process_exit(0);
    } else {
        return; /* --deepspeed_config, --strict-config: read before the other flags */
    }
    settings_flags_mark(f, fl->id, flag, pos);
}

/* One flag and its value (NULL for those without one). */
static void parse_flag(struct settings_flags *f, const struct flag *fl, const char *flag,
                       const char *value, int pos)
{
    switch (fl->kind) {
    case FLAG_INT: {
        int v = (int)parse_int(flag, value, (long long)fl->num);
        store(f, fl->id, &v, sizeof v);
        break;
    }
    case FLAG_INT64: {
        int64_t v = parse_int(flag, value, (long long)fl->num);
        store(f, fl->id, &v, sizeof v);
        break;
    }
    case FLAG_REAL: {
        double v = parse_float(flag, value, fl->num);
        store(f, fl->id, &v, sizeof v);
        break;
    }
    case FLAG_TEXT:
        store(f, fl->id, &value, sizeof value);
        break;
    case FLAG_SET: {
        int v = (int)fl->num;
        store(f, fl->id, &v, sizeof v);
        break;
    }
    case FLAG_CHOICE: {
        int v = parse_choice(flag, value, fl->words);
        store(f, fl->id, &v, sizeof v);
        break;
    }
    case FLAG_OTHER:
    case FLAG_BARE:
        parse_other(f, fl, flag, value, pos);
        return;
    }
    settings_flags_mark(f, fl->id, flag, pos);
}

void args_prescan_config(int argc, char **argv, const char **path, int *strict)
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

void args_parse(struct settings_flags *f, int argc, char **argv)
{
    struct option options[2 * NFLAGS + 1] = {{0}};
    size_t n = 0;
    for (size_t i = 0; i < NFLAGS; i++) {
        int has_arg = flags[i].kind == FLAG_SET || flags[i].kind == FLAG_BARE ? no_argument
                                                                              : required_argument;
        options[n++] = (struct option){flags[i].name, has_arg, 0, FIRST_FLAG + (int)i};
        if (flags[i].alias)
            options[n++] = (struct option){flags[i].alias, has_arg, 0, FIRST_FLAG + (int)i};
    }
    int c, idx;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", options, &idx)) != -1) {
        if (c == ':') user_fail("%s needs a value: see --help", argv[optind - 1]);
        if (c < FIRST_FLAG) user_fail("unknown flag %s: see --help", argv[optind - 1]);
        /* idx is only set for a recognised flag that got its value */
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", options[idx].name);
        parse_flag(f, &flags[c - FIRST_FLAG], flag, optarg, optind);
    }
    if (optind < argc) user_fail("unexpected argument %s: see --help", argv[optind]);
}
