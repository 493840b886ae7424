/* settings.c: resolving the run's settings (see settings.h for the precedence), the presets, and
 * the settings as the plan's inputs. */
#include "settings.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "check.h"

/* Where each setting lives in struct settings, for the flags' values copied by id. */
#define FIELD(id, member)                                                                          \
    [id] = {offsetof(struct settings, member), sizeof(((struct settings *)0)->member)}
static const struct {
    size_t offset, size;
} fields[SETTING_N] = {
    FIELD(SETTING_LAYERS, L),
    FIELD(SETTING_HIDDEN, C),
    FIELD(SETTING_HEADS, NH),
    FIELD(SETTING_SEQ_LENGTH, T),
    FIELD(SETTING_MAX_POSITIONS, maxT),
    FIELD(SETTING_VOCAB, V),
    FIELD(SETTING_VOCAB_DIVISOR, vocab_divisor),
    FIELD(SETTING_MICRO_BATCH, B),
    FIELD(SETTING_GRAD_ACCUM, grad_accum),
    FIELD(SETTING_GLOBAL_BATCH, global_batch),
    FIELD(SETTING_NUM_GPUS, num_gpus),
    FIELD(SETTING_WORLD_SIZE, world_size),
    FIELD(SETTING_RANKS_PER_NODE, ranks_per_node),
    FIELD(SETTING_TRAIN_ITERS, iters),
    FIELD(SETTING_LR, lr),
    FIELD(SETTING_MIN_LR, min_lr),
    FIELD(SETTING_LR_DECAY_STYLE, lr_decay_style),
    FIELD(SETTING_LR_DECAY_ITERS, lr_decay_iters),
    FIELD(SETTING_LR_WARMUP_FRACTION, lr_warmup_fraction),
    FIELD(SETTING_LR_WARMUP_ITERS, lr_warmup_iters),
    FIELD(SETTING_WEIGHT_DECAY, weight_decay),
    FIELD(SETTING_CLIP_GRAD, clip_grad),
    FIELD(SETTING_ADAM_BETA1, beta1),
    FIELD(SETTING_ADAM_BETA2, beta2),
    FIELD(SETTING_ADAM_EPS, eps),
    FIELD(SETTING_SEED, seed),
    FIELD(SETTING_DTYPE, dt),
    FIELD(SETTING_LOSS_SCALE, loss_scale),
    FIELD(SETTING_INITIAL_LOSS_SCALE, initial_loss_scale),
    FIELD(SETTING_MIN_LOSS_SCALE, min_loss_scale),
    FIELD(SETTING_LOSS_SCALE_WINDOW, loss_scale_window),
    FIELD(SETTING_HYSTERESIS, hysteresis),
    FIELD(SETTING_CHECKPOINTING, checkpointing),
    FIELD(SETTING_CKPT_IN_CPU, ckpt_in_cpu),
    FIELD(SETTING_TILE_SIZE, tile_size),
    FIELD(SETTING_OPTIM_TIER, optim_tier),
    FIELD(SETTING_GRADS_TIER, grads_tier),
    FIELD(SETTING_PARAM_OFFLOAD, param_offload),
    FIELD(SETTING_NVME_PATH, nvme_path),
    FIELD(SETTING_SWAP_BUFFERS, swap_buffers),
    FIELD(SETTING_RESIDENT_FRACTION, resident_fraction),
    FIELD(SETTING_OPTIM_CHUNK, optim_chunk),
    FIELD(SETTING_DELAYED_UPDATE, delayed_update),
    FIELD(SETTING_PIN_PARAMS, pin_params),
    FIELD(SETTING_PIN_OPTIM, pin_optim),
    FIELD(SETTING_PARAM_BUFFER_COUNT, param_buffer_count),
    FIELD(SETTING_PARAM_BUFFER_SIZE, param_buffer_size),
    FIELD(SETTING_SUB_GROUP_SIZE, sub_group_size),
    FIELD(SETTING_PREFETCH, prefetch),
    FIELD(SETTING_MAX_LIVE_PARAMETERS, max_live_parameters),
    FIELD(SETTING_AIO_BLOCK_SIZE, aio.block_size),
    FIELD(SETTING_AIO_QUEUE_DEPTH, aio.queue_depth),
    FIELD(SETTING_AIO_THREADS, aio.threads),
    FIELD(SETTING_AIO_SINGLE_SUBMIT, aio.single_submit),
    FIELD(SETTING_AIO_OVERLAP_EVENTS, aio.overlap_events),
    FIELD(SETTING_DATA_PATH, data_path),
    FIELD(SETTING_SPLIT, split),
    FIELD(SETTING_DATA_SHUFFLE, data_shuffle),
    FIELD(SETTING_LOAD, load),
    FIELD(SETTING_SAVE, save),
    FIELD(SETTING_SAVE_INTERVAL, save_interval),
    FIELD(SETTING_SAVE_OPTIM, save_optim),
    FIELD(SETTING_LOG_INTERVAL, log_interval),
    FIELD(SETTING_EVAL_INTERVAL, eval_interval),
    FIELD(SETTING_EVAL_ITERS, eval_iters),
    FIELD(SETTING_METRICS, metrics),
    FIELD(SETTING_TRACE, trace),
    FIELD(SETTING_DRY_RUN, dry_run),
    FIELD(SETTING_MACHINE, machine),
};
#undef FIELD

