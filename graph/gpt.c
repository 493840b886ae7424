/* gpt.c: GPT-2 forward, backward and AdamW as task submissions (see gpt.h). */
#include "gpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "comm.h"
#include "progress.h"
#include "rng.h"
#include "swap.h"
#include "align.h"

/* One block's activations (model.h's MODEL_ACT_LN1 to MODEL_ACT_FCPROJ): a single shared set when
 * checkpointing, else one set per layer. */
struct layer_acts {
    struct tensor ln1, ln1_mean, ln1_rstd; /* [N,C], [N], [N] */
    struct tensor qkv;                     /* [N,3C] */
    struct tensor att;                     /* [B,NH,T,T] softmax probabilities */
    struct tensor atty, attproj, res2;     /* [N,C] */
    struct tensor ln2, ln2_mean, ln2_rstd; /* [N,C], [N], [N] */
    struct tensor fch, fch_gelu;           /* [N,4C] */
    struct tensor fcproj;                  /* [N,C] */
};

/* One data-parallel rank's working set: its micro-batch, activations and activation gradients,
 * and the full compute-dtype parameters and gradients its compute reads and writes. */
struct rank {
    int worker;                            /* comm_worker: where its compute runs (-1: any) */
    struct tensor inputs, targets;         /* [N] int32 */
    struct tensor encoded;                 /* [N,C] the first block's input */
    struct tensor *res3;                   /* [L] of [N,C]: each block's output */
    struct layer_acts *acts;               /* [1] or [L] */
    struct tensor lnf, lnf_mean, lnf_rstd; /* [N,C], [N], [N] */
    struct tensor logits;                  /* [N,Vp], dlogits after the backward */
    struct tensor losses;                  /* [N] fp32 */
    struct tensor sumsq; /* [1] fp32: sum of squares of all gradients; several ranks: its shards',
                            then all ranks' (all-reduced), which its AdamW tasks read */
    struct tensor sumsq_parts; /* [nparams] fp32: each tensor's (shard's) sum of squares */
    /* gradients of activations, shared by all blocks */
    struct tensor dresidual, dln1, dqkv, datty, dln2, dlnf; /* [N,C] ([N,3C] for dqkv) */
    struct tensor dfch, dfch_gelu;                          /* [N,4C] */
    /* fp16/bf16 with tiling: fp32 sums of a tiled layer's input gradient ([N,C], [N,4C]) */
    struct tensor dacc, dacc4;
    /* [nparams]: full parameters and gradients; one rank: the table's own param and grad, else
     * gathered from the shards and reduce-scattered into them, and released after use */
    struct tensor **wfull, **gfull;
};

/* The runtime half of a trainable tensor's shard. The master (fp32) is what checkpoints hold;
 * `param` is the compute copy in opt.dt (the master itself in fp32 runs). With the optimizer state
 * on NVMe, master, m and v are NULL for the tensors streamed from swap files (`swapped`). */
struct shard {
    struct tensor *param, *grad, *master, *m, *v;
};

struct gpt {
    struct gpt_config cfg;
    struct gpt_options opt;
    struct model_table tab;
    struct model_act_info acts[MODEL_NACTS];
    int nparams;  /* tab.n */
    int *swapped; /* [nparams]: tensor i's optimizer state is in swap files (all ranks' shards) */
    int R;        /* data-parallel ranks in this process (1 without a communicator) */
    int W;        /* data-parallel ranks in all processes (R in one process) */
    struct shard *shards; /* [nparams * R]: local rank r's shard of tensor i at i * R + r */
    size_t *shard_n;      /* [nparams]: elements of each shard (the whole tensor: one rank) */
    struct tensor *store; /* the shards' tensors, 5 per shard */
    struct tensor *full;  /* several ranks: the ranks' full buffers, 2 per shard (param,
                             grad), those of layers sharing a slot left unused */
    /* Several ranks: ZeRO-3's memory saving. Layer l's full parameters are the buffers of layer
     * l % slots, so the all-gather of layer l + slots, which writes them, waits for layer l's
     * tasks that read them (StarPU's write-after-read): at most `slots` layers' gathered
     * parameters exist per rank, and the gathers run at most slots - 1 layers ahead. Full
     * gradients likewise with grad_slots (L when gradients accumulate over micro-batches: each
     * layer's then lives until the step's last backward). Embeddings and ln_f keep their own. */
    int slots, grad_slots;
    struct rank *ranks; /* [R] */
    /* optimizer state on NVMe: one swap file per shard of a swapped tensor (local rank r's of
     * tensor i at i * R + r; master | m | v regions of region_bytes[i] each), in this process's
     * one swap folder, and per local rank nbufs sets of three RAM buffers cycled through its
     * shards' files (rank r's set b at r * nbufs + b) */
    struct aio_engine *aio;
    struct swap_dir *swapdir;
    struct swap_file **swapf;
    size_t *region_bytes;
    struct tensor (*bufs)[3];
    int nbufs;
    uint64_t generation; /* what the last swap-out wrote */
};

