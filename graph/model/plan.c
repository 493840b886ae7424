/* plan.c: the memory plan (see plan.h for the model of memory it counts).
 *
 * plan_compute() is arithmetic on its input only, so every figure can be checked by a test; the
 * capacity helpers are the only functions that look at the machine (environment, /proc/meminfo,
 * statvfs). */
#include "plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fsdir.h"
#include "machine.h"
#include "model.h"

void plan_input_init(struct plan_input *in)
{
    memset(in, 0, sizeof *in);
    in->B = 1;
    in->grad_accum = 1;
    in->dt = DTYPE_FP32;
    in->world_size = 1;
    in->ranks_per_node = 1;
    in->tier_params = in->tier_grads = in->tier_optim = TIER_GPU;
    in->param_buffer_count = 5;
    in->param_buffer_size = 100000000;
    in->optim_buffer_count = 4;
    in->optim_buffer_tensors = 1;
    in->sub_group_size = 1000000000;
    in->resident_fraction = 1.0;
    in->ram_headroom = 0.1;
    in->prefetch = 50000000;
    for (int t = 0; t < NTIERS; t++) {
        in->cap[t].bytes = -1;
        setting_origin_set(&in->cap[t].origin, SOURCE_DEFAULT, "capacity unknown");
    }
    for (int k = 0; k < PLAN_NKNOBS; k++)
        setting_origin_set(&in->origin[k], SOURCE_DEFAULT, NULL);
}

/* A StarPU size variable in MiB: 0 and *bytes set when present and valid, 1 when unset. */
static int env_mib(const char *name, int64_t *bytes, char *err, size_t errlen)
{
    const char *s = getenv(name);
    if (!s || !*s) return 1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || v > INT64_MAX / (1 << 20)) {
        snprintf(err, errlen, "%s=%s: expected a size in MiB, e.g. %s=16000", name, s, name);
        return -1;
    }
    *bytes = (int64_t)v << 20;
    return 0;
}

int plan_capacity_gpu(struct plan_capacity *cap, int64_t card_bytes, char *err, size_t errlen)
{
    int64_t limit;
    int rc = env_mib("STARPU_LIMIT_CUDA_MEM", &limit, err, errlen);
    if (rc < 0) return -1;
    cap->bytes = card_bytes;
    setting_origin_set(&cap->origin, SOURCE_DEFAULT, card_bytes ? "the card's memory" : "no GPU");
    if (rc == 0 && card_bytes > 0 && limit < card_bytes) {
        cap->bytes = limit;
        setting_origin_set(&cap->origin, SOURCE_ENV, "STARPU_LIMIT_CUDA_MEM");
    }
    return 0;
}