void *settings_field(struct settings *s, enum setting id, size_t *size)
{
    CHECK((unsigned)id < SETTING_N && fields[id].size > 0);
    if (size) *size = fields[id].size;
    return (char *)s + fields[id].offset;
}

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

static const struct preset *find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

int settings_preset_exists(const char *name)
{
    return find_preset(name) != NULL;
}

void settings_flags_init(struct settings_flags *f)
{
    memset(f, 0, sizeof *f);
    f->preset = "tiny";
}

void settings_flags_mark(struct settings_flags *f, enum setting id, const char *flag, int pos)
{
    CHECK((unsigned)id < SETTING_N && pos > 0);
    setting_origin_set(&f->value.origin[id], SOURCE_FLAG, flag);
    f->pos[id] = pos;
}

/* Records where setting id came from; a setting of the shape also gives the shape's origin. */
static void set_origin(struct settings *s, enum setting id, const struct setting_origin *o)
{
    s->origin[id] = *o;
    if (id <= SETTING_VOCAB) s->model_origin = *o;
}

/* The built-in defaults, under everything else. */
static void defaults(struct settings *s)
{
    memset(s, 0, sizeof *s);
    s->V = 50257; /* GPT-2's BPE vocabulary */
    s->vocab_divisor = 128;
    s->grad_accum = 1;
    s->num_gpus = 1;
    s->world_size = 1;
    s->clip_grad = 1.0;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->seed = 1234;
    s->initial_loss_scale = 65536; /* DeepSpeed's initial_scale_power 16 */
    s->min_loss_scale = 1;
    s->loss_scale_window = 1000;
    s->hysteresis = 2;
    s->swap_buffers = 4; /* DeepSpeed's optimizer_buffer_count */
    s->resident_fraction = -1;
    s->optim_chunk = 1 << 23;
    s->aio.block_size = s->aio.queue_depth = s->aio.threads = -1;
    s->aio.single_submit = s->aio.overlap_events = -1;
    s->data_path = "data/brown.bin";
    s->split[0] = 949;
    s->split[1] = 50;
    s->split[2] = 1;
    s->save_optim = 1;
    s->log_interval = 1;
    for (int id = 0; id < SETTING_N; id++)
        setting_origin_set(&s->origin[id], SOURCE_DEFAULT, NULL);
    setting_origin_set(&s->model_origin, SOURCE_DEFAULT, NULL);
}