const struct gpt_config *gpt_get_config(const struct gpt *m)
{
    return &m->cfg;
}
int gpt_num_tensors(const struct gpt *m)
{
    return m->nparams;
}
const struct gpt_param *gpt_tensor(const struct gpt *m, int i)
{
    return &m->tab.params[i];
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

void gpt_check_config(const struct gpt_config *c, const struct gpt_options *o)
{
    if (c->L < 1 || c->C < 1 || c->NH < 1 || c->V < 1 || o->B < 1 || o->T < 1)
        user_fail("layers, hidden size, heads, vocabulary, micro-batch and sequence length must "
                  "be positive");
    if (c->C % c->NH != 0)
        user_fail("--num-attention-heads %d does not divide --hidden-size %d: choose heads so that "
                  "hidden/heads is an integer",
                  c->NH, c->C);
    if (o->T > c->maxT)
        user_fail("--seq-length %d is longer than the position table (--max-position-embeddings "
                  "%d): raise it or shorten the sequence",
                  o->T, c->maxT);
    if (c->Vp < c->V)
        user_fail("padded vocabulary %d is smaller than the vocabulary %d", c->Vp, c->V);
    if (o->offload_checkpoints && !o->checkpointing)
        user_fail("--checkpoint-in-cpu offloads activation checkpoints: add "
                  "--checkpoint-activations or drop it");
    /* Tiles are views of a tensor's host copy (tensor_tiles), and the gathered full buffers that
     * several ranks compute with have none: tiling them needs a home for every gathered layer. */
    if (o->comm && comm_world(o->comm) > 1 && o->tile_size > 0)
        user_fail("ZeRO-3 over %d ranks does not support --tile-size yet: drop it or use one rank",
                  comm_world(o->comm));
}

/* The initial fp32 values of tensor i into w (padding rows stay 0). */
static void init_param(const struct gpt *m, int i, float *w)
{
    const struct gpt_param *p = &m->tab.params[i];
    init_values(w, model_param_hf_numel(p), p->init, p->init_std,
                m->opt.seed ^ ((uint64_t)(i + 1) * 0xD1B54A32D192ED03ull));
}

/* Tiles of tensor i under opt.tile_size: ceil(rows / tile_size) when it belongs to a linear
 * layer wider than that, else 0 (kept whole). */
static int param_tiles(const struct gpt *m, int i)
{
    const struct gpt_param *p = &m->tab.params[i];
    int64_t rows = p->op ? p->shape[0] : 0, tile = m->opt.tile_size;
    return tile > 0 && rows > tile ? (int)((rows + tile - 1) / tile) : 0;
}

/* How tensor i is split, for the compute (tile_size) or, with AdamW on CPU workers, for the
 * optimizer's tasks (sub_group elements each, whole rows); 0: kept whole. */
static int param_split(const struct gpt *m, int i)
{
    const struct gpt_param *p = &m->tab.params[i];
    int64_t rows = p->shape[0], sub = m->opt.optim_chunk;
    if (param_tiles(m, i)) return param_tiles(m, i);
    if (m->opt.optim_tier == TIER_GPU || m->swapped[i] || sub <= 0 || m->W > 1) return 0;
    int64_t pieces = (model_param_numel(p) + sub - 1) / sub;
    return pieces > 1 ? (int)(pieces < rows ? pieces : rows) : 0;
}

/* Which tensors stream from NVMe: the planned resident share of a rank's optimizer bytes stays
 * in RAM, taken in table order (whole shards), the rest is swapped. Every rank's shards have the
 * same sizes, so one plan serves all ranks (the whole tensors with one rank). A fixed plan, not a
 * cache: every shard is visited once per step, the cyclic pattern under which LRU keeps exactly
 * the wrong ones. */
static void plan_swap(struct gpt *m)
{
    uint64_t total = 0, kept = 0;
    m->region_bytes = calloc(m->nparams, sizeof *m->region_bytes);
    CHECK(m->region_bytes);
    for (int i = 0; i < m->nparams; i++)
        total += 12 * (uint64_t)m->shard_n[i];
    uint64_t budget = (uint64_t)(m->opt.resident_fraction * (double)total);
    for (int i = 0; i < m->nparams; i++) {
        uint64_t bytes = 12 * (uint64_t)m->shard_n[i];
        m->swapped[i] = kept + bytes > budget;
        if (!m->swapped[i])
            kept += bytes;
        else
            m->region_bytes[i] = round_up(m->shard_n[i] * sizeof(float), SWAP_BLOCK_SIZE);
    }
}

static size_t region_max(const struct gpt *m)
{
    size_t max = 0;
    for (int i = 0; m->region_bytes && i < m->nparams; i++)
        max = m->region_bytes[i] > max ? m->region_bytes[i] : max;
    return max;
}

/* Parameters and gradients have their home in pinned CPU memory when the optimizer runs on CPU
 * workers (it reads the gradients and writes the parameters there) or when asked. */
static int params_in_pinned_ram(const struct gpt *m)
{
    return m->opt.optim_tier != TIER_GPU || m->opt.offload_param;
}

/* The activation checkpoints (the blocks' inputs) have their home in pinned CPU memory. */
static int ckpt_offloaded(const struct gpt *m)
{
    return m->opt.checkpointing && m->opt.offload_checkpoints;
}

/* Where local rank k keeps copy l of activation a of the table. */
static struct tensor *rank_act(struct rank *k, enum model_act a, int l)
{
    struct layer_acts *x = &k->acts[a >= MODEL_ACT_LN1 && a <= MODEL_ACT_FCPROJ ? l : 0];
    struct tensor *t[MODEL_NACTS] = {
        [MODEL_ACT_INPUTS] = &k->inputs,
        [MODEL_ACT_TARGETS] = &k->targets,
        [MODEL_ACT_ENCODED] = &k->encoded,
        [MODEL_ACT_LAYER_OUT] = &k->res3[a == MODEL_ACT_LAYER_OUT ? l : 0],
        [MODEL_ACT_LN1] = &x->ln1,
        [MODEL_ACT_LN1_MEAN] = &x->ln1_mean,
        [MODEL_ACT_LN1_RSTD] = &x->ln1_rstd,
        [MODEL_ACT_QKV] = &x->qkv,
        [MODEL_ACT_ATT] = &x->att,
        [MODEL_ACT_ATTY] = &x->atty,
        [MODEL_ACT_ATTPROJ] = &x->attproj,
        [MODEL_ACT_RES2] = &x->res2,
        [MODEL_ACT_LN2] = &x->ln2,
        [MODEL_ACT_LN2_MEAN] = &x->ln2_mean,
        [MODEL_ACT_LN2_RSTD] = &x->ln2_rstd,
        [MODEL_ACT_FCH] = &x->fch,
        [MODEL_ACT_FCH_GELU] = &x->fch_gelu,
        [MODEL_ACT_FCPROJ] = &x->fcproj,
        [MODEL_ACT_LNF] = &k->lnf,
        [MODEL_ACT_LNF_MEAN] = &k->lnf_mean,
        [MODEL_ACT_LNF_RSTD] = &k->lnf_rstd,
        [MODEL_ACT_LOGITS] = &k->logits,
        [MODEL_ACT_LOSSES] = &k->losses,
        [MODEL_ACT_SUMSQ] = &k->sumsq,
        [MODEL_ACT_SUMSQ_PARTS] = &k->sumsq_parts,
        [MODEL_ACT_DRESIDUAL] = &k->dresidual,
        [MODEL_ACT_DLN1] = &k->dln1,
        [MODEL_ACT_DQKV] = &k->dqkv,
        [MODEL_ACT_DATTY] = &k->datty,
        [MODEL_ACT_DLN2] = &k->dln2,
        [MODEL_ACT_DLNF] = &k->dlnf,
        [MODEL_ACT_DFCH] = &k->dfch,
        [MODEL_ACT_DFCH_GELU] = &k->dfch_gelu,
        [MODEL_ACT_DACC] = &k->dacc,
        [MODEL_ACT_DACC4] = &k->dacc4,
    };
    return t[a];
}

/* Where copy l of activation a has its home: the batch, the losses and the gradient norm, which
 * the host writes or reads every step, in pinned memory, and so are the offloaded checkpoints
 * (the blocks' inputs: the last block's output is none); the rest lives on workers only. */
static enum tensor_host act_home(const struct gpt *m, enum model_act a, int l)
{
    enum tensor_host ckpt = ckpt_offloaded(m) ? TENSOR_HOST_PINNED : TENSOR_HOST_NONE;
    switch (a) {
    case MODEL_ACT_INPUTS:
    case MODEL_ACT_TARGETS:
    case MODEL_ACT_LOSSES:
    case MODEL_ACT_SUMSQ:
        return TENSOR_HOST_PINNED;
    case MODEL_ACT_ENCODED:
        return ckpt;
    case MODEL_ACT_LAYER_OUT:
        return l < m->cfg.L - 1 ? ckpt : TENSOR_HOST_NONE;
    default:
        return TENSOR_HOST_NONE;
    }
}

/* Bytes of the pinned pool: the activations whose home is there, the parameters and gradients
 * when theirs is, and with the optimizer state on NVMe the swap buffers. */
static size_t pinned_bytes(const struct gpt *m)
{
    size_t total = 0;
    for (int a = 0; a < MODEL_NACTS; a++)
        for (int l = 0; l < m->acts[a].copies; l++)
            if (act_home(m, a, l) == TENSOR_HOST_PINNED)
                total += m->R * host_pool_piece_bytes(m->acts[a].bytes);
    for (int i = 0; i < m->nparams && params_in_pinned_ram(m); i++) {
        size_t bytes = m->shard_n[i] * dtype_size(m->opt.dt);
        total += m->R * host_pool_piece_bytes(bytes); /* the gradient */
        if (m->opt.dt != DTYPE_FP32 || m->swapped[i]) total += m->R * host_pool_piece_bytes(bytes);
    }
    int nbufs = m->opt.swap_buffers > 0 ? m->opt.swap_buffers : 1;
    total += (size_t)m->R * nbufs * 3 * host_pool_piece_bytes(region_max(m));
    return total;
}

void gpt_optim_placement(const struct gpt *m, struct gpt_optim_placement *out)
{
    memset(out, 0, sizeof *out);
    out->io_numa =
        m->aio ? aio_engine_placement(m->aio) : (struct numa_io_choice){-1, NUMA_IO_UNPLACED};
    for (int i = 0; i < m->nparams; i++) {
        uint64_t bytes = 12 * (uint64_t)m->shard_n[i] * m->R; /* this process's shards */
        /* several ranks: one task per rank's shard */
        const struct tensor *master = m->shards[i * m->R].master;
        out->adamw_tasks += master && master->ntiles ? master->ntiles : m->R;
        if (m->swapped[i]) {
            out->swapped_tensors++;
            out->swapped_bytes += bytes;
        } else {
            out->resident_tensors++;
            out->resident_bytes += bytes;
        }
    }
    for (int b = 0; b < m->R * m->nbufs; b++)
        out->swap_buffer_bytes += 3 * tensor_bytes(&m->bufs[b][0]);
}

static struct tensor *state_tensor(struct shard *p, enum gpt_state which)
{
    return which == GPT_STATE_MASTER ? p->master : which == GPT_STATE_EXP_AVG ? p->m : p->v;
}

/* Global rank of local rank r. */
static int global_rank(const struct gpt *m, int r)
{
    return m->opt.comm ? comm_rank(m->opt.comm, r) : r;
}

int gpt_process(const struct gpt *m)
{
    return m->opt.comm ? comm_process(m->opt.comm) : 0;
}

/* State `which` of local rank r's shard of tensor i (shard_n[i] elements) into dst: from its
 * host copy, or from its swap file at the current generation (after every submitted task: the
 * shard's last swap-out may still be in flight). */
static void shard_state_get(struct gpt *m, int i, int r, enum gpt_state which, float *dst)
{
    char err[SWAP_ERR_SIZE];
    size_t s = m->shard_n[i];
    struct shard *sh = &m->shards[i * m->R + r];
    if (!m->swapped[i]) {
        struct tensor *t = state_tensor(sh, which);
        memcpy(dst, tensor_acquire_read(t), s * sizeof *dst);
        tensor_release(t);
        return;
    }
    rt_wait_all();
    float *region = aio_alloc_aligned(m->region_bytes[i]);
    CHECK(region);
    if (swap_file_read(m->swapf[i * m->R + r], region, which * m->region_bytes[i],
                       m->region_bytes[i], m->generation, err, sizeof err) < 0)
        user_fail("%s", err);
    memcpy(dst, region, s * sizeof *dst);
    free(region);
}

/* src[0..len) into state `which` of local rank r's shard of tensor i, the rest of the shard zero:
 * its host copy, or its swap file with the current generation, a swapped master refreshing its
 * compute copy too (resident ones follow at gpt_sync_params). */
static void shard_state_put(struct gpt *m, int i, int r, enum gpt_state which, const float *src,
                            size_t len)
{
    char err[SWAP_ERR_SIZE];
    size_t s = m->shard_n[i];
    struct shard *sh = &m->shards[i * m->R + r];
    if (!m->swapped[i]) {
        struct tensor *t = state_tensor(sh, which);
        float *dst = tensor_acquire_write(t);
        memset(dst, 0, s * sizeof *dst);
        memcpy(dst, src, len * sizeof *dst);
        tensor_release(t);
        return;
    }
    rt_wait_all();
    float *region = aio_alloc_aligned(m->region_bytes[i]);
    CHECK(region);
    memset(region, 0, m->region_bytes[i]);
    memcpy(region, src, len * sizeof *region);
    if (swap_file_write(m->swapf[i * m->R + r], region, which * m->region_bytes[i],
                        m->region_bytes[i], m->generation, err, sizeof err) < 0)
        user_fail("%s", err);
    if (which == GPT_STATE_MASTER) {
        dtype_from_f32(m->opt.dt, region, tensor_acquire_write(sh->param), s);
        tensor_release(sh->param);
    }
    free(region);
}

/* A buffer of W shards of tensor i's state, this process's ranks' slices filled in (global ranks
 * are contiguous per process) and the other processes' zero; one rank: the tensor. */
static float *shards_local_view(struct gpt *m, int i, enum gpt_state which)
{
    size_t s = m->shard_n[i];
    float *view = calloc((size_t)m->W * s, sizeof *view);
    CHECK(view);
    for (int r = 0; r < m->R; r++)
        shard_state_get(m, i, r, which, view + global_rank(m, r) * s);
    return view;
}

/* view back into this process's shards (padding past the tensor's elements stays zero). */
static void shards_scatter(struct gpt *m, int i, enum gpt_state which, const float *view)
{
    size_t s = m->shard_n[i], n = model_param_numel(&m->tab.params[i]);
    for (int r = 0; r < m->R; r++) {
        size_t first = global_rank(m, r) * s, len = first >= n ? 0 : n - first < s ? n - first : s;
        shard_state_put(m, i, r, which, view + first, len);
    }
}

/* What process 0 asks of the others while they serve: tensor i's state `which`, or with i < 0
 * the end, `which` then carrying process 0's status. */
struct state_request {
    int32_t i, which;
};

/* Several processes: this process's slices of the state into process 0's view. */
static void shards_gather(struct gpt *m, float *view, int i)
{
    comm_gather_host(m->opt.comm, view, m->R * m->shard_n[i] * sizeof *view);
}

int gpt_state_serve(struct gpt *m)
{
    struct state_request q;
    CHECK_MSG(gpt_process(m) != 0, "process 0 reads the state; the others serve it");
    for (;;) {
        comm_bcast_host(m->opt.comm, &q, sizeof q);
        if (q.i < 0) return q.which;
        float *view = shards_local_view(m, q.i, (enum gpt_state)q.which);
        shards_gather(m, view, q.i);
        free(view);
    }
}

void gpt_state_serve_end(struct gpt *m, int status)
{
    struct state_request q = {-1, status};
    if (m->R < m->W) comm_bcast_host(m->opt.comm, &q, sizeof q);
}

float *gpt_state_acquire(struct gpt *m, int i, enum gpt_state which, int write)
{
    float *view = shards_local_view(m, i, which);
    if (write || m->R == m->W) return view;
    /* a read across processes: the others serve (gpt_state_serve) */
    struct state_request q = {i, which};
    CHECK_MSG(gpt_process(m) == 0, "only process 0 reads the state of several processes");
    comm_bcast_host(m->opt.comm, &q, sizeof q);
    shards_gather(m, view, i);
    return view;
}

void gpt_state_release(struct gpt *m, int i, enum gpt_state which, float *view, int write)
{
    if (write) shards_scatter(m, i, which, view);
    free(view);
}

/* One aio engine per process: its counts are those of all the process's ranks. */
void gpt_nvme_traffic(const struct gpt *m, uint64_t *read, uint64_t *written, uint64_t *kept)
{
    struct aio_stats st = {0, 0, 0};
    if (m->aio) st = aio_engine_stats(m->aio);
    *read = st.bytes_read;
    *written = st.bytes_written;
    *kept = 0;
    for (int i = 0; m->swapf && i < m->nparams * m->R; i++)
        if (m->swapf[i]) *kept += swap_file_kept_bytes(m->swapf[i]);
}

/* The name of local rank r's shard of tensor i: the tensor's with one rank, with the global rank
 * added with several (its tensors' names and its swap file's start with it). */
static void shard_name(const struct gpt *m, int i, int r, char *out, size_t n)
{
    if (m->W > 1)
        snprintf(out, n, "%s.rank%d", m->tab.params[i].name, global_rank(m, r));
    else
        snprintf(out, n, "%s", m->tab.params[i].name);
}

/* The shard of tensor i that local rank r owns (its five store slots). */
static void shard_init(struct gpt *m, int i, int r)
{
    struct shard *p = &m->shards[i * m->R + r];
    struct tensor *s = &m->store[((size_t)i * m->R + r) * 5];
    size_t n = m->shard_n[i];
    enum tensor_type dt = (enum tensor_type)m->opt.dt;
    char base[112], name[128];
    shard_name(m, i, r, base, sizeof base);
    /* A split tensor lives in RAM, whence each task fetches its piece alone: StarPU switches
     * between a tensor and its pieces in the home memory. */
    int ntiles = param_split(m, i), swapped = m->swapped[i];
    enum tensor_host home = params_in_pinned_ram(m) ? TENSOR_HOST_PINNED
                            : ntiles                ? TENSOR_HOST_PAGEABLE
                                                    : TENSOR_HOST_NONE;
    if (!swapped) {
        snprintf(name, sizeof name, "%s.master", base);
        tensor_init(&s[0], name, TENSOR_TYPE_FP32, n, TENSOR_HOST_PAGEABLE);
        p->master = &s[0];
    }
    if (m->opt.dt == DTYPE_FP32 && !swapped) {
        p->param = p->master;
    } else {
        /* a swapped tensor's compute copy is written by AdamW on the CPU: keep it there */
        tensor_init(&s[1], base, dt, n, swapped ? TENSOR_HOST_PINNED : home);
        p->param = &s[1];
    }
    snprintf(name, sizeof name, "%s.grad", base);
    tensor_init(&s[2], name, dt, n, home);
    p->grad = &s[2];
    if (!swapped) {
        snprintf(name, sizeof name, "%s.exp_avg", base);
        tensor_init(&s[3], name, TENSOR_TYPE_FP32, n, TENSOR_HOST_PAGEABLE);
        p->m = &s[3];
        snprintf(name, sizeof name, "%s.exp_avg_sq", base);
        tensor_init(&s[4], name, TENSOR_TYPE_FP32, n, TENSOR_HOST_PAGEABLE);
        p->v = &s[4];
    }
    /* before any task touches them: StarPU plans partitions of unallocated data only */
    if (ntiles) {
        struct tensor *split[] = {p->param, p->grad, p->master, p->m, p->v};
        for (int k = 0; k < 5; k++) {
            if (!split[k] || (k == 2 && p->master == p->param)) continue;
            tensor_tiles(split[k], ntiles, (size_t)m->tab.params[i].shape[1]);
            split[k]->compute_tiles = k < 2 && param_tiles(m, i) > 0;
        }
    }
}

/* Creates the process's swap folder, one swap file per shard of a swapped tensor (named after
 * the shard: "<tensor>.rank<g>" with several ranks) and each local rank's RAM buffer sets. Exits
 * with a user error when the folder cannot be used or the disk cannot hold the state (found here,
 * at preallocation, never mid-run). */
static void swap_init(struct gpt *m)
{
    char err[SWAP_ERR_SIZE], name[160];
    size_t rmax = region_max(m);
    m->aio = aio_engine_create(m->opt.aio, err, sizeof err);
    if (!m->aio) user_fail("%s", err);
    aio_engine_place(m->aio, m->opt.nvme_path, rt_pool_info().numa_node);
    m->swapdir = swap_dir_open(m->aio, m->opt.nvme_path, err, sizeof err);
    if (!m->swapdir) user_fail("%s", err);
    m->swapf = calloc((size_t)m->nparams * m->R, sizeof *m->swapf);
    CHECK(m->swapf);
    struct progress pr;
    int64_t total = 0;
    for (int i = 0; i < m->nparams * m->R; i++)
        total += m->swapped[i / m->R] ? 3 * (int64_t)m->region_bytes[i / m->R] : 0;
    progress_begin(&pr, "preallocating", "preallocated", "the swap files", total);
    for (int i = 0; i < m->nparams * m->R; i++) {
        if (!m->swapped[i / m->R]) continue;
        shard_name(m, i / m->R, i % m->R, name, sizeof name);
        if (swap_file_create(m->swapdir, name, 3 * m->region_bytes[i / m->R], &m->swapf[i], err,
                             sizeof err) < 0)
            user_fail("%s", err);
        progress_add(&pr, 3 * (int64_t)m->region_bytes[i / m->R]);
    }
    progress_end(&pr);
    if (!rmax) return;
    m->nbufs = m->opt.swap_buffers > 0 ? m->opt.swap_buffers : 1;
    m->bufs = calloc((size_t)m->R * m->nbufs, sizeof *m->bufs);
    CHECK(m->bufs);
    static const char *const kind[3] = {"master", "exp_avg", "exp_avg_sq"};
    char pre[16] = "";
    for (int b = 0; b < m->R * m->nbufs; b++)
        for (int k = 0; k < 3; k++) {
            if (m->W > 1) snprintf(pre, sizeof pre, "rank%d.", global_rank(m, b / m->nbufs));
            snprintf(name, sizeof name, "%sswap_buffer%d.%s", pre, b % m->nbufs, kind[k]);
            tensor_init(&m->bufs[b][k], name, TENSOR_TYPE_FP32, rmax / sizeof(float),
                        TENSOR_HOST_PINNED);
        }
}

/* The initial state of a swapped shard, generation 0: master `w` (shard_n[i] elements), m and v
 * zero; also its compute copy. No task runs yet: the first buffer set's host copies are written
 * directly (its m and v are still zero). */
static void swap_write_initial(struct gpt *m, int i, int r, const float *w)
{
    char err[SWAP_ERR_SIZE];
    struct shard *sh = &m->shards[i * m->R + r];
    float *buf = m->bufs[0][0].host;
    memset(buf, 0, m->region_bytes[i]);
    memcpy(buf, w, m->shard_n[i] * sizeof *buf);
    dtype_from_f32(m->opt.dt, buf, sh->param->host, m->shard_n[i]);
    for (int k = 0; k < 3; k++)
        if (swap_file_write(m->swapf[i * m->R + r], m->bufs[0][k].host, k * m->region_bytes[i],
                            m->region_bytes[i], 0, err, sizeof err) < 0)
            user_fail("%s", err);
}

/* The initial master weights (m and v are zero): each tensor draws from its own stream
 * (init_values fills it in parallel); with several ranks every process draws the full tensor and
 * each of its ranks keeps its slice, so the weights are those of one rank. A swapped shard's go
 * to its swap file. */
static void init_masters(struct gpt *m)
{
    struct progress pr;
    int64_t total = 0;
    for (int i = 0; i < m->nparams; i++)
        total += (int64_t)(m->W * m->shard_n[i] * sizeof(float));
    progress_begin(&pr, "initialising", "initialised", "the fp32 master weights", total);
    for (int i = 0; i < m->nparams; i++) {
        size_t s = m->shard_n[i];
        float *w = calloc(m->W * s, sizeof *w);
        CHECK(w);
        init_param(m, i, w);
        for (int r = 0; r < m->R; r++) {
            const float *mine = w + global_rank(m, r) * s;
            if (m->swapped[i])
                swap_write_initial(m, i, r, mine);
            else
                memcpy(m->shards[i * m->R + r].master->host, mine, s * sizeof *w);
        }
        free(w);
        progress_add(&pr, (int64_t)(m->W * s * sizeof(float)));
    }
    progress_end(&pr);
}

/* Local rank r's micro-batch, activations and full buffers; tensor names carry the global rank
 * when there are several. */
static void rank_init(struct gpt *m, int r)
{
    struct rank *k = &m->ranks[r];
    enum tensor_type dt = (enum tensor_type)m->opt.dt;
    char pre[16] = "", name[128];
    if (m->W > 1) snprintf(pre, sizeof pre, "rank%d.", global_rank(m, r));
    k->res3 = calloc(m->acts[MODEL_ACT_LAYER_OUT].copies, sizeof *k->res3);
    k->acts = calloc(m->acts[MODEL_ACT_LN1].copies, sizeof *k->acts);
    k->wfull = calloc(m->nparams, sizeof *k->wfull);
    k->gfull = calloc(m->nparams, sizeof *k->gfull);
    CHECK(k->res3 && k->acts && k->wfull && k->gfull);
    for (int a = 0; a < MODEL_NACTS; a++) {
        const struct model_act_info *x = &m->acts[a];
        static const enum tensor_type elem[] = {
            [MODEL_ELEM_FP32] = TENSOR_TYPE_FP32,
            [MODEL_ELEM_I32] = TENSOR_TYPE_I32,
        };
        for (int l = 0; l < x->copies; l++) {
            if (x->in_block)
                snprintf(name, sizeof name, "%sh%d.%s", pre, x->in_block > 0 ? l : -1, x->name);
            else
                snprintf(name, sizeof name, "%s%s", pre, x->name);
            tensor_init(rank_act(k, a, l), name, x->elem == MODEL_ELEM_DT ? dt : elem[x->elem],
                        x->n, act_home(m, a, l));
        }
    }
    for (int i = 0; i < m->nparams; i++) {
        if (m->W == 1) {
            k->wfull[i] = m->shards[i].param;
            k->gfull[i] = m->shards[i].grad;
            continue;
        }
        /* layer tensors: those of the layer whose slot it shares (named after that layer) */
        int l = model_tensor_layer(&m->tab, i);
        int wi = l < 0 ? i : i - (l - l % m->slots) * LP_COUNT;
        int gi = l < 0 ? i : i - (l - l % m->grad_slots) * LP_COUNT;
        struct tensor *wf = &m->full[((size_t)wi * m->R + r) * 2];
        struct tensor *gf = &m->full[((size_t)gi * m->R + r) * 2 + 1];
        size_t n = m->W * m->shard_n[i];
        if (wi == i) {
            snprintf(name, sizeof name, "%s.rank%d.full", m->tab.params[i].name, global_rank(m, r));
            tensor_init(wf, name, dt, n, TENSOR_HOST_NONE);
        }
        if (gi == i) {
            snprintf(name, sizeof name, "%s.rank%d.full_grad", m->tab.params[i].name,
                     global_rank(m, r));
            tensor_init(gf, name, dt, n, TENSOR_HOST_NONE);
        }
        k->wfull[i] = wf;
        k->gfull[i] = gf;
    }
}

struct gpt *gpt_create(const struct gpt_config *cfg, const struct gpt_options *opt)
{
    gpt_check_config(cfg, opt);
    struct gpt *m = calloc(1, sizeof *m);
    CHECK(m);
    m->cfg = *cfg;
    m->opt = *opt;
    m->R = opt->comm ? comm_local(opt->comm) : 1;
    m->W = opt->comm ? comm_world(opt->comm) : 1;
    model_table_init(&m->tab, cfg);
    m->nparams = m->tab.n;
    model_acts(
        m->acts, cfg,
        &(struct model_act_options){opt->B, opt->T, opt->dt, opt->checkpointing, opt->tile_size});
    int64_t layer_elems = model_block_numel(&m->tab);
    m->slots = opt->max_live_elems > 0 ? (int)(opt->max_live_elems / layer_elems) : 2;
    m->slots = m->slots > cfg->L ? cfg->L : m->slots < 2 ? (cfg->L < 2 ? cfg->L : 2) : m->slots;
    m->grad_slots = opt->micro_steps > 1 ? cfg->L : m->slots;
    m->shard_n = calloc(m->nparams, sizeof *m->shard_n);
    m->swapped = calloc(m->nparams, sizeof *m->swapped);
    m->shards = calloc((size_t)m->nparams * m->R, sizeof *m->shards);
    CHECK(m->shard_n && m->swapped && m->shards);
    for (int i = 0; i < m->nparams; i++) {
        size_t n = model_param_numel(&m->tab.params[i]);
        m->shard_n[i] = m->W > 1 ? comm_shard_elems(n, m->W, 4096, dtype_size(opt->dt)) : n;
    }
    if (opt->optim_tier == TIER_NVME) plan_swap(m);
    if (m->W > 1) {
        m->full = calloc((size_t)m->nparams * m->R * 2, sizeof *m->full);
        CHECK(m->full);
    }
    rt_pool_init(pinned_bytes(m));
    m->store = calloc((size_t)m->nparams * m->R * 5, sizeof *m->store);
    m->ranks = calloc(m->R, sizeof *m->ranks);
    CHECK(m->store && m->ranks);
    for (int r = 0; r < m->R; r++)
        m->ranks[r].worker = opt->comm ? comm_worker(opt->comm, r) : -1;
    for (int i = 0; i < m->nparams; i++)
        for (int r = 0; r < m->R; r++)
            shard_init(m, i, r);
    if (opt->optim_tier == TIER_NVME) swap_init(m);
    init_masters(m);
    gpt_sync_params(m);
    for (int r = 0; r < m->R; r++)
        rank_init(m, r);
    return m;
}

static void rank_free(struct gpt *m, struct rank *k)
{
    for (int a = 0; a < MODEL_NACTS; a++)
        for (int l = 0; l < m->acts[a].copies; l++)
            tensor_free(rank_act(k, a, l));
    free(k->res3);
    free(k->acts);
    free(k->wfull);
    free(k->gfull);
}

void gpt_destroy(struct gpt *m)
{
    rt_wait_all();
    for (size_t i = 0; i < (size_t)m->nparams * m->R * 5; i++)
        tensor_free(&m->store[i]);
    for (size_t i = 0; m->full && i < (size_t)m->nparams * m->R * 2; i++)
        tensor_free(&m->full[i]);
    for (int r = 0; r < m->R; r++)
        rank_free(m, &m->ranks[r]);
    for (int b = 0; b < m->R * m->nbufs; b++)
        for (int k = 0; k < 3; k++)
            tensor_free(&m->bufs[b][k]);
    for (int i = 0; m->swapf && i < m->nparams * m->R; i++)
        if (m->swapf[i]) swap_file_close(m->swapf[i]);
    if (m->swapdir) swap_dir_close(m->swapdir);
    if (m->aio) aio_engine_destroy(m->aio);
    rt_pool_release(); /* after every tensor carved from it */
    free(m->bufs);
    free(m->swapf);
    free(m->region_bytes);
    free(m->store);
    free(m->full);
    free(m->ranks);
    free(m->shards);
    free(m->shard_n);
    free(m->swapped);
    model_table_free(&m->tab);
    free(m);
}

/* Where AdamW runs, and so where the master weights are cast to the compute copies. */
static enum rt_where optim_where(const struct gpt *m)
{
    return m->opt.optim_tier == TIER_GPU ? RT_WHERE_COMPUTE : RT_WHERE_CPU;
}

void gpt_sync_params(struct gpt *m)
{
    if (m->opt.dt == DTYPE_FP32) return;
    for (int i = 0; i < m->nparams; i++)
        for (int r = 0; r < m->R && !m->swapped[i]; r++) {
            struct shard *sh = &m->shards[i * m->R + r];
            rt_set_worker(m->ranks[r].worker);
            cast_insert(sh->param, sh->master, RT_PRIO_HIGH, optim_where(m));
        }
    rt_set_worker(-1);
}

void gpt_set_batch(struct gpt *m, const int32_t *inputs, const int32_t *targets)
{
    size_t N = (size_t)m->opt.B * m->opt.T;
    for (size_t i = 0; i < N * m->R; i++)
        if (inputs[i] < 0 || inputs[i] >= m->cfg.V || targets[i] < 0 || targets[i] >= m->cfg.V)
            user_fail("token id %d is outside the model's vocabulary of %d: the data does not "
                      "match the model (check --data-path and --vocab-size)",
                      inputs[i] < 0 || inputs[i] >= m->cfg.V ? inputs[i] : targets[i], m->cfg.V);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        memcpy(tensor_acquire_write(&k->inputs), inputs + r * N, N * sizeof *inputs);
        tensor_release(&k->inputs);
        memcpy(tensor_acquire_write(&k->targets), targets + r * N, N * sizeof *targets);
        tensor_release(&k->targets);
    }
}