int64_t plan_mem_available(void)
{
    long long kb = -1;
    char line[256];
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

int plan_capacity_ram(struct plan_capacity *cap, char *err, size_t errlen)
{
    int rc = env_mib("STARPU_LIMIT_CPU_MEM", &cap->bytes, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0) {
        setting_origin_set(&cap->origin, SOURCE_ENV, "STARPU_LIMIT_CPU_MEM");
        return 0;
    }
    cap->bytes = plan_mem_available();
    setting_origin_set(&cap->origin, SOURCE_DEFAULT,
                       cap->bytes < 0 ? "MemAvailable unknown" : "MemAvailable");
    return 0;
}

int plan_capacity_nvme(struct plan_capacity *cap, const char *folders, char *err, size_t errlen)
{
    cap->bytes = -1;
    setting_origin_set(&cap->origin, SOURCE_DEFAULT, "no NVMe folder");
    if (!folders || !*folders) return 0;
    char key[sizeof cap->origin.key], why[256], path[FSDIR_LIST_MAX][PATH_MAX];
    int n = fsdir_list_split(folders, path, why, sizeof why);
    if (n < 0) {
        snprintf(err, errlen, "--nvme-path %s: %s", folders, why);
        snprintf(key, sizeof key, "%s: %s", folders, why);
        setting_origin_set(&cap->origin, SOURCE_DEFAULT, key);
        return -1;
    }
    /* folders on one file system share its free space: counted once */
    dev_t dev[FSDIR_LIST_MAX];
    int64_t total = 0, bytes;
    for (int i = 0; i < n; i++) {
        int rc = fsdir_free_space(path[i], &bytes, &dev[i]);
        if (rc != 0) {
            const char *e = strerror(-rc);
            snprintf(err, errlen,
                     "%s: cannot read the free space of the NVMe folder: %s: create it "
                     "or fix nvme_path",
                     path[i], e);
            snprintf(key, sizeof key, "%s: %s", path[i], e);
            setting_origin_set(&cap->origin, SOURCE_DEFAULT, key);
            return -1;
        }
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= dev[j] == dev[i];
        if (!seen) total += bytes;
    }
    cap->bytes = total;
    snprintf(key, sizeof key, "free space of %s", folders);
    setting_origin_set(&cap->origin, SOURCE_DEFAULT, key);
    return 0;
}

/* Capacity `bytes` of the machine's figure `field`. */
static void machine_capacity(struct plan_capacity *cap, const struct machine *m, int64_t bytes,
                             const char *field)
{
    char key[sizeof cap->origin.key];
    snprintf(key, sizeof key, "--machine %s: %s", m->name, field);
    cap->bytes = bytes;
    setting_origin_set(&cap->origin, SOURCE_FLAG, key);
}

int plan_capacity_machine(struct plan_capacity cap[NTIERS], const struct machine *m, char *err,
                          size_t errlen)
{
    if (plan_capacity_gpu(&cap[TIER_GPU], m->gpu_memory_bytes, err, errlen) != 0 ||
        plan_capacity_ram(&cap[TIER_CPU], err, errlen) != 0)
        return -1;
    if (cap[TIER_GPU].origin.source == SOURCE_DEFAULT)
        machine_capacity(&cap[TIER_GPU], m, m->gpu_memory_bytes, "gpu_memory_bytes");
    if (cap[TIER_CPU].origin.source == SOURCE_DEFAULT)
        machine_capacity(&cap[TIER_CPU], m, m->ram_available_bytes, "ram_available_bytes");
    machine_capacity(&cap[TIER_NVME], m, m->nvme_bytes, "nvme_bytes");
    return 0;
}

__attribute__((format(printf, 3, 4))) static int bad_input(char *err, size_t errlen,
                                                           const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "plan: ");
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
    return -1;
}

static int check_input(const struct plan_input *in, char *err, size_t errlen)
{
    if (in->L < 1 || in->C < 1 || in->NH < 1 || in->T < 1 || in->maxT < 1 || in->Vp < 1)
        return bad_input(err, errlen,
                         "the model shape needs positive layers, hidden size, heads, "
                         "sequence, positions and vocabulary");
    if (in->B < 1 || in->grad_accum < 1)
        return bad_input(err, errlen, "micro-batch %d and gradient accumulation %d must be >= 1",
                         in->B, in->grad_accum);
    if (in->world_size < 1 || in->ranks_per_node < 1 || in->ranks_per_node > in->world_size ||
        in->world_size % in->ranks_per_node)
        return bad_input(err, errlen,
                         "%d ranks per node do not divide the world size %d: choose "
                         "a divisor",
                         in->ranks_per_node, in->world_size);
    if (in->tier_grads == TIER_NVME && !in->grads_with_optim)
        return bad_input(err, errlen,
                         "gradients live on the GPU or in CPU memory, not on NVMe "
                         "(only their fp32 copy travels with the optimizer state)");
    if (in->tier_optim == TIER_NVME && (in->sub_group_size < 1 || in->optim_buffer_count < 1))
        return bad_input(err, errlen,
                         "NVMe optimizer state needs a sub-group size (%" PRId64
                         ") and a buffer count (%d) of at least 1",
                         in->sub_group_size, in->optim_buffer_count);
    if (in->tier_params == TIER_NVME && (in->param_buffer_size < 1 || in->param_buffer_count < 1))
        return bad_input(err, errlen,
                         "NVMe parameters need a buffer size (%" PRId64
                         ") and a buffer count (%d) of at least 1",
                         in->param_buffer_size, in->param_buffer_count);
    if (!(in->resident_fraction >= 0 && in->resident_fraction <= 1) ||
        !(in->ram_headroom >= 0 && in->ram_headroom < 1))
        return bad_input(err, errlen,
                         "the resident fraction %g must be in [0, 1] and the RAM "
                         "headroom %g in [0, 1)",
                         in->resident_fraction, in->ram_headroom);
    if (in->tile < 0 || in->prefetch < 0 || in->pinned_pool < 0)
        return bad_input(err, errlen, "tile, prefetch and pinned pool sizes must be >= 0");
    return 0;
}