static void apply_preset(struct settings *s, const char *name)
{
    static const enum setting set_by_preset[] = {SETTING_LAYERS,
                                                 SETTING_HIDDEN,
                                                 SETTING_HEADS,
                                                 SETTING_MAX_POSITIONS,
                                                 SETTING_SEQ_LENGTH,
                                                 SETTING_MICRO_BATCH,
                                                 SETTING_DTYPE,
                                                 SETTING_CHECKPOINTING,
                                                 SETTING_TRAIN_ITERS,
                                                 SETTING_LR,
                                                 SETTING_MIN_LR,
                                                 SETTING_LR_DECAY_STYLE,
                                                 SETTING_LR_WARMUP_FRACTION,
                                                 SETTING_LR_WARMUP_ITERS,
                                                 SETTING_WEIGHT_DECAY,
                                                 SETTING_EVAL_INTERVAL,
                                                 SETTING_EVAL_ITERS,
                                                 SETTING_PARAM_OFFLOAD,
                                                 SETTING_CKPT_IN_CPU,
                                                 SETTING_OPTIM_TIER};
    const struct preset *p = find_preset(name);
    CHECK(p);
    s->L = p->L;
    s->C = p->C;
    s->NH = p->NH;
    s->maxT = p->maxT;
    s->T = p->T;
    s->B = p->B;
    s->dt = p->dt;
    s->checkpointing = p->checkpointing;
    s->iters = p->iters;
    s->lr = p->lr;
    s->min_lr = p->min_lr;
    s->lr_decay_style = p->style;
    s->lr_warmup_fraction = p->warmup_fraction;
    s->lr_warmup_iters = -1;
    s->weight_decay = p->weight_decay;
    s->eval_interval = p->eval_interval;
    s->eval_iters = p->eval_iters;
    /* the SC21 run: fp16 parameters in CPU memory, optimizer state on NVMe */
    s->param_offload = p->L == 62;
    s->ckpt_in_cpu = p->L == 62;
    s->optim_tier = p->L == 62 ? TIER_NVME : TIER_GPU;
    struct setting_origin o;
    setting_origin_set(&o, SOURCE_PRESET, name);
    for (size_t i = 0; i < sizeof set_by_preset / sizeof set_by_preset[0]; i++)
        set_origin(s, set_by_preset[i], &o);
}

/* True when the config gave key k; then it is the origin of setting id. */
static int from_config(struct settings *s, const struct ds_config *d, enum ds_setting k,
                       enum setting id)
{
    if (d->origin[k].source != SOURCE_CONFIG) return 0;
    set_origin(s, id, &d->origin[k]);
    return 1;
}

/* The config's keys over the preset: only those it gives, except the settings that no flag or
 * preset has, which take the config's value or DeepSpeed's default. */