static struct layer_acts *acts_of(struct gpt *m, struct rank *k, int l)
{
    return &k->acts[m->opt.checkpointing ? 0 : l];
}

static struct tensor *block_input(struct rank *k, int l)
{
    return l == 0 ? &k->encoded : &k->res3[l - 1];
}

enum collective { GATHER_PARAMS, SCATTER_GRADS };

/* Several ranks: one collective for each of tensors first..first+count-1: the all-gather of the
 * parameter shards into every rank's full buffers, or the reduce-scatter of the ranks' full
 * gradients (summed) into the gradient shards. One rank: nothing (the compute uses the table's
 * tensors). */
static void collective(struct gpt *m, enum collective op, int first, int count)
{
    struct tensor *shard[COMM_MAX_LOCAL], *full[COMM_MAX_LOCAL];
    for (int i = first; m->W > 1 && i < first + count; i++) {
        for (int r = 0; r < m->R; r++) {
            struct shard *sh = &m->shards[i * m->R + r];
            shard[r] = op == GATHER_PARAMS ? sh->param : sh->grad;
            full[r] = op == GATHER_PARAMS ? m->ranks[r].wfull[i] : m->ranks[r].gfull[i];
        }
        if (op == GATHER_PARAMS)
            comm_all_gather(m->opt.comm, shard, full, m->shard_n[i]);
        else
            comm_reduce_scatter(m->opt.comm, full, shard, m->shard_n[i]);
    }
}

