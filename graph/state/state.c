/* state.c: the model's state, its tiers and its NVMe swap (see state.h). */
#include "state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "check.h"
#include "codelets.h"
#include "comm.h"
#include "fsdir.h"
#include "progress.h"
#include "rng.h"
#include "swap.h"

/* A shard's tensors: master, compute copy, gradient, the two moments, and with the delayed
 * update the second compute copy and gradient. */
#define SHARD_SLOTS 7

struct state {
    const struct model_table *tab;
    struct state_options opt;
    int R;                      /* data-parallel ranks in this process (1 without a communicator) */
    int W;                      /* data-parallel ranks in all processes (R in one process) */
    int *swapped;               /* [tab->n]: optimizer state in swap files (all ranks' shards) */
    size_t *shard_n;            /* [tab->n]: elements of each shard (the whole tensor: one rank) */
    struct state_shard *shards; /* [tab->n * R]: local rank r's shard of tensor i at i * R + r */
    struct tensor *store;       /* the shards' tensors, SHARD_SLOTS per shard */
    /* optimizer state on NVMe: one swap file per shard of a swapped tensor (local rank r's of
     * tensor i at i * R + r; master | m | v regions of region_bytes[i] each), in this process's
     * swap folder of one of the npaths --nvme-path folders (folder[i * R + r]), each folder with
     * its own aio engine; and per local rank nbufs sets of three RAM buffers cycled through its
     * shards' files (rank r's set b at r * nbufs + b; tensor i uses set bufset[i]) */
    int npaths;
    struct aio_engine *aio[FSDIR_LIST_MAX];
    struct swap_dir *swapdir[FSDIR_LIST_MAX];
    struct swap_file **swapf;
    int *folder;
    size_t *region_bytes;
    int *bufset;
    struct tensor (*bufs)[3];
    int nbufs;
    uint64_t generation; /* what the last swap-out wrote */
};

const struct model_table *state_table(const struct state *s)
{
    return s->tab;
}
int state_ranks(const struct state *s)
{
    return s->R;
}
int state_world(const struct state *s)
{
    return s->W;
}
int state_global_rank(const struct state *s, int r)
{
    return s->opt.comm ? comm_rank(s->opt.comm, r) : r;
}
int state_process(const struct state *s)
{
    return s->opt.comm ? comm_process(s->opt.comm) : 0;
}
size_t state_shard_elems(const struct state *s, int i)
{
    return s->shard_n[i];
}
struct state_shard *state_shard(struct state *s, int i, int r)
{
    return &s->shards[i * s->R + r];
}
int state_swapped(const struct state *s, int i)
{
    return s->swapped[i];
}

int state_params_in_pinned_ram(const struct state *s)
{
    return s->opt.optim_tier != TIER_GPU || s->opt.offload_param;
}

enum rt_where state_optim_where(const struct state *s)
{
    return s->opt.optim_tier == TIER_GPU ? RT_WHERE_COMPUTE : RT_WHERE_CPU;
}

/* Buffer sets per rank for the swapped shards. */
static int swap_sets(const struct state *s)
{
    return s->opt.swap_buffers > 0 ? s->opt.swap_buffers : 1;
}

/* Tiles of tensor i under opt.tile_size: ceil(rows / tile_size) when it belongs to a linear
 * layer wider than that, else 0 (kept whole). */
static int param_tiles(const struct state *s, int i)
{
    const struct gpt_param *p = &s->tab->params[i];
    int64_t rows = p->op ? p->shape[0] : 0, tile = s->opt.tile_size;
    return tile > 0 && rows > tile ? (int)((rows + tile - 1) / tile) : 0;
}

/* How tensor i is split, for the compute (tile_size) or, with AdamW on CPU workers, for the
 * optimizer's tasks (optim_chunk elements each, whole rows); 0: kept whole. */
static int param_split(const struct state *s, int i)
{
    const struct gpt_param *p = &s->tab->params[i];
    int64_t rows = p->shape[0], sub = s->opt.optim_chunk;
    if (param_tiles(s, i)) return param_tiles(s, i);
    if (s->opt.optim_tier == TIER_GPU || s->swapped[i] || sub <= 0 || s->W > 1) return 0;
    int64_t pieces = (model_param_numel(p) + sub - 1) / sub;
    return pieces > 1 ? (int)(pieces < rows ? pieces : rows) : 0;
}