static void apply_config(struct settings *s, const struct ds_config *d)
{
    static const struct {
        enum ds_setting k;
        enum setting id;
    } config_only[] = {
        {DS_PARAM_PIN_MEMORY, SETTING_PIN_PARAMS},
        {DS_OPTIM_PIN_MEMORY, SETTING_PIN_OPTIM},
        {DS_PARAM_BUFFER_COUNT, SETTING_PARAM_BUFFER_COUNT},
        {DS_PARAM_BUFFER_SIZE, SETTING_PARAM_BUFFER_SIZE},
        {DS_SUB_GROUP_SIZE, SETTING_SUB_GROUP_SIZE},
        {DS_PREFETCH_BUCKET_SIZE, SETTING_PREFETCH},
    };
    if (from_config(s, d, DS_MICRO_BATCH, SETTING_MICRO_BATCH)) s->B = (int)d->micro_batch;
    if (from_config(s, d, DS_GRAD_ACCUM, SETTING_GRAD_ACCUM)) s->grad_accum = (int)d->grad_accum;
    if (from_config(s, d, DS_GRAD_CLIP, SETTING_CLIP_GRAD)) s->clip_grad = d->grad_clip;
    if (from_config(s, d, DS_PRECISION, SETTING_DTYPE)) s->dt = d->precision;
    if (from_config(s, d, DS_LOSS_SCALE, SETTING_LOSS_SCALE)) s->loss_scale = d->loss_scale;
    if (from_config(s, d, DS_INITIAL_SCALE_POWER, SETTING_INITIAL_LOSS_SCALE))
        s->initial_loss_scale = ldexp(1.0, (int)d->initial_scale_power);
    if (from_config(s, d, DS_LOSS_SCALE_WINDOW, SETTING_LOSS_SCALE_WINDOW))
        s->loss_scale_window = d->loss_scale_window;
    if (from_config(s, d, DS_HYSTERESIS, SETTING_HYSTERESIS)) s->hysteresis = (int)d->hysteresis;
    if (from_config(s, d, DS_MIN_LOSS_SCALE, SETTING_MIN_LOSS_SCALE))
        s->min_loss_scale = d->min_loss_scale;
    if (from_config(s, d, DS_LR, SETTING_LR)) s->lr = d->lr;
    if (from_config(s, d, DS_BETA1, SETTING_ADAM_BETA1)) s->beta1 = d->beta1;
    if (from_config(s, d, DS_BETA2, SETTING_ADAM_BETA2)) s->beta2 = d->beta2;
    if (from_config(s, d, DS_EPS, SETTING_ADAM_EPS)) s->eps = d->eps;
    if (from_config(s, d, DS_WEIGHT_DECAY, SETTING_WEIGHT_DECAY)) s->weight_decay = d->weight_decay;
    /* the scheduler sets the decay and its floor, from the lr known so far */
    if (from_config(s, d, DS_SCHEDULER, SETTING_LR_DECAY_STYLE)) {
        set_origin(s, SETTING_MIN_LR, &d->origin[DS_SCHEDULER]);
        s->lr_decay_style = d->scheduler == DS_SCHEDULER_WARMUP_LR          ? LR_DECAY_CONSTANT
                            : d->scheduler == DS_SCHEDULER_WARMUP_DECAY_LR  ? LR_DECAY_LINEAR
                            : d->scheduler == DS_SCHEDULER_WARMUP_COSINE_LR ? LR_DECAY_COSINE
                                                                            : s->lr_decay_style;
        s->min_lr = d->scheduler == DS_SCHEDULER_WARMUP_COSINE_LR ? d->cos_min_ratio * s->lr : 0;
    }
    if (from_config(s, d, DS_WARMUP_MAX_LR, SETTING_LR)) s->lr = d->warmup_max_lr;
    if (from_config(s, d, DS_WARMUP_NUM_STEPS, SETTING_LR_WARMUP_ITERS))
        s->lr_warmup_iters = d->warmup_num_steps;
    if (from_config(s, d, DS_TOTAL_NUM_STEPS, SETTING_LR_DECAY_ITERS))
        s->lr_decay_iters = d->total_num_steps;
    if (from_config(s, d, DS_OPTIM_DEVICE, SETTING_OPTIM_TIER)) {
        set_origin(s, SETTING_GRADS_TIER, &d->origin[DS_OPTIM_DEVICE]);
        s->optim_tier = d->optim_device;
    }
    if (from_config(s, d, DS_OPTIM_NVME_PATH, SETTING_NVME_PATH)) s->nvme_path = d->optim_nvme_path;
    if (from_config(s, d, DS_OPTIM_BUFFER_COUNT, SETTING_SWAP_BUFFERS))
        s->swap_buffers = (int)d->optim_buffer_count;
    if (from_config(s, d, DS_PARAM_DEVICE, SETTING_PARAM_OFFLOAD))
        s->param_offload = d->param_device != TIER_GPU;
    if (from_config(s, d, DS_CPU_CHECKPOINTING, SETTING_CKPT_IN_CPU))
        s->ckpt_in_cpu = d->cpu_checkpointing;
    if (from_config(s, d, DS_MAX_LIVE_PARAMETERS, SETTING_MAX_LIVE_PARAMETERS))
        s->max_live_parameters = d->max_live_parameters;
    if (from_config(s, d, DS_AIO_BLOCK_SIZE, SETTING_AIO_BLOCK_SIZE))
        s->aio.block_size = d->aio_block_size;
    if (from_config(s, d, DS_AIO_QUEUE_DEPTH, SETTING_AIO_QUEUE_DEPTH))
        s->aio.queue_depth = d->aio_queue_depth;
    if (from_config(s, d, DS_AIO_THREADS, SETTING_AIO_THREADS)) s->aio.threads = d->aio_threads;
    if (from_config(s, d, DS_AIO_SINGLE_SUBMIT, SETTING_AIO_SINGLE_SUBMIT))
        s->aio.single_submit = d->aio_single_submit;
    if (from_config(s, d, DS_AIO_OVERLAP_EVENTS, SETTING_AIO_OVERLAP_EVENTS))
        s->aio.overlap_events = d->aio_overlap_events;
    s->pin_params = d->param_pin_memory;
    s->pin_optim = d->optim_pin_memory;
    s->param_buffer_count = (int)d->param_buffer_count;
    s->param_buffer_size = d->param_buffer_size;
    s->sub_group_size = d->sub_group_size;
    s->prefetch = d->prefetch_bucket_size;
    for (size_t i = 0; i < sizeof config_only / sizeof config_only[0]; i++)
        set_origin(s, config_only[i].id, &d->origin[config_only[i].k]);
}