/* One block's forward up to the MLP activation; the full forward adds the MLP output projection
 * and the residual, which the recompute in backward does not need. */
static void block_forward_to_gelu(struct gpt *m, struct rank *k, int l, int prio)
{
    const struct gpt_config *c = &m->cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    struct layer_acts *a = acts_of(m, k, l);
    struct tensor *x = block_input(k, l);
#define W(p) (k->wfull[model_layer_tensor(l, p)])
    layernorm_forward_insert(&a->ln1, &a->ln1_mean, &a->ln1_rstd, x, W(LP_LN1_W), W(LP_LN1_B), N, C,
                             prio);
    matmul_forward_insert(&a->qkv, &a->ln1, W(LP_QKV_W), W(LP_QKV_B), N, C, 3 * C, prio);
    attention_forward_insert(&a->atty, &a->att, &a->qkv, B, T, C, c->NH, prio);
    matmul_forward_insert(&a->attproj, &a->atty, W(LP_PROJ_W), W(LP_PROJ_B), N, C, C, prio);
    add_forward_insert(&a->res2, x, &a->attproj, prio);
    layernorm_forward_insert(&a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->res2, W(LP_LN2_W),
                             W(LP_LN2_B), N, C, prio);
    matmul_forward_insert(&a->fch, &a->ln2, W(LP_FC_W), W(LP_FC_B), N, C, 4 * C, prio);
    gelu_forward_insert(&a->fch_gelu, &a->fch, prio);
#undef W
}