/* Which tensors stream from NVMe: the planned resident share of a rank's optimizer bytes stays
 * in RAM, taken in table order (whole shards), the rest is swapped and takes the buffer sets in
 * turn. Every rank's shards have the same sizes, so one plan serves all ranks (the whole tensors
 * with one rank). A fixed plan, not a cache: every shard is visited once per step, the cyclic
 * pattern under which LRU keeps exactly the wrong ones. */
static void plan_swap(struct state *s)
{
    int n = s->tab->n, next = 0;
    uint64_t total = 0, kept = 0;
    s->region_bytes = calloc(n, sizeof *s->region_bytes);
    s->bufset = calloc(n, sizeof *s->bufset);
    CHECK(s->region_bytes && s->bufset);
    for (int i = 0; i < n; i++)
        total += 12 * (uint64_t)s->shard_n[i];
    uint64_t budget = (uint64_t)(s->opt.resident_fraction * (double)total);
    for (int i = 0; i < n; i++) {
        uint64_t bytes = 12 * (uint64_t)s->shard_n[i];
        s->swapped[i] = kept + bytes > budget;
        if (!s->swapped[i]) {
            kept += bytes;
            continue;
        }
        s->region_bytes[i] = round_up(s->shard_n[i] * sizeof(float), SWAP_BLOCK_SIZE);
        s->bufset[i] = next;
        next = (next + 1) % swap_sets(s);
    }
}

static size_t region_max(const struct state *s)
{
    size_t max = 0;
    for (int i = 0; s->region_bytes && i < s->tab->n; i++)
        max = s->region_bytes[i] > max ? s->region_bytes[i] : max;
    return max;
}

/* Bytes of the pinned pool: each rank's own pinned tensors, the parameters and gradients when
 * their home is there (twice with the delayed update), and with the optimizer state on NVMe the
 * swap buffers. */
static size_t pinned_bytes(const struct state *s, size_t rank_pinned_bytes)
{
    size_t total = s->R * rank_pinned_bytes;
    for (int i = 0; i < s->tab->n && state_params_in_pinned_ram(s); i++) {
        size_t bytes = s->shard_n[i] * dtype_size(s->opt.dt);
        total += s->R * host_pool_piece_bytes(bytes); /* the gradient */
        if (s->opt.dt != DTYPE_FP32 || s->swapped[i]) total += s->R * host_pool_piece_bytes(bytes);
        if (s->opt.delayed_update) /* the second compute copy and gradient */
            total += 2 * s->R * host_pool_piece_bytes(bytes);
    }
    total += (size_t)s->R * swap_sets(s) * 3 * host_pool_piece_bytes(region_max(s));
    return total;
}

/* The name of local rank r's shard of tensor i: the tensor's with one rank, with the global rank
 * added with several (its tensors' names and its swap file's start with it). */
static void shard_name(const struct state *s, int i, int r, char *out, size_t n)
{
    if (s->W > 1)
        snprintf(out, n, "%s.rank%d", s->tab->params[i].name, state_global_rank(s, r));
    else
        snprintf(out, n, "%s", s->tab->params[i].name);
}

/* Store slot t, registered under the shard's name `base` followed by `suffix`. */
static struct tensor *shard_tensor(struct tensor *t, const char *base, const char *suffix,
                                   enum tensor_type type, size_t n, enum tensor_host home)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    tensor_init(t, name, type, n, home);
    return t;
}