__attribute__((format(printf, 6, 7))) static void row(struct plan *p, enum plan_row_kind k,
                                                      enum tier tier, int64_t per_rank,
                                                      enum plan_knob knob, const char *fmt, ...)
{
    struct plan_row *r = &p->rows[k];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof r->what, fmt, ap);
    va_end(ap);
    r->tier = tier;
    r->per_rank = per_rank;
    r->knob = knob;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Sum of the rows on a tier, per rank. */
static int64_t tier_sum(const struct plan *p, enum tier t)
{
    int64_t s = 0;
    for (int k = 0; k < PLAN_NROWS; k++)
        if (p->rows[k].tier == t) s += p->rows[k].per_rank;
    return s;
}

/* The optimizer rows (master, m, v, fp32 gradients) of `elems` elements per rank on tier t. */
/* A separate fp32 master copy exists unless fp32 parameters are their own master; on NVMe the
 * master is always swapped while an fp32 compute copy stays with the model (graph/state/). */
static int has_master(const struct plan_input *in)
{
    return in->dt != DTYPE_FP32 || in->tier_optim == TIER_NVME;
}

static void optimizer_rows(struct plan *p, enum tier t, int64_t elems)
{
    const struct plan_input *in = &p->in;
    if (has_master(in))
        row(p, PLAN_ROW_MASTER, t, elems * 4, PLAN_KNOB_TIER_OPTIM, "fp32 master weights");
    row(p, PLAN_ROW_ADAM_M, t, elems * 4, PLAN_KNOB_TIER_OPTIM, "Adam m (fp32)");
    row(p, PLAN_ROW_ADAM_V, t, elems * 4, PLAN_KNOB_TIER_OPTIM, "Adam v (fp32)");
    if (in->grads_with_optim)
        row(p, PLAN_ROW_FP32_GRADS, t, elems * 4, PLAN_KNOB_TIER_OPTIM,
            "fp32 gradients (with the optimizer state)");
}