/* A task that brings layer l's parameters (l == L: the final LayerNorm and the LM head) to the
 * device once `after` is ready, with parameter offload (tiled tensors stream tile by tile and are
 * left out); in the backward (`ckpt`) with offloaded checkpoints, layer l's checkpoint too, for
 * its recompute. Several ranks: no parameters, the layer's all-gather is their prefetch (it reads
 * the shards from their home and runs ahead of the compute as far as the slots let it). */
static void prefetch_layer(struct gpt *m, struct rank *r, int l, struct tensor *after, int ckpt)
{
    struct tensor *ts[LP_COUNT + 1];
    int n = 0, first = l < m->cfg.L ? model_layer_tensor(l, 0) : model_lnf(&m->tab);
    int count = l < m->cfg.L ? LP_COUNT : 2, params = m->opt.offload_param && m->W == 1;
    if (l < 0) return;
    for (int k = 0; params && k < count; k++)
        if (!tensor_compute_tiles(m->shards[first + k].param)) ts[n++] = m->shards[first + k].param;
    if (params && l == m->cfg.L && !tensor_compute_tiles(m->shards[MODEL_WTE].param))
        ts[n++] = m->shards[MODEL_WTE].param;
    if (ckpt && ckpt_offloaded(m) && l < m->cfg.L) ts[n++] = block_input(r, l);
    if (n) prefetch_insert(ts, n, after, RT_PRIO_LOW);
}