/* The shard of tensor i that local rank r owns (its store slots). */
static void shard_init(struct state *s, int i, int r)
{
    struct state_shard *p = state_shard(s, i, r);
    struct tensor *t = &s->store[((size_t)i * s->R + r) * SHARD_SLOTS];
    size_t n = s->shard_n[i];
    enum tensor_type dt = (enum tensor_type)s->opt.dt, f32 = TENSOR_TYPE_FP32;
    char base[112];
    shard_name(s, i, r, base, sizeof base);
    /* A split tensor lives in RAM, whence each task fetches its piece alone: StarPU switches
     * between a tensor and its pieces in the home memory. */
    int ntiles = param_split(s, i), swapped = s->swapped[i];
    enum tensor_host home = state_params_in_pinned_ram(s) ? TENSOR_HOST_PINNED
                            : ntiles                      ? TENSOR_HOST_PAGEABLE
                                                          : TENSOR_HOST_NONE;
    if (!swapped) p->master = shard_tensor(&t[0], base, ".master", f32, n, TENSOR_HOST_PAGEABLE);
    /* a swapped tensor's compute copy is written by AdamW on the CPU: keep it there */
    p->param = s->opt.dt == DTYPE_FP32 && !swapped
                   ? p->master
                   : shard_tensor(&t[1], base, "", dt, n, swapped ? TENSOR_HOST_PINNED : home);
    p->grad = shard_tensor(&t[2], base, ".grad", dt, n, home);
    if (s->opt.delayed_update) {
        p->param_alt = shard_tensor(&t[5], base, ".delayed", dt, n, home);
        p->grad_alt = shard_tensor(&t[6], base, ".grad.delayed", dt, n, home);
    }
    if (!swapped) {
        p->m = shard_tensor(&t[3], base, ".exp_avg", f32, n, TENSOR_HOST_PAGEABLE);
        p->v = shard_tensor(&t[4], base, ".exp_avg_sq", f32, n, TENSOR_HOST_PAGEABLE);
    }
    /* before any task touches them: StarPU plans partitions of unallocated data only */
    if (ntiles) {
        struct tensor *split[] = {p->param,  p->grad, p->param_alt, p->grad_alt,
                                  p->master, p->m,    p->v};
        for (int k = 0; k < 7; k++) {
            if (!split[k] || (k == 4 && p->master == p->param)) continue;
            tensor_tiles(split[k], ntiles, (size_t)s->tab->params[i].shape[1]);
            split[k]->compute_tiles = k < 4 && param_tiles(s, i) > 0;
        }
    }
}

/* The folder of --nvme-path's list whose file system has the most room left for `bytes` once the
 * files placed so far (placed[j] bytes in folder j) are counted: equal drives take turns, and a
 * smaller one fills last. Folders on one file system share its free space; among them, the one
 * holding fewer bytes. */
static int roomiest_folder(const int64_t *free_bytes, const dev_t *dev, const int64_t *placed,
                           int n)
{
    int best = 0;
    int64_t best_room = INT64_MIN;
    for (int j = 0; j < n; j++) {
        int64_t room = free_bytes[j];
        for (int k = 0; k < n; k++)
            room -= dev[k] == dev[j] ? placed[k] : 0;
        if (room > best_room || (room == best_room && placed[j] < placed[best]))
            best = j, best_room = room;
    }
    return best;
}

struct shard_bytes {
    int64_t bytes;
    int shard;
};
static int larger_first(const void *a, const void *b)
{
    const struct shard_bytes *x = a, *y = b;
    return x->bytes != y->bytes ? (x->bytes < y->bytes ? 1 : -1) : x->shard - y->shard;
}

/* Creates, for each --nvme-path folder, an aio engine (its threads near the folder's drive) and
 * the process's swap folder there, then one swap file per shard of a swapped tensor (named after
 * the shard: "<tensor>.rank<g>" with several ranks), largest first, each in the folder with the
 * most room left. User error when a folder cannot be used or the disks cannot hold the state. */