/* The flags f marks with an argv index in (after, upto], in the order given: the last of several
 * shape flags names the shape's origin. */
static void apply_flags(struct settings *s, const struct settings_flags *f, int after, int upto)
{
    for (int pos = after + 1; pos <= upto; pos++)
        for (int id = 0; id < SETTING_N; id++) {
            if (f->pos[id] != pos) continue;
            memcpy((char *)s + fields[id].offset, (const char *)&f->value + fields[id].offset,
                   fields[id].size);
            set_origin(s, id, &f->value.origin[id]);
        }
}

/* The data-parallel world: the launch's processes x --num-gpus ranks each, which --world-size
 * (for training) and --global-batch-size must agree with. */
static int resolve_world(struct settings *s, int processes, int processes_on_node, char *err,
                         size_t errlen)
{
    int world = processes * s->num_gpus, W = s->world_size;
    if (s->origin[SETTING_WORLD_SIZE].source != SOURCE_FLAG) {
        s->world_size = world;
    } else if (!s->dry_run && W != world) {
        char fix[128] = "";
        if (W % processes == 0)
            snprintf(fix, sizeof fix, "give --num-gpus %d, ", W / processes);
        else if (W % s->num_gpus == 0)
            snprintf(fix, sizeof fix, "launch mpirun -np %d, ", W / s->num_gpus);
        snprintf(err, errlen,
                 "--world-size %d, but this run has %d process%s x --num-gpus %d = %d rank%s: "
                 "%sor drop --world-size",
                 W, processes, processes > 1 ? "es" : "", s->num_gpus, world, world > 1 ? "s" : "",
                 fix);
        return -1;
    }
    if (!s->ranks_per_node && processes > 1 && processes_on_node > 0)
        s->ranks_per_node = processes_on_node * s->num_gpus;
    if (!s->global_batch) return 0;
    int64_t per_micro = (int64_t)s->B * s->world_size;
    if (s->global_batch % per_micro != 0) {
        snprintf(err, errlen,
                 "--global-batch-size %lld is not a multiple of --micro-batch-size %d x %d "
                 "data-parallel ranks (%lld): change one of them",
                 (long long)s->global_batch, s->B, s->world_size, (long long)per_micro);
        return -1;
    }
    if (s->origin[SETTING_GRAD_ACCUM].source == SOURCE_FLAG &&
        s->grad_accum != s->global_batch / per_micro) {
        snprintf(err, errlen,
                 "--global-batch-size %lld is not --gradient-accumulation-steps %d x "
                 "--micro-batch-size %d x %d ranks: give one of the two",
                 (long long)s->global_batch, s->grad_accum, s->B, s->world_size);
        return -1;
    }
    s->grad_accum = (int)(s->global_batch / per_micro);
    setting_origin_set(&s->origin[SETTING_GRAD_ACCUM], SOURCE_FLAG, "--global-batch-size");
    return 0;
}