int plan_compute(struct plan *p, const struct plan_input *in, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (check_input(in, err, errlen)) return -1;
    p->in = *in;
    const int64_t N = in->world_size, R = in->ranks_per_node;
    const int64_t dts = (int64_t)dtype_size(in->dt);
    const char *dtn = dtype_name(in->dt);
    /* Every size from the model's tables (the real vocabulary only shapes checkpoints, which the
     * plan does not count: V = Vp) */
    const struct gpt_config cfg = {in->L, in->C, in->NH, in->maxT, in->Vp, in->Vp};
    struct model_table tab;
    struct model_act_info acts[MODEL_NACTS];
    model_table_init(&tab, &cfg);
    model_acts(acts, &cfg,
               &(struct model_act_options){in->B, in->T, in->dt, in->checkpointing, in->tile});
    p->nparams = model_table_numel(&tab);
    const int64_t Pr = (p->nparams + N - 1) / N;
    p->nparams_rank = Pr;
    p->compute = in->cap[TIER_GPU].bytes == 0 ? TIER_CPU : TIER_GPU;
    const enum tier dev = p->compute;
#define ON(t) ((t) == TIER_GPU ? dev : (t))
    const enum tier tp = ON(in->tier_params), tg = ON(in->tier_grads), to = ON(in->tier_optim);
#undef ON
    for (int k = 0; k < PLAN_NROWS; k++)
        p->rows[k].tier = dev;

    /* Model states, partitioned over the ranks. */
    row(p, PLAN_ROW_PARAMS, tp, Pr * dts, PLAN_KNOB_TIER_PARAMS,
        in->dt == DTYPE_FP32 ? "fp32 parameters (also the master weights)" : "%s parameters", dtn);
    p->rows[PLAN_ROW_PARAMS].pinned = tp == TIER_CPU && in->pin_params;
    if (!in->grads_with_optim)
        row(p, PLAN_ROW_GRADS, tg, Pr * dts, PLAN_KNOB_TIER_GRADS, "%s gradients", dtn);
    const int64_t obytes = (has_master(in) ? 4 : 0) + 8 + (in->grads_with_optim ? 4 : 0);
    optimizer_rows(p, to, Pr);
    if (to == TIER_CPU)
        for (int k = PLAN_ROW_MASTER; k <= PLAN_ROW_FP32_GRADS; k++)
            p->rows[k].pinned = in->pin_optim;

    if (in->delayed_update) {
        row(p, PLAN_ROW_DELAYED, TIER_CPU, 2 * Pr * dts, PLAN_KNOB_TIER_OPTIM,
            "second %s parameters and gradients (delayed update)", dtn);
        p->rows[PLAN_ROW_DELAYED].pinned = 1;
    }

    /* Buffers in RAM. */
    const int64_t sg = min64(in->sub_group_size, Pr);
    if (to == TIER_NVME)
        row(p, PLAN_ROW_OPTIM_SWAP_BUFFERS, TIER_CPU,
            (int64_t)in->optim_buffer_count * in->optim_buffer_tensors * sg * 4,
            PLAN_KNOB_OPTIM_BUFFERS, "optimizer swap buffers (%d x %d x %" PRId64 " fp32)",
            in->optim_buffer_count, in->optim_buffer_tensors, sg);
    if (tp == TIER_NVME)
        row(p, PLAN_ROW_PARAM_SWAP_BUFFERS, TIER_CPU,
            in->param_buffer_count * in->param_buffer_size * dts, PLAN_KNOB_PARAM_BUFFERS,
            "parameter swap buffers (%d x %" PRId64 " %s)", in->param_buffer_count,
            in->param_buffer_size, dtn);
    if (in->pinned_pool)
        row(p, PLAN_ROW_PINNED_POOL, TIER_CPU, in->pinned_pool, PLAN_KNOB_PINNED_POOL,
            "pinned staging pool");
    p->rows[PLAN_ROW_OPTIM_SWAP_BUFFERS].pinned = p->rows[PLAN_ROW_PARAM_SWAP_BUFFERS].pinned =
        p->rows[PLAN_ROW_PINNED_POOL].pinned = 1;

    /* Activations, as graph/gpt.c allocates them from the same table. */
    int in_cpu = in->checkpointing && in->ckpt_in_cpu;
    row(p, PLAN_ROW_CHECKPOINTS, in_cpu ? TIER_CPU : dev,
        model_acts_bytes(acts, MODEL_ACT_GROUP_CHECKPOINTS),
        in_cpu ? PLAN_KNOB_CKPT_IN_CPU : PLAN_KNOB_CHECKPOINTING, "%s [%d][B,T,C]",
        in->checkpointing ? "activation checkpoints" : "layer outputs",
        acts[MODEL_ACT_ENCODED].copies + acts[MODEL_ACT_LAYER_OUT].copies);
    p->rows[PLAN_ROW_CHECKPOINTS].pinned = in_cpu;
    row(p, PLAN_ROW_LAYER_ACTS, dev, model_acts_bytes(acts, MODEL_ACT_GROUP_LAYER),
        PLAN_KNOB_CHECKPOINTING,
        in->checkpointing ? "one layer's activations (recomputed)" : "activations of all layers");
    row(p, PLAN_ROW_ACT_GRADS, dev, model_acts_bytes(acts, MODEL_ACT_GROUP_GRADS),
        PLAN_KNOB_MICRO_BATCH, "activation gradients%s",
        acts[MODEL_ACT_DACC].copies ? " and fp32 sums of tiled layers" : "");
    row(p, PLAN_ROW_LOGITS, dev, model_acts_bytes(acts, MODEL_ACT_GROUP_HEAD),
        PLAN_KNOB_MICRO_BATCH, "logits [B,T,Vp], final LayerNorm, losses");

    /* Gathered parameters: the largest operator (param + grad) and the prefetch window. */
    const struct gpt_param *op = &tab.params[model_widest_linear(&tab)];
    int64_t rows = op->shape[0], cols = op->shape[1];
    snprintf(p->op_name, sizeof p->op_name, "%s %" PRId64 " x %" PRId64, op->op, rows, cols);
    if (N > 1 || tp != dev) {
        int64_t tiled = in->tile > 0 ? min64(in->tile, rows) : rows;
        row(p, PLAN_ROW_OP_WORKING, dev, 2 * tiled * cols * dts, PLAN_KNOB_TILE,
            "operator working memory (%s%s)", p->op_name, tiled < rows ? ", tiled" : "");
        row(p, PLAN_ROW_PREFETCH, dev, min64(in->prefetch, p->nparams) * dts, PLAN_KNOB_PREFETCH,
            "prefetched parameters");
    }
    model_table_free(&tab);

    /* Partial residency: whole sub-groups of NVMe optimizer state kept in the RAM left over. */
    if (to == TIER_NVME) {
        p->subgroups = (Pr + in->sub_group_size - 1) / in->sub_group_size;
        const struct plan_capacity *ram = &in->cap[TIER_CPU];
        int64_t k = 0;
        if (ram->bytes >= 0 && in->resident_fraction > 0) {
            double room =
                (double)ram->bytes * (1 - in->ram_headroom) - (double)tier_sum(p, TIER_CPU) * R;
            int64_t by_room = room > 0 ? (int64_t)(room / R) / (sg * obytes) : 0;
            int64_t by_share =
                in->resident_fraction >= 1
                    ? p->subgroups
                    : (int64_t)(in->resident_fraction * (double)Pr) / in->sub_group_size;
            k = min64(min64(by_room, by_share), p->subgroups);
        }
        p->resident_subgroups = k;
        p->resident_elems = min64(k * in->sub_group_size, Pr);
        p->resident_share = (double)p->resident_elems / (double)Pr;
        p->resident_bytes = p->resident_elems * obytes;
        int64_t swapped = Pr - p->resident_elems;
        optimizer_rows(p, TIER_NVME, swapped);
        if (k > 0) {
            row(p, PLAN_ROW_OPTIM_RESIDENT, TIER_CPU, p->resident_bytes, PLAN_KNOB_RESIDENT,
                "optimizer state kept in RAM (%" PRId64 " of %" PRId64 " sub-groups)", k,
                p->subgroups);
            p->rows[PLAN_ROW_OPTIM_RESIDENT].pinned = in->pin_optim;
        }
        if (swapped == 0) p->rows[PLAN_ROW_OPTIM_SWAP_BUFFERS].per_rank = 0;
        /* Step: read master, m, v (and gradient); write them back. The fp32 gradient is written
         * during the backward, so reads and writes are equal. */
        p->nvme_read = p->nvme_write = swapped * obytes;
        p->nvme_read_swapped = p->nvme_write_swapped = Pr * obytes;
    }
    if (tp == TIER_NVME) {
        /* Each micro-batch reads the partition for the forward and again for the backward; the
         * step writes it once. */
        int64_t part = Pr * dts, rd = 2 * (int64_t)in->grad_accum * part;
        p->nvme_read += rd;
        p->nvme_read_swapped += rd;
        p->nvme_write += part;
        p->nvme_write_swapped += part;
    }

    for (int k = 0; k < PLAN_NROWS; k++) {
        struct plan_row *r = &p->rows[k];
        r->per_node = r->per_rank * R;
        r->all = r->per_rank * N;
        if (r->pinned && r->tier == TIER_CPU) p->pinned += r->per_node;
    }
    p->need[TIER_GPU] = dev == TIER_GPU ? tier_sum(p, TIER_GPU) : 0;
    p->need[TIER_CPU] = tier_sum(p, TIER_CPU) * R;
    p->need[TIER_NVME] = tier_sum(p, TIER_NVME) * R;
    p->fit = 1;
    for (int t = 0; t < NTIERS; t++) {
        int64_t cap = in->cap[t].bytes;
        p->fits[t] = cap < 0 || (t == TIER_GPU && dev != TIER_GPU) ? -1 : p->need[t] <= cap;
        if (p->fits[t] == 0) p->fit = 0;
    }
    return 0;
}