static void swap_files_create(struct state *s)
{
    char err[SWAP_ERR_SIZE], name[160], path[FSDIR_LIST_MAX][PATH_MAX];
    int n = s->tab->n * s->R;
    int64_t free_bytes[FSDIR_LIST_MAX], placed[FSDIR_LIST_MAX] = {0};
    dev_t dev[FSDIR_LIST_MAX];
    s->npaths = fsdir_list_split(s->opt.nvme_path, path, name, sizeof name);
    if (s->npaths < 0) user_fail("--nvme-path %s: %s", s->opt.nvme_path, name);
    for (int j = 0; j < s->npaths; j++) {
        s->aio[j] = aio_engine_create(s->opt.aio, err, sizeof err);
        if (!s->aio[j]) user_fail("%s", err);
        aio_engine_place(s->aio[j], path[j], rt_pool_info().numa_node);
        s->swapdir[j] = swap_dir_open(s->aio[j], path[j], err, sizeof err);
        if (!s->swapdir[j]) user_fail("%s", err);
        if (fsdir_free_space(path[j], &free_bytes[j], &dev[j]) != 0)
            free_bytes[j] = 0, dev[j] = (dev_t)j;
        for (int k = 0; k < j; k++) /* one file system, one figure */
            if (dev[k] == dev[j]) free_bytes[j] = free_bytes[k];
    }
    s->swapf = calloc(n, sizeof *s->swapf);
    s->folder = calloc(n, sizeof *s->folder);
    CHECK(s->swapf && s->folder);
    /* the swapped shards, largest first (table order among equals) */
    struct shard_bytes *order = malloc(n * sizeof *order);
    CHECK(order);
    int64_t total = 0, m = 0;
    for (int i = 0; i < n; i++)
        if (s->swapped[i / s->R]) {
            order[m] = (struct shard_bytes){3 * (int64_t)s->region_bytes[i / s->R], i};
            total += order[m++].bytes;
        }
    qsort(order, m, sizeof *order, larger_first);
    struct progress pr;
    progress_begin(&pr, "preallocating", "preallocated", "the swap files", total);
    for (int o = 0; o < m; o++) {
        int i = order[o].shard;
        int64_t bytes = order[o].bytes;
        int j = roomiest_folder(free_bytes, dev, placed, s->npaths);
        shard_name(s, i / s->R, i % s->R, name, sizeof name);
        if (swap_file_create(s->swapdir[j], name, (uint64_t)bytes, &s->swapf[i], err, sizeof err) <
            0)
            user_fail("%s", err);
        s->folder[i] = j;
        placed[j] += bytes;
        progress_add(&pr, bytes);
    }
    progress_end(&pr);
    free(order);
}

/* Each local rank's RAM buffer sets. */
static void swap_buffers_create(struct state *s)
{
    char name[160];
    size_t rmax = region_max(s);
    if (!rmax) return;
    s->nbufs = swap_sets(s);
    s->bufs = calloc((size_t)s->R * s->nbufs, sizeof *s->bufs);
    CHECK(s->bufs);
    static const char *const kind[3] = {"master", "exp_avg", "exp_avg_sq"};
    char pre[16] = "";
    for (int b = 0; b < s->R * s->nbufs; b++)
        for (int k = 0; k < 3; k++) {
            if (s->W > 1) snprintf(pre, sizeof pre, "rank%d.", state_global_rank(s, b / s->nbufs));
            snprintf(name, sizeof name, "%sswap_buffer%d.%s", pre, b % s->nbufs, kind[k]);
            tensor_init(&s->bufs[b][k], name, TENSOR_TYPE_FP32, rmax / sizeof(float),
                        TENSOR_HOST_PINNED);
        }
}

struct state_swap state_swap_slot(struct state *s, int i, int r)
{
    return (struct state_swap){s->bufs[r * s->nbufs + s->bufset[i]],
                               s->swapf ? s->swapf[i * s->R + r] : NULL, s->region_bytes[i],
                               s->generation};
}

void state_swap_advance(struct state *s)
{
    s->generation++;
}

static struct tensor *kind_tensor(struct state_shard *p, enum state_kind which)
{
    return which == STATE_MASTER ? p->master : which == STATE_EXP_AVG ? p->m : p->v;
}

/* State `which` of local rank r's shard of tensor i (shard_n[i] elements) into dst: from its
 * host copy, or from its swap file at the current generation (after every submitted task: the
 * shard's last swap-out may still be in flight). */