/* The config's train_batch_size against its own micro-batch and accumulation, as DeepSpeed
 * checks them. It is checked, not applied: an accumulation it implies (micro-batch given,
 * accumulation not) only becomes the origin the plan names for the run's own accumulation. */
static int check_batch(struct settings *s, const struct ds_config *ds, char *err, size_t errlen)
{
    struct ds_config batch = *ds;
    if (dsconfig_resolve_batch(&batch, s->world_size, err, errlen) != 0) return -1;
    if (s->origin[SETTING_GRAD_ACCUM].source == SOURCE_DEFAULT)
        s->origin[SETTING_GRAD_ACCUM] = batch.origin[DS_GRAD_ACCUM];
    return 0;
}

int settings_resolve(struct settings *s, const struct settings_flags *f, const struct ds_config *ds,
                     int processes, int processes_on_node, char *err, size_t errlen)
{
    int last = 0;
    for (int id = 0; id < SETTING_N; id++)
        if (f->pos[id] > last) last = f->pos[id];
    defaults(s);
    apply_flags(s, f, 0, f->preset_pos);
    apply_preset(s, f->preset);
    apply_config(s, ds);
    apply_flags(s, f, f->preset_pos, last);
    s->grads_tier = s->optim_tier == TIER_GPU ? TIER_GPU : TIER_CPU;
    if (resolve_world(s, processes, processes_on_node, err, errlen) != 0) return -1;
    return check_batch(s, ds, err, errlen);
}

struct gpt_config settings_model(const struct settings *s)
{
    return (struct gpt_config){.L = s->L,
                               .C = s->C,
                               .NH = s->NH,
                               .maxT = s->maxT,
                               .V = s->V,
                               .Vp = gpt_padded_vocab(s->V, s->vocab_divisor)};
}

struct lr_schedule settings_lr_schedule(const struct settings *s)
{
    struct lr_schedule lr = {.max_lr = s->lr, .min_lr = s->min_lr, .style = s->lr_decay_style};
    lr.decay_iters = s->lr_decay_iters ? s->lr_decay_iters : s->iters;
    lr.warmup_iters = s->lr_warmup_iters >= 0 ? s->lr_warmup_iters
                                              : (int64_t)(s->lr_warmup_fraction * lr.decay_iters);
    return lr;
}

void settings_loss_scaler(const struct settings *s, struct loss_scaler *scaler)
{
    int dynamic = s->dt == DTYPE_FP16 && s->loss_scale == 0;
    double scale0 = s->dt != DTYPE_FP16 ? 1.0 : dynamic ? s->initial_loss_scale : s->loss_scale;
    loss_scaler_init(scaler, dynamic, scale0, s->min_loss_scale, s->loss_scale_window,
                     s->hysteresis);
}