void plan_bytes_words(int64_t b, int decimals, char *buf, size_t n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    int u = 0;
    while (u < 4 && (v >= 1000 || v <= -1000)) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%" PRId64 " B", b);
    else
        snprintf(buf, n, "%.*f %s", decimals, v, units[u]);
}

/* A capacity's origin: the variable, "MemAvailable", "free space of DIR", ... */
static void cap_words(const struct plan_capacity *cap, char *buf, size_t n)
{
    if (cap->origin.key[0])
        snprintf(buf, n, "%s", cap->origin.key);
    else
        setting_origin_format(&cap->origin, buf, n);
}

static const char *tier_words(enum tier t)
{
    static const char *const words[] = {"GPU memory", "CPU memory", "NVMe space"};
    return words[t];
}

/* Seconds a node's disk takes for `read` and `write` bytes per rank, R ranks to the node. */
static double disk_seconds(const struct machine *m, int64_t read, int64_t write, int64_t R)
{
    return (machine_swap_us(m, (double)read * R, 0) + machine_swap_us(m, (double)write * R, 1)) /
           1e6;
}

/* A node's CPU AdamW time per step on all m's cores (machine_adamw_us). */
static double adamw_seconds(const struct plan *p, const struct machine *m)
{
    return machine_adamw_us(m, (double)p->nparams_rank * p->in.ranks_per_node, m->cpu_cores,
                            m->cpu_cores * m->nodes) /
           1e6;
}