static void shard_get(struct state *s, int i, int r, enum state_kind which, float *dst)
{
    char err[SWAP_ERR_SIZE];
    size_t n = s->shard_n[i];
    if (!s->swapped[i]) {
        struct tensor *t = kind_tensor(state_shard(s, i, r), which);
        memcpy(dst, tensor_acquire_read(t), n * sizeof *dst);
        tensor_release(t);
        return;
    }
    rt_wait_all();
    float *region = aio_alloc_aligned(s->region_bytes[i]);
    CHECK(region);
    if (swap_file_read(s->swapf[i * s->R + r], region, which * s->region_bytes[i],
                       s->region_bytes[i], s->generation, err, sizeof err) < 0)
        user_fail("%s", err);
    memcpy(dst, region, n * sizeof *dst);
    free(region);
}

/* src[0..len) into state `which` of local rank r's shard of tensor i, the rest of the shard zero:
 * its host copy, or its swap file with the current generation, a swapped master refreshing its
 * compute copy too (resident ones follow at state_sync_params). */
static void shard_put(struct state *s, int i, int r, enum state_kind which, const float *src,
                      size_t len)
{
    char err[SWAP_ERR_SIZE];
    size_t n = s->shard_n[i];
    struct state_shard *sh = state_shard(s, i, r);
    if (!s->swapped[i]) {
        struct tensor *t = kind_tensor(sh, which);
        float *dst = tensor_acquire_write(t);
        const size_t block = (size_t)1 << 22; /* elements: 16 MiB */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < len; b += block)
            memcpy(dst + b, src + b, (len - b < block ? len - b : block) * sizeof *dst);
        memset(dst + len, 0, (n - len) * sizeof *dst);
        tensor_release(t);
        return;
    }
    rt_wait_all();
    float *region = aio_alloc_aligned(s->region_bytes[i]);
    CHECK(region);
    memcpy(region, src, len * sizeof *region);
    memset(region + len, 0, s->region_bytes[i] - len * sizeof *region);
    if (swap_file_write(s->swapf[i * s->R + r], region, which * s->region_bytes[i],
                        s->region_bytes[i], s->generation, err, sizeof err) < 0)
        user_fail("%s", err);
    struct tensor *copies[] = {sh->param, sh->param_alt};
    for (int k = 0; which == STATE_MASTER && k < 2 && copies[k]; k++) {
        dtype_from_f32(s->opt.dt, region, tensor_acquire_write(copies[k]), n);
        tensor_release(copies[k]);
    }
    free(region);
}

/* Faults in the optimizer state that stays in RAM for the CPU's AdamW (masters and moments), on
 * all cores at once, before the first step: otherwise that step's AdamW tasks take the page
 * faults of tens of GB on the fly (4.9 s more in the second iteration of the 3.642B CPU-offload
 * benchmark, issue 17). The pages land on the nodes of the threads that touch them: spread over
 * the machine's nodes like the CPU workers that steal the AdamW pieces. The GPU's AdamW (state
 * copied to the device) and the swap buffers (pinned pool) need none of it. */
static void touch_optimizer_state(struct state *s)
{
    if (rt_simulated() || state_optim_where(s) != RT_WHERE_CPU) return;
    const size_t chunk = (size_t)64 << 20;
    struct tensor *ts[3];
    size_t nchunks = 0;
    int64_t total = 0;
    for (int i = 0; i < s->tab->n; i++)
        for (int r = 0; r < s->R && !s->swapped[i]; r++) {
            size_t bytes = s->shard_n[i] * sizeof(float);
            nchunks += 3 * ((bytes + chunk - 1) / chunk);
            total += 3 * (int64_t)bytes;
        }
    struct touch {
        struct tensor *t;
        size_t first;
    } *todo = malloc(nchunks * sizeof *todo);
    CHECK(todo || !nchunks);
    size_t k = 0;
    for (int i = 0; i < s->tab->n; i++)
        for (int r = 0; r < s->R && !s->swapped[i]; r++) {
            struct state_shard *sh = state_shard(s, i, r);
            ts[0] = sh->master, ts[1] = sh->m, ts[2] = sh->v;
            for (int j = 0; j < 3; j++)
                for (size_t first = 0; first < tensor_bytes(ts[j]); first += chunk)
                    todo[k++] = (struct touch){ts[j], first};
        }
    struct progress pr;
    progress_begin(&pr, "touching", "touched", "the optimizer state in RAM", total);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t c = 0; c < k; c++) {
        tensor_touch_host(todo[c].t, todo[c].first, chunk);
        size_t left = tensor_bytes(todo[c].t) - todo[c].first;
        progress_add(&pr, (int64_t)(left < chunk ? left : chunk));
    }
    progress_end(&pr);
    free(todo);
}