void settings_plan_input(const struct settings *s, int64_t swap_unit, struct plan_input *in)
{
    static const struct {
        enum plan_knob knob;
        enum setting id;
    } knobs[] = {
        {PLAN_KNOB_MICRO_BATCH, SETTING_MICRO_BATCH},
        {PLAN_KNOB_GRAD_ACCUM, SETTING_GRAD_ACCUM},
        {PLAN_KNOB_DTYPE, SETTING_DTYPE},
        {PLAN_KNOB_CHECKPOINTING, SETTING_CHECKPOINTING},
        {PLAN_KNOB_CKPT_IN_CPU, SETTING_CKPT_IN_CPU},
        {PLAN_KNOB_WORLD, SETTING_WORLD_SIZE},
        {PLAN_KNOB_TIER_PARAMS, SETTING_PARAM_OFFLOAD},
        {PLAN_KNOB_TIER_GRADS, SETTING_GRADS_TIER},
        {PLAN_KNOB_TIER_OPTIM, SETTING_OPTIM_TIER},
        {PLAN_KNOB_PIN_PARAMS, SETTING_PIN_PARAMS},
        {PLAN_KNOB_PIN_OPTIM, SETTING_PIN_OPTIM},
        {PLAN_KNOB_PARAM_BUFFERS, SETTING_PARAM_BUFFER_COUNT},
        {PLAN_KNOB_OPTIM_BUFFERS, SETTING_SWAP_BUFFERS},
        {PLAN_KNOB_SUB_GROUP, SETTING_SUB_GROUP_SIZE},
        {PLAN_KNOB_RESIDENT, SETTING_RESIDENT_FRACTION},
        {PLAN_KNOB_TILE, SETTING_TILE_SIZE},
        {PLAN_KNOB_PREFETCH, SETTING_PREFETCH},
    };
    plan_input_init(in);
    in->L = s->L;
    in->C = s->C;
    in->NH = s->NH;
    in->T = s->T;
    in->maxT = s->maxT;
    in->Vp = settings_model(s).Vp;
    in->B = s->B;
    in->grad_accum = s->grad_accum;
    in->dt = s->dt;
    in->checkpointing = s->checkpointing;
    in->ckpt_in_cpu = s->ckpt_in_cpu;
    in->delayed_update = s->delayed_update;
    in->world_size = s->world_size;
    in->ranks_per_node = s->ranks_per_node   ? s->ranks_per_node
                         : s->world_size > 8 ? 8
                                             : s->world_size;
    /* TIER_GPU is the compute device: the plan puts it on the CPU when there is no GPU */
    in->tier_params = s->param_offload ? TIER_CPU : TIER_GPU;
    in->tier_grads = s->grads_tier;
    in->tier_optim = s->optim_tier;
    in->grads_with_optim = 0; /* gradients stay in the model's dtype, apart from the state */
    in->pin_params = s->pin_params;
    in->pin_optim = s->pin_optim;
    in->param_buffer_count = s->param_buffer_count;
    in->param_buffer_size = s->param_buffer_size;
    in->optim_buffer_count = s->swap_buffers;
    in->optim_buffer_tensors = 3; /* each set holds a tensor's master, m and v */
    in->sub_group_size = swap_unit;
    in->resident_fraction = s->resident_fraction >= 0 ? s->resident_fraction : 1.0;
    in->tile = s->tile_size;
    in->prefetch = s->prefetch;
    in->origin[PLAN_KNOB_MODEL] = s->model_origin;
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        in->origin[knobs[i].knob] = s->origin[knobs[i].id];
}

void settings_note_config(const struct settings *s, const struct ds_config *ds, const char *path,
                          FILE *f)
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
    int many = s->world_size > 1;
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        const char *key = ds->origin[later[i].k].key;
        /* 2021 keys feed several settings (swap_tensor.folder is also the optimizer's folder,
         * which does take effect): name each key once, and only where it has no effect. The
         * whole key: zero_optimization.stage begins zero_optimization.stage3_... */
        char named[sizeof ds->origin[0].key + 2];
        snprintf(named, sizeof named, "%s (", key);
        if (ds->origin[later[i].k].source != SOURCE_CONFIG || strstr(line, named) ||
            (many && (later[i].k == DS_MAX_LIVE_PARAMETERS ||
                      (later[i].k == DS_ZERO_STAGE && ds->zero_stage == 3))) ||
            ((later[i].k == DS_PARAM_NVME_PATH || later[i].k == DS_PARAM_BUFFER_COUNT ||
              later[i].k == DS_PARAM_BUFFER_SIZE) &&
             ds->param_device != TIER_NVME) ||
            len >= sizeof line)
            continue;
        const char *why = many && later[i].many ? later[i].many : later[i].one;
        char ranks[32] = "";
        if (why == later[i].many) snprintf(ranks, sizeof ranks, "%d ranks: ", s->world_size);
        len += snprintf(line + len, sizeof line - len, "%s%s (%s%s)", len ? ", " : "", key, ranks,
                        why);
    }
    if (ds->param_device == TIER_NVME && len < sizeof line)
        len += snprintf(line + len, sizeof line - len, "%s%s nvme (parameters go to CPU memory)",
                        len ? ", " : "", ds->origin[DS_PARAM_DEVICE].key);
    if (len) fprintf(f, "note: %s: read but without effect in this version: %s\n", path, line);
}