double plan_balance_share(const struct plan *p, const struct machine *m)
{
    double all_s =
               disk_seconds(m, p->nvme_read_swapped, p->nvme_write_swapped, p->in.ranks_per_node),
           adam_s = adamw_seconds(p, m);
    return all_s > adam_s ? 1 - adam_s / all_s : 0;
}

/* With a machine's rates (--machine, or this host's measured by --nvme-resident-fraction auto)
 * and the optimizer state on NVMe: a node's disk time per step at them (machine_swap_us: the
 * mixed rate when given, else read then write), its CPU AdamW time, and the resident share at
 * which the two balance: beyond it the step is AdamW-bound and more RAM saves nothing. */
static void print_step_times(const struct plan *p, FILE *f)
{
    const struct plan_input *in = &p->in;
    const struct machine *m = in->machine;
    double disk_s = disk_seconds(m, p->nvme_read, p->nvme_write, in->ranks_per_node),
           adam_s = adamw_seconds(p, m);
    char rates[96];
    if (m->path[0])
        snprintf(rates, sizeof rates, "--machine %s's rates", m->name);
    else
        snprintf(rates, sizeof rates, "%s's measured rates (read %.2f, write %.2f GB/s)", m->name,
                 m->nvme_read_GBps, m->nvme_write_GBps);
    fprintf(f,
            "  step time per node at %s: NVMe %.1f s, CPU AdamW %.1f s (%.0f GB/s): %s; the two "
            "balance with %.1f%% of the state resident (the plan keeps %.1f%%)\n",
            rates, disk_s, adam_s, m->cpu_adamw_GBps,
            disk_s > adam_s ? "disk-bound" : "AdamW-bound", 100 * plan_balance_share(p, m),
            100 * p->resident_share);
}

static void knob_value(const struct plan *p, enum plan_knob k, char *buf, size_t n)
{
    const struct plan_input *in = &p->in;
    switch (k) {
    case PLAN_KNOB_MODEL:
        snprintf(buf, n, "%d layers, hidden %d, %d heads, seq %d, vocab %d, %d positions", in->L,
                 in->C, in->NH, in->T, in->Vp, in->maxT);
        break;
    case PLAN_KNOB_MICRO_BATCH:
        snprintf(buf, n, "micro-batch %d", in->B);
        break;
    case PLAN_KNOB_GRAD_ACCUM:
        snprintf(buf, n, "gradient accumulation %d", in->grad_accum);
        break;
    case PLAN_KNOB_DTYPE:
        snprintf(buf, n, "%s%s", dtype_name(in->dt),
                 in->dt == DTYPE_FP32 ? "" : " with fp32 master weights");
        break;
    case PLAN_KNOB_CHECKPOINTING:
        snprintf(buf, n, "activation checkpointing %s", in->checkpointing ? "on" : "off");
        break;
    case PLAN_KNOB_CKPT_IN_CPU:
        snprintf(buf, n, "checkpoints in %s",
                 in->checkpointing && in->ckpt_in_cpu ? "CPU memory" : "device memory");
        break;
    case PLAN_KNOB_WORLD:
        snprintf(buf, n, "%d ranks, %d per node", in->world_size, in->ranks_per_node);
        break;
    case PLAN_KNOB_TIER_PARAMS:
        snprintf(buf, n, "parameters on %s", tier_name(in->tier_params));
        break;
    case PLAN_KNOB_TIER_GRADS:
        if (in->grads_with_optim)
            snprintf(buf, n, "gradients in fp32 with the optimizer state");
        else
            snprintf(buf, n, "gradients on %s", tier_name(in->tier_grads));
        break;
    case PLAN_KNOB_TIER_OPTIM:
        snprintf(buf, n, "optimizer state on %s", tier_name(in->tier_optim));
        break;
    case PLAN_KNOB_PIN_PARAMS:
        snprintf(buf, n, "pinned parameters %s", in->pin_params ? "yes" : "no");
        break;
    case PLAN_KNOB_PIN_OPTIM:
        snprintf(buf, n, "pinned optimizer state %s", in->pin_optim ? "yes" : "no");
        break;
    case PLAN_KNOB_PARAM_BUFFERS:
        snprintf(buf, n, "parameter swap buffers %d x %" PRId64, in->param_buffer_count,
                 in->param_buffer_size);
        break;
    case PLAN_KNOB_OPTIM_BUFFERS:
        snprintf(buf, n, "optimizer swap buffers %d", in->optim_buffer_count);
        break;
    case PLAN_KNOB_SUB_GROUP:
        snprintf(buf, n, "sub-group %" PRId64 " elements", in->sub_group_size);
        break;
    case PLAN_KNOB_RESIDENT:
        snprintf(buf, n, "resident share at most %.4g%%, RAM headroom %g%%",
                 100 * in->resident_fraction, 100 * in->ram_headroom);
        break;
    case PLAN_KNOB_TILE:
        if (in->tile > 0)
            snprintf(buf, n, "tile %" PRId64 " rows", in->tile);
        else
            snprintf(buf, n, "no tiling");
        break;
    case PLAN_KNOB_PREFETCH:
        snprintf(buf, n, "prefetch %" PRId64 " elements", in->prefetch);
        break;
    case PLAN_KNOB_PINNED_POOL: {
        char b[32];
        plan_bytes_words(in->pinned_pool, 2, b, sizeof b);
        snprintf(buf, n, "pinned pool %s per rank", b);
        break;
    }
    case PLAN_NKNOBS:
        CHECK(!"not a knob");
    }
}