/* Fills w like a sequential loop drawing two uniforms per element from one splitmix64 stream;
 * the stream is counter-based (state = seed + calls * increment), so blocks of elements start
 * their draws in parallel where the loop would have reached them: the same values on any thread
 * count. */
static void init_values(float *w, size_t n, enum model_init kind, float std, uint64_t seed)
{
    const size_t block = 1 << 16;
#pragma omp parallel for schedule(static)
    for (size_t b0 = 0; b0 < n; b0 += block) {
        uint64_t s = seed + 2 * (uint64_t)b0 * RNG_INCREMENT;
        for (size_t i = b0; i < n && i < b0 + block; i++) {
            switch (kind) {
            case MODEL_INIT_ZERO:
                w[i] = 0;
                break;
            case MODEL_INIT_ONE:
                w[i] = 1;
                break;
            case MODEL_INIT_NORMAL: {
                double u1 = rng_uniform(&s), u2 = rng_uniform(&s);
                w[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
                break;
            }
            }
        }
    }
}

/* The initial state, m and v zero: each tensor's master draws from its own stream (init_values
 * fills it in parallel, padding rows stay 0); with several ranks every process draws the full
 * tensor and each of its ranks keeps its slice, so the weights are those of one rank. A swapped
 * shard's go to its swap file as generation 0, with its compute copy; the others' compute copies
 * follow at state_sync_params. */
static void init_masters(struct state *s)
{
    struct progress pr;
    int64_t total = 0;
    for (int i = 0; i < s->tab->n; i++)
        total += (int64_t)(s->W * s->shard_n[i] * sizeof(float));
    progress_begin(&pr, "initialising", "initialised", "the fp32 master weights", total);
    for (int i = 0; i < s->tab->n; i++) {
        const struct gpt_param *p = &s->tab->params[i];
        size_t n = s->shard_n[i];
        float *w = calloc(s->W * n, sizeof *w);
        CHECK(w);
        init_values(w, model_param_hf_numel(p), p->init, p->init_std,
                    s->opt.seed ^ ((uint64_t)(i + 1) * 0xD1B54A32D192ED03ull));
        for (int r = 0; r < s->R; r++) {
            shard_put(s, i, r, STATE_MASTER, w + state_global_rank(s, r) * n, n);
            /* a swap file's blocks start unwritten: its moments are written once, all zero */
            for (int k = STATE_EXP_AVG; k <= STATE_EXP_AVG_SQ && s->swapped[i]; k++)
                shard_put(s, i, r, k, w, 0);
        }
        free(w);
        progress_add(&pr, (int64_t)(s->W * n * sizeof(float)));
    }
    progress_end(&pr);
}

void state_sync_params(struct state *s)
{
    if (s->opt.dt == DTYPE_FP32) return;
    for (int i = 0; i < s->tab->n; i++)
        for (int r = 0; r < s->R && !s->swapped[i]; r++) {
            struct state_shard *sh = state_shard(s, i, r);
            rt_set_worker(s->opt.comm ? comm_worker(s->opt.comm, r) : -1);
            cast_insert(sh->param, sh->master, RT_PRIO_HIGH, state_optim_where(s));
            if (sh->param_alt)
                cast_insert(sh->param_alt, sh->master, RT_PRIO_HIGH, state_optim_where(s));
        }
    rt_set_worker(-1);
}

void state_delayed_swap(struct state *s)
{
    for (int i = 0; i < s->tab->n; i++)
        for (int r = 0; r < s->R; r++) {
            struct state_shard *sh = state_shard(s, i, r);
            CHECK_MSG(sh->param_alt && sh->grad_alt,
                      "state_delayed_swap without the delayed update");
            struct tensor *p = sh->param, *g = sh->grad;
            sh->param = sh->param_alt, sh->param_alt = p;
            sh->grad = sh->grad_alt, sh->grad_alt = g;
        }
}

struct state *state_create(const struct model_table *tab, const struct state_options *opt,
                           size_t rank_pinned_bytes)
{
    struct state *s = calloc(1, sizeof *s);
    CHECK(s);
    s->tab = tab;
    s->opt = *opt;
    s->R = opt->comm ? comm_local(opt->comm) : 1;
    s->W = opt->comm ? comm_world(opt->comm) : 1;
    CHECK_MSG(!opt->delayed_update || (opt->optim_tier != TIER_GPU && opt->dt != DTYPE_FP32),
              "the delayed update needs the CPU optimizer and fp16/bf16 compute copies");
    s->shard_n = calloc(tab->n, sizeof *s->shard_n);
    s->swapped = calloc(tab->n, sizeof *s->swapped);
    s->shards = calloc((size_t)tab->n * s->R, sizeof *s->shards);
    s->store = calloc((size_t)tab->n * s->R * SHARD_SLOTS, sizeof *s->store);
    CHECK(s->shard_n && s->swapped && s->shards && s->store);
    for (int i = 0; i < tab->n; i++) {
        size_t n = model_param_numel(&tab->params[i]);
        s->shard_n[i] = s->W > 1 ? comm_shard_elems(n, s->W, 4096, dtype_size(opt->dt)) : n;
    }
    if (opt->optim_tier == TIER_NVME) plan_swap(s);
    rt_pool_init(pinned_bytes(s, rank_pinned_bytes));
    for (int i = 0; i < tab->n; i++)
        for (int r = 0; r < s->R; r++)
            shard_init(s, i, r);
    touch_optimizer_state(s);
    /* The simulation's swap tasks are timed, never run, and its weights never read (no kernel
     * runs; graph/gpt.c's stand-ins replace what the host reads): no swap files, no weights. */
    if (opt->optim_tier == TIER_NVME && !rt_simulated()) swap_files_create(s);
    if (opt->optim_tier == TIER_NVME) swap_buffers_create(s);
    if (!rt_simulated()) init_masters(s);
    state_sync_params(s);
    return s;
}

void state_destroy(struct state *s)
{
    rt_wait_all();
    for (size_t i = 0; i < (size_t)s->tab->n * s->R * SHARD_SLOTS; i++)
        tensor_free(&s->store[i]);
    for (int b = 0; b < s->R * s->nbufs; b++)
        for (int k = 0; k < 3; k++)
            tensor_free(&s->bufs[b][k]);
    for (int i = 0; s->swapf && i < s->tab->n * s->R; i++)
        if (s->swapf[i]) swap_file_close(s->swapf[i]);
    for (int j = 0; j < s->npaths; j++) {
        if (s->swapdir[j]) swap_dir_close(s->swapdir[j]);
        if (s->aio[j]) aio_engine_destroy(s->aio[j]);
    }
    rt_pool_release(); /* after every tensor carved from it */
    free(s->bufs);
    free(s->swapf);
    free(s->folder);
    free(s->region_bytes);
    free(s->bufset);
    free(s->store);
    free(s->shards);
    free(s->shard_n);
    free(s->swapped);
    free(s);
}

/* A buffer of W shards of tensor i's state, this process's ranks' slices filled in (global ranks
 * are contiguous per process) and the other processes' zero; one rank: the tensor. */
static float *shards_local_view(struct state *s, int i, enum state_kind which)
{
    size_t n = s->shard_n[i];
    float *view = calloc((size_t)s->W * n, sizeof *view);
    CHECK(view);
    for (int r = 0; r < s->R; r++)
        shard_get(s, i, r, which, view + state_global_rank(s, r) * n);
    return view;
}

/* view back into this process's shards (padding past the tensor's elements stays zero). */
static void shards_scatter(struct state *s, int i, enum state_kind which, const float *view)
{
    size_t n = s->shard_n[i], numel = model_param_numel(&s->tab->params[i]);
    for (int r = 0; r < s->R; r++) {
        size_t first = state_global_rank(s, r) * n;
        size_t len = first >= numel ? 0 : numel - first < n ? numel - first : n;
        shard_put(s, i, r, which, view + first, len);
    }
}

/* What process 0 asks of the others while they serve: tensor i's state `which`, or with i < 0
 * the end, `which` then carrying process 0's status. */
struct state_request {
    int32_t i, which;
};

/* Several processes: this process's slices of the state into process 0's view. */
static void shards_gather(struct state *s, float *view, int i)
{
    comm_gather_host(s->opt.comm, view, s->R * s->shard_n[i] * sizeof *view);
}

int state_serve(struct state *s)
{
    struct state_request q;
    CHECK_MSG(state_process(s) != 0, "process 0 reads the state; the others serve it");
    for (;;) {
        comm_bcast_host(s->opt.comm, &q, sizeof q);
        if (q.i < 0) return q.which;
        float *view = shards_local_view(s, q.i, (enum state_kind)q.which);
        shards_gather(s, view, q.i);
        free(view);
    }
}

void state_serve_end(struct state *s, int status)
{
    struct state_request q = {-1, status};
    if (s->R < s->W) comm_bcast_host(s->opt.comm, &q, sizeof q);
}

float *state_acquire(struct state *s, int i, enum state_kind which, int write)
{
    float *view = shards_local_view(s, i, which);
    if (write || s->R == s->W) return view;
    /* a read across processes: the others serve (state_serve) */
    struct state_request q = {i, which};
    CHECK_MSG(state_process(s) == 0, "only process 0 reads the state of several processes");
    comm_bcast_host(s->opt.comm, &q, sizeof q);
    shards_gather(s, view, i);
    return view;
}

void state_release(struct state *s, int i, enum state_kind which, float *view, int write)
{
    if (write) shards_scatter(s, i, which, view);
    free(view);
}

void state_optim_placement(const struct state *s, struct state_optim_placement *out)
{
    memset(out, 0, sizeof *out);
    out->folders = s->npaths;
    for (int j = 0; j < s->npaths; j++)
        out->io_numa[j] = aio_engine_placement(s->aio[j]);
    for (int i = 0; s->swapf && i < s->tab->n * s->R; i++) {
        if (!s->swapf[i]) continue;
        out->folder_files[s->folder[i]]++;
        out->folder_bytes[s->folder[i]] += 3 * (uint64_t)s->region_bytes[i / s->R];
    }
    for (int i = 0; i < s->tab->n; i++) {
        uint64_t bytes = 12 * (uint64_t)s->shard_n[i] * s->R; /* this process's shards */
        /* several ranks: one task per rank's shard */
        const struct tensor *master = s->shards[i * s->R].master;
        out->adamw_tasks += master && master->ntiles ? master->ntiles : s->R;
        if (s->swapped[i]) {
            out->swapped_tensors++;
            out->swapped_bytes += bytes;
        } else {
            out->resident_tensors++;
            out->resident_bytes += bytes;
        }
    }
    for (int b = 0; b < s->R * s->nbufs; b++)
        out->swap_buffer_bytes += 3 * tensor_bytes(&s->bufs[b][0]);
}

/* One aio engine per folder and process: their counts are those of all the process's ranks. The
 * simulation has none: each update's swap tasks read and write every swapped shard's three
 * regions. */
void state_nvme_traffic(const struct state *s, uint64_t *read, uint64_t *written, uint64_t *kept)
{
    struct aio_stats st = {0, 0, 0};
    for (int j = 0; j < s->npaths; j++) {
        struct aio_stats e = aio_engine_stats(s->aio[j]);
        st.bytes_read += e.bytes_read;
        st.bytes_written += e.bytes_written;
    }
    for (int i = 0; rt_simulated() && s->region_bytes && i < s->tab->n; i++)
        st.bytes_read += s->generation * s->R * 3 * (uint64_t)s->region_bytes[i];
    *read = st.bytes_read;
    *written = rt_simulated() ? st.bytes_read : st.bytes_written;
    *kept = 0;
    for (int i = 0; s->swapf && i < s->tab->n * s->R; i++)
        if (s->swapf[i]) *kept += swap_file_kept_bytes(s->swapf[i]);
}