/* With parameter offload, local rank r's shards of layer l's parameters (one rank: the table's
 * tensors), or with `grads` its gradient shards when their home is in pinned memory, are the first
 * to leave the device once the tasks submitted so far are done; gradients go home then. Call it
 * after the layer's last reader of the parameters (several ranks: its all-gather), and after the
 * last writer of the gradients (the last micro-batch's backward, or the reduce-scatter). The
 * gathered full buffers get no hint: they have no home to go to, and the slots bound them. */
static void evict_layer(struct gpt *m, int r, int l, int grads)
{
    for (int k = 0; k < LP_COUNT; k++) {
        struct shard *sh = &m->shards[model_layer_tensor(l, k) * m->R + r];
        if (!grads && m->opt.offload_param) tensor_wont_use(sh->param);
        if (grads && params_in_pinned_ram(m)) tensor_wont_use(sh->grad);
    }
}

void gpt_forward(struct gpt *m)
{
    const struct gpt_config *c = &m->cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    collective(m, GATHER_PARAMS, MODEL_WTE, 2);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        prefetch_layer(m, k, 0, &k->inputs, 0);
        encoder_forward_insert(&k->encoded, &k->inputs, k->wfull[MODEL_WTE], k->wfull[MODEL_WPE], B,
                               T, C, RT_PRIO_NORMAL);
    }
    for (int l = 0; l < c->L; l++) {
        collective(m, GATHER_PARAMS, model_layer_tensor(l, 0), LP_COUNT);
        for (int r = 0; r < m->R; r++) {
            struct rank *k = &m->ranks[r];
            struct layer_acts *a = acts_of(m, k, l);
            rt_set_worker(k->worker);
            prefetch_layer(m, k, l + 1, block_input(k, l), 0);
            block_forward_to_gelu(m, k, l, RT_PRIO_NORMAL);
            matmul_forward_insert(
                &a->fcproj, &a->fch_gelu, k->wfull[model_layer_tensor(l, LP_FCPROJ_W)],
                k->wfull[model_layer_tensor(l, LP_FCPROJ_B)], N, 4 * C, C, RT_PRIO_NORMAL);
            add_forward_insert(&k->res3[l], &a->res2, &a->fcproj, RT_PRIO_NORMAL);
            evict_layer(m, r, l, 0);
            /* the checkpoint goes home once this layer has read it, until its recompute (the
             * last layer's backward comes next and does not recompute: its input stays) */
            if (ckpt_offloaded(m) && l < c->L - 1) tensor_wont_use(block_input(k, l));
        }
    }
    int lnf = model_lnf(&m->tab);
    collective(m, GATHER_PARAMS, lnf, 2);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        layernorm_forward_insert(&k->lnf, &k->lnf_mean, &k->lnf_rstd, &k->res3[c->L - 1],
                                 k->wfull[lnf], k->wfull[lnf + 1], N, C, RT_PRIO_NORMAL);
        matmul_forward_insert(&k->logits, &k->lnf, k->wfull[MODEL_WTE], NULL, N, C, c->Vp,
                              RT_PRIO_NORMAL);
        crossentropy_forward_insert(&k->losses, &k->logits, &k->targets, N, c->V, c->Vp,
                                    RT_PRIO_NORMAL);
    }
    rt_set_worker(-1);
}