void plan_print(const struct plan *p, FILE *f)
{
    const struct plan_input *in = &p->in;
    char from[160], a[32], b[32], c[32], v[160];
    fprintf(f, "plan: %" PRId64 " parameters (%.2fB), %d ranks, %" PRId64 " per rank\n", p->nparams,
            p->nparams / 1e9, in->world_size, p->nparams_rank);
    for (int k = 0; k < PLAN_NKNOBS; k++) {
        knob_value(p, k, v, sizeof v);
        setting_origin_format(&in->origin[k], from, sizeof from);
        fprintf(f, "  %-66s %s\n", v, from);
    }
    fprintf(f, "  %-54s %-5s %11s %11s %11s  %s\n", "memory", "tier", "per rank", "per node",
            "all ranks", "from");
    for (int k = 0; k < PLAN_NROWS; k++) {
        const struct plan_row *r = &p->rows[k];
        if (!r->per_rank) continue;
        plan_bytes_words(r->per_rank, 2, a, sizeof a);
        plan_bytes_words(r->per_node, 2, b, sizeof b);
        plan_bytes_words(r->all, 2, c, sizeof c);
        setting_origin_format(&in->origin[r->knob], from, sizeof from);
        fprintf(f, "  %-54s %-4s%s %11s %11s %11s  %s\n", r->what, tier_name(r->tier),
                r->pinned ? "*" : " ", a, b, c, from);
    }
    plan_bytes_words(p->pinned, 2, a, sizeof a);
    fprintf(f, "  (* pinned: %s per node)\n", a);
    for (int t = 0; t < NTIERS; t++) {
        const struct plan_capacity *cap = &in->cap[t];
        plan_bytes_words(p->need[t], 2, a, sizeof a);
        cap_words(cap, from, sizeof from);
        const char *per = t == TIER_GPU ? "GPU" : "node";
        if (cap->bytes < 0) {
            fprintf(f, "  %-10s needs %11s per %-4s, not checked: %s\n", tier_words(t), a, per,
                    from);
            continue;
        }
        if (t == TIER_GPU && p->compute != TIER_GPU) {
            fprintf(f, "  %-10s none: the CPU computes, its memory is counted in RAM\n",
                    tier_words(t));
            continue;
        }
        plan_bytes_words(cap->bytes, 2, b, sizeof b);
        fprintf(f, "  %-10s needs %11s per %-4s of %11s (%s): %s\n", tier_words(t), a, per, b, from,
                p->fits[t] ? "fits" : "DOES NOT FIT");
    }
    if (in->tier_optim == TIER_NVME) {
        int64_t state = 0;
        for (int k = PLAN_ROW_MASTER; k <= PLAN_ROW_FP32_GRADS; k++)
            state += p->rows[k].tier == TIER_NVME ? p->rows[k].all : 0;
        plan_bytes_words(state, 2, a, sizeof a);
        fprintf(f, "  NVMe state in all ranks: %s, %d bytes per parameter (%s)\n", a,
                in->grads_with_optim ? 16 : 12,
                in->grads_with_optim
                    ? "fp32 master, m, v and an fp32 gradient, as DeepSpeed swaps them"
                    : "fp32 master, m and v; the gradients stay in CPU memory in the model's "
                      "dtype, so DeepSpeed's fp32 gradient copy (4 more bytes per parameter) "
                      "is not on NVMe");
        plan_bytes_words(p->resident_bytes, 2, a, sizeof a);
        fprintf(f,
                "  optimizer state on NVMe: %" PRId64 " of %" PRId64 " sub-groups (%.1f%%, %s per "
                "rank) stay resident in RAM\n",
                p->resident_subgroups, p->subgroups, 100 * p->resident_share, a);
    }
    if (p->nvme_read_swapped == 0) return;
    int64_t R = in->ranks_per_node;
    plan_bytes_words(p->nvme_read * R, 1, a, sizeof a);
    plan_bytes_words(p->nvme_write * R, 1, b, sizeof b);
    fprintf(f, "  NVMe traffic per iteration per node: %s read, %s written", a, b);
    plan_bytes_words(p->nvme_read_swapped * R, 1, a, sizeof a);
    plan_bytes_words(p->nvme_write_swapped * R, 1, b, sizeof b);
    fprintf(f, " (without the resident share: %s and %s)\n", a, b);
    if (in->machine) print_step_times(p, f);
}

/* What to change when tier t does not fit: the biggest lever first. */
static void hint(const struct plan *p, enum tier t, char *buf, size_t n)
{
    const struct plan_input *in = &p->in;
    int env = in->cap[t].origin.source == SOURCE_ENV;
    if (t == TIER_GPU) {
        if (!in->checkpointing)
            snprintf(buf, n, "turn on activation checkpointing");
        else if (in->tier_params == TIER_GPU)
            snprintf(buf, n, "offload the parameters (zero_optimization.offload_param.device cpu)");
        else if (in->tier_optim == TIER_GPU)
            snprintf(buf, n,
                     "offload the optimizer state "
                     "(zero_optimization.offload_optimizer.device cpu or nvme)");
        else if (!in->grads_with_optim && in->tier_grads == TIER_GPU)
            snprintf(buf, n, "keep the gradients in CPU memory");
        else if (!in->ckpt_in_cpu)
            snprintf(buf, n,
                     "keep the activation checkpoints in CPU memory "
                     "(activation_checkpointing.cpu_checkpointing)");
        else if (in->B > 1)
            snprintf(buf, n, "lower the micro-batch size (now %d)", in->B);
        else
            snprintf(buf, n, "tile the largest operator (%s) into smaller pieces", p->op_name);
    } else if (t == TIER_CPU) {
        if (in->tier_optim == TIER_CPU)
            snprintf(buf, n,
                     "put the optimizer state on NVMe "
                     "(zero_optimization.offload_optimizer.device nvme)");
        else if (p->rows[PLAN_ROW_OPTIM_SWAP_BUFFERS].per_rank > 0)
            snprintf(buf, n,
                     "lower zero_optimization.offload_optimizer.buffer_count (now %d) or "
                     "zero_optimization.sub_group_size (now %" PRId64 ")",
                     in->optim_buffer_count, in->sub_group_size);
        else if (in->tier_params == TIER_CPU)
            snprintf(buf, n,
                     "put the parameters on NVMe "
                     "(zero_optimization.offload_param.device nvme)");
        else
            snprintf(buf, n, "use more nodes");
    } else {
        snprintf(buf, n,
                 "free space in the folder, or use more nodes (each holds the state of "
                 "its %d ranks)",
                 in->ranks_per_node);
    }
    if (env) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, ", or raise %s", in->cap[t].origin.key);
    }
}

int plan_verdict(const struct plan *p, char *msg, size_t n)
{
    for (int t = 0; t < NTIERS; t++) {
        if (p->fits[t] != 0) continue;
        char need[32], cap[32], from[160], what[256];
        plan_bytes_words(p->need[t], 1, need, sizeof need);
        plan_bytes_words(p->in.cap[t].bytes, 1, cap, sizeof cap);
        cap_words(&p->in.cap[t], from, sizeof from);
        hint(p, t, what, sizeof what);
        snprintf(msg, n, "plan: %s: the plan needs %s per %s, the cap is %s (%s): %s",
                 tier_words(t), need, t == TIER_GPU ? "GPU" : "node", cap, from, what);
        return -1;
    }
    if (n) msg[0] = 0;
    return 0;
}