/* The first micro-batch of a step starts rank k's gradients of tensors first..first+count-1, just
 * before the tasks that add to them (several ranks: layers share full-gradient buffers, see
 * struct gpt's slots); the others add to them. */
static void zero_grads(struct rank *k, int first, int count, int micro, int prio)
{
    for (int i = first; micro == 0 && i < first + count; i++)
        zero_insert(k->gfull[i], prio);
}

static void block_backward(struct gpt *m, struct rank *k, int l, int prio, int micro)
{
    const struct gpt_config *c = &m->cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    struct layer_acts *a = acts_of(m, k, l);
    struct tensor *x = block_input(k, l);
#define W(p) (k->wfull[model_layer_tensor(l, p)])
#define G(p) (k->gfull[model_layer_tensor(l, p)])
    /* The last block's activations are still in the shared set from the forward. */
    if (m->opt.checkpointing && l != c->L - 1) block_forward_to_gelu(m, k, l, prio);
    zero_grads(k, model_layer_tensor(l, 0), LP_COUNT, micro, prio);
    /* dresidual holds d(block output); each LayerNorm backward adds its share to it in place,
     * which is the residual connections' backward. */
    zero_insert(&k->dfch_gelu, prio);
    matmul_backward_insert(&k->dfch_gelu, G(LP_FCPROJ_W), G(LP_FCPROJ_B), &k->dresidual,
                           &a->fch_gelu, W(LP_FCPROJ_W), N, 4 * C, C, &k->dacc4, prio);
    /* the layer below's parameters move in while this layer's backward runs: the next writer of
     * dfch_gelu is that layer, which needs them anyway */
    prefetch_layer(m, k, l - 1, &k->dfch_gelu, 1);
    zero_insert(&k->dfch, prio);
    gelu_backward_insert(&k->dfch, &a->fch, &k->dfch_gelu, prio);
    zero_insert(&k->dln2, prio);
    matmul_backward_insert(&k->dln2, G(LP_FC_W), G(LP_FC_B), &k->dfch, &a->ln2, W(LP_FC_W), N, C,
                           4 * C, &k->dacc, prio);
    layernorm_backward_insert(&k->dresidual, G(LP_LN2_W), G(LP_LN2_B), &k->dln2, &a->res2,
                              W(LP_LN2_W), &a->ln2_mean, &a->ln2_rstd, N, C, prio);
    zero_insert(&k->datty, prio);
    matmul_backward_insert(&k->datty, G(LP_PROJ_W), G(LP_PROJ_B), &k->dresidual, &a->atty,
                           W(LP_PROJ_W), N, C, C, &k->dacc, prio);
    zero_insert(&k->dqkv, prio);
    attention_backward_insert(&k->dqkv, &k->datty, &a->qkv, &a->att, B, T, C, c->NH, prio);
    zero_insert(&k->dln1, prio);
    matmul_backward_insert(&k->dln1, G(LP_QKV_W), G(LP_QKV_B), &k->dqkv, &a->ln1, W(LP_QKV_W), N, C,
                           3 * C, &k->dacc, prio);
    layernorm_backward_insert(&k->dresidual, G(LP_LN1_W), G(LP_LN1_B), &k->dln1, x, W(LP_LN1_W),
                              &a->ln1_mean, &a->ln1_rstd, N, C, prio);
#undef W
#undef G
    evict_layer(m, (int)(k - m->ranks), l, 0);
}

void gpt_backward(struct gpt *m, float loss_scale, int micro, int micro_steps)
{
    const struct gpt_config *c = &m->cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    int prio = RT_PRIO_NORMAL, last = micro == micro_steps - 1, lnf = model_lnf(&m->tab);
    CHECK_MSG(m->W == 1 || micro_steps == 1 || m->grad_slots == c->L,
              "gpt_backward: several micro-batches a step, but gpt_options.micro_steps said one");
    /* the gradient of the mean loss over every rank's micro-batches */
    float dloss = loss_scale / ((float)N * micro_steps * m->W);
    collective(m, GATHER_PARAMS, lnf, 2);
    collective(m, GATHER_PARAMS, MODEL_WTE, 1);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        zero_grads(k, MODEL_WTE, 1, micro, prio);
        zero_grads(k, lnf, 2, micro, prio);
        zero_insert(&k->dresidual, prio);
        zero_insert(&k->dlnf, prio);
        crossentropy_backward_insert(&k->logits, &k->targets, dloss, N, c->V, c->Vp, prio);
        matmul_backward_insert(&k->dlnf, k->gfull[MODEL_WTE], NULL, &k->logits, &k->lnf,
                               k->wfull[MODEL_WTE], N, C, c->Vp, &k->dacc, prio);
        layernorm_backward_insert(&k->dresidual, k->gfull[lnf], k->gfull[lnf + 1], &k->dlnf,
                                  &k->res3[c->L - 1], k->wfull[lnf], &k->lnf_mean, &k->lnf_rstd, N,
                                  C, prio);
    }
    if (last) collective(m, SCATTER_GRADS, lnf, 2);
    for (int l = c->L - 1; l >= 0; l--) {
        collective(m, GATHER_PARAMS, model_layer_tensor(l, 0), LP_COUNT);
        for (int r = 0; r < m->R; r++) {
            rt_set_worker(m->ranks[r].worker);
            block_backward(m, &m->ranks[r], l, prio, micro);
        }
        if (last) collective(m, SCATTER_GRADS, model_layer_tensor(l, 0), LP_COUNT);
        for (int r = 0; last && r < m->R; r++)
            evict_layer(m, r, l, 1);
    }
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        zero_grads(k, MODEL_WPE, 1, micro, prio);
        encoder_backward_insert(k->gfull[MODEL_WTE], k->gfull[MODEL_WPE], &k->dresidual, &k->inputs,
                                B, T, C, prio);
    }
    if (last) collective(m, SCATTER_GRADS, MODEL_WTE, 2);
    rt_set_worker(-1);
    if (!last) return;
    /* each rank's share of the global sum of squares, then the sum of all ranks' in every rank */
    struct tensor *sumsq[COMM_MAX_LOCAL];
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        zero_insert(&k->sumsq_parts, prio);
        for (int i = 0; i < m->nparams; i++)
            sumsq_insert(&k->sumsq_parts, i, m->shards[i * m->R + r].grad, prio);
        sum_insert(&k->sumsq, &k->sumsq_parts, prio);
        sumsq[r] = &k->sumsq;
    }
    rt_set_worker(-1);
    if (m->W > 1) comm_all_reduce(m->opt.comm, sumsq, 1);
}

void gpt_update(struct gpt *m, const struct adamw_hparams *hp)
{
    enum rt_where where = optim_where(m);
    /* Without clipping and without fp16's overflow skip, no step needs the global norm: each
     * tensor's AdamW (and its swap-in) then runs as soon as its own gradient is complete, while
     * the backward goes on with the layers below. */
    int with_norm = hp->clip_norm > 0 || m->opt.dt == DTYPE_FP16;
    int next = 0; /* buffer set of the next swapped tensor */
    for (int i = 0; i < m->nparams; i++) {
        struct adamw_hparams h = *hp;
        if (!m->tab.params[i].decay) h.weight_decay = 0;
        if (!m->swapped[i]) {
            /* each rank steps its own shard */
            for (int r = 0; r < m->R; r++) {
                struct shard *sh = &m->shards[i * m->R + r];
                rt_set_worker(m->ranks[r].worker);
                adamw_insert(sh->param == sh->master ? NULL : sh->param, sh->master, sh->m, sh->v,
                             sh->grad, with_norm ? &m->ranks[r].sumsq : NULL, &h, RT_PRIO_LOW,
                             where);
            }
            rt_set_worker(-1);
            continue;
        }
        /* each rank's shard: swap-in, AdamW, swap-out through the rank's buffer set `next`:
         * StarPU orders the swap-in of the shard that next uses the set after this swap-out, so
         * up to nbufs shards per rank are in flight */
        for (int r = 0; r < m->R; r++) {
            struct shard *sh = &m->shards[i * m->R + r];
            struct swap_file *f = m->swapf[i * m->R + r];
            struct tensor *b = m->bufs[r * m->nbufs + next];
            struct tensor *norm = with_norm ? &m->ranks[r].sumsq : NULL;
            swap_in_insert(&b[0], &b[1], &b[2], f, m->region_bytes[i], m->generation, RT_PRIO_HIGH);
            adamw_insert(sh->param, &b[0], &b[1], &b[2], sh->grad, norm, &h, RT_PRIO_NORMAL,
                         RT_WHERE_CPU);
            swap_out_insert(&b[0], &b[1], &b[2], norm, hp->inv_loss_scale, f, m->region_bytes[i],
                            m->generation + 1, RT_PRIO_LOW);
        }
        next = (next + 1) % m->nbufs;
    }
    m->generation++;
}

void gpt_step_stats(struct gpt *m, float *mean_loss, float *sumsq)
{
    /* per rank, then over ranks in global order: 1 process x 2 ranks and 2 x 1 add alike */
    double v[2] = {0, 0}; /* sum of the losses, their count */
    for (int r = 0; r < m->R; r++) {
        struct tensor *t = &m->ranks[r].losses;
        const float *losses = tensor_acquire_read(t);
        double sum = 0;
        for (size_t i = 0; i < t->n; i++)
            sum += losses[i];
        v[0] += sum;
        v[1] += (double)t->n;
        tensor_release(t);
    }
    if (m->opt.comm) comm_allreduce_host(m->opt.comm, v, 2);
    *mean_loss = (float)(v[0] / v[1]);
    if (sumsq) {
        *sumsq = *(const float *)tensor_acquire_read(&m->ranks[0].sumsq);
        tensor_release(&m->ranks[0].sumsq);
    }
}

static void read_widened(struct tensor *t, float *out)
{
    const void *p = tensor_acquire_read(t);
    dtype_to_f32((enum dtype)t->type, p, out, t->n);
    tensor_release(t);
}

void gpt_read_logits(struct gpt *m, float *out)
{
    read_widened(&m->ranks[0].logits, out);
}

void gpt_read_grad(struct gpt *m, int i, float *out)
{
    size_t s = m->shard_n[i];
    float *all = malloc(m->R * s * sizeof *all);
    CHECK_MSG(m->R == m->W, "gpt_read_grad: one process only");
    CHECK(all);
    for (int r = 0; r < m->R; r++)
        read_widened(m->shards[i * m->R + r].grad, all + r * s);
    memcpy(out, all, model_param_numel(&m->tab.params[i]) * sizeof *out);
    free(all);
}
