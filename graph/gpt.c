/* gpt.c: GPT-2 forward, backward and AdamW as task submissions (see gpt.h). */
#include "gpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "comm.h"

/* One block's activations (model.h's MODEL_ACT_LN1 to MODEL_ACT_FCPROJ): a single shared set when
 * checkpointing, else one set per layer. */
struct layer_acts {
    struct tensor ln1, ln1_mean, ln1_rstd; /* [N,C], [N], [N] */
    struct tensor qkv;                     /* [N,3C] */
    struct tensor att_stats;               /* [B,NH,T,2] fp32 softmax statistics */
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
    struct tensor sumsq_parts; /* [tensors] fp32: each tensor's (shard's) sum of squares */
    /* gradients of activations, shared by all blocks */
    struct tensor dresidual, dln1, dqkv, datty, dln2, dlnf; /* [N,C] ([N,3C] for dqkv) */
    struct tensor dfch, dfch_gelu;                          /* [N,4C] */
    /* fp16/bf16 with tiling: fp32 sums of a tiled layer's input gradient ([N,C], [N,4C]) */
    struct tensor dacc, dacc4;
    /* [tensors]: full parameters and gradients; one rank: its shards' own param and grad (the
     * whole tensors), else gathered from the shards and reduce-scattered into them, and released
     * after use */
    struct tensor **wfull, **gfull;
};

struct gpt {
    struct gpt_options opt;
    struct model_table tab;                  /* the trainable tensors, and the configuration */
    struct model_act_info acts[MODEL_NACTS]; /* each rank's activations */
    struct state *state;
    int R;               /* data-parallel ranks in this process (1 without a communicator) */
    int W;               /* data-parallel ranks in all processes (R in one process) */
    struct tensor *full; /* several ranks: the ranks' full buffers, 2 per shard (param, grad),
                            those of layers sharing a slot left unused */
    /* Several ranks: ZeRO-3's memory saving. Layer l's full parameters are the buffers of layer
     * l % slots, so the all-gather of layer l + slots, which writes them, waits for layer l's
     * tasks that read them (StarPU's write-after-read): at most `slots` layers' gathered
     * parameters exist per rank, and the gathers run at most slots - 1 layers ahead. Full
     * gradients likewise with grad_slots (L when gradients accumulate over micro-batches: each
     * layer's then lives until the step's last backward). Embeddings and ln_f keep their own. */
    int slots, grad_slots;
    struct rank *ranks; /* [R] */
    float loss_scale; /* of the last gpt_backward: the simulation's stand-in norm is scaled by it */
    int step_pending; /* the delayed update: a step was submitted since the last gpt_begin_step */
};

const struct gpt_config *gpt_get_config(const struct gpt *m)
{
    return &m->tab.cfg;
}
struct state *gpt_get_state(struct gpt *m)
{
    return m->state;
}
int gpt_num_tensors(const struct gpt *m)
{
    return m->tab.n;
}
const struct gpt_param *gpt_tensor(const struct gpt *m, int i)
{
    return &m->tab.params[i];
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
    if (o->delayed_update && o->optim_tier == TIER_GPU)
        user_fail("--delayed-param-update overlaps the CPU optimizer with the next iteration: use "
                  "it with --offload-optimizer cpu or nvme");
    if (o->delayed_update && o->dt == DTYPE_FP32)
        user_fail(
            "--delayed-param-update double-buffers the fp16/bf16 parameter copies: add --fp16 "
            "or --bf16");
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
        [MODEL_ACT_ATT_STATS] = &x->att_stats,
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
        return l < m->tab.cfg.L - 1 ? ckpt : TENSOR_HOST_NONE;
    default:
        return TENSOR_HOST_NONE;
    }
}

/* Bytes of the pinned pool that each rank's activations take: those whose home is there. */
static size_t rank_pinned_bytes(const struct gpt *m)
{
    size_t total = 0;
    for (int a = 0; a < MODEL_NACTS; a++)
        for (int l = 0; l < m->acts[a].copies; l++)
            if (act_home(m, a, l) == TENSOR_HOST_PINNED)
                total += host_pool_piece_bytes(m->acts[a].bytes);
    return total;
}

/* One rank's compute tensors are its shards (after the delayed update's exchange too). */
static void point_at_shards(struct gpt *m)
{
    for (int i = 0; i < m->tab.n; i++) {
        m->ranks[0].wfull[i] = state_shard(m->state, i, 0)->param;
        m->ranks[0].gfull[i] = state_shard(m->state, i, 0)->grad;
    }
}

/* Local rank r's micro-batch, activations and full buffers; tensor names carry the global rank
 * when there are several. */
static void rank_init(struct gpt *m, int r)
{
    struct rank *k = &m->ranks[r];
    enum tensor_type dt = (enum tensor_type)m->opt.dt;
    char pre[16] = "", name[128];
    if (m->W > 1) snprintf(pre, sizeof pre, "rank%d.", state_global_rank(m->state, r));
    k->res3 = calloc(m->acts[MODEL_ACT_LAYER_OUT].copies, sizeof *k->res3);
    k->acts = calloc(m->acts[MODEL_ACT_LN1].copies, sizeof *k->acts);
    k->wfull = calloc(m->tab.n, sizeof *k->wfull);
    k->gfull = calloc(m->tab.n, sizeof *k->gfull);
    CHECK(k->res3 && k->acts && k->wfull && k->gfull);
    for (int a = 0; a < MODEL_NACTS; a++) {
        const struct model_act_info *x = &m->acts[a];
        enum tensor_type type = x->elem == MODEL_ELEM_DT     ? dt
                                : x->elem == MODEL_ELEM_FP32 ? TENSOR_TYPE_FP32
                                                             : TENSOR_TYPE_I32;
        for (int l = 0; l < x->copies; l++) {
            if (x->in_block)
                snprintf(name, sizeof name, "%sh%d.%s", pre, x->in_block > 0 ? l : -1, x->name);
            else
                snprintf(name, sizeof name, "%s%s", pre, x->name);
            tensor_init(rank_act(k, a, l), name, type, x->n, act_home(m, a, l));
        }
    }
    if (m->W == 1) {
        point_at_shards(m);
        return;
    }
    for (int i = 0; i < m->tab.n; i++) {
        /* layer tensors: those of the layer whose slot it shares (named after that layer) */
        int l = model_tensor_layer(&m->tab, i);
        int wi = l < 0 ? i : i - (l - l % m->slots) * LP_COUNT;
        int gi = l < 0 ? i : i - (l - l % m->grad_slots) * LP_COUNT;
        struct tensor *wf = &m->full[((size_t)wi * m->R + r) * 2];
        struct tensor *gf = &m->full[((size_t)gi * m->R + r) * 2 + 1];
        size_t n = m->W * state_shard_elems(m->state, i);
        int g = state_global_rank(m->state, r);
        if (wi == i) {
            snprintf(name, sizeof name, "%s.rank%d.full", m->tab.params[i].name, g);
            tensor_init(wf, name, dt, n, TENSOR_HOST_NONE);
        }
        if (gi == i) {
            snprintf(name, sizeof name, "%s.rank%d.full_grad", m->tab.params[i].name, g);
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
    m->opt = *opt;
    model_table_init(&m->tab, cfg);
    model_acts(
        m->acts, cfg,
        &(struct model_act_options){opt->B, opt->T, opt->dt, opt->checkpointing, opt->tile_size});
    struct state_options so = {
        .comm = opt->comm,
        .dt = opt->dt,
        .seed = opt->seed,
        .optim_tier = opt->optim_tier,
        .offload_param = opt->offload_param,
        .tile_size = opt->tile_size,
        .optim_chunk = opt->optim_chunk,
        .delayed_update = opt->delayed_update,
        .nvme_path = opt->nvme_path,
        .swap_buffers = opt->swap_buffers,
        .resident_fraction = opt->resident_fraction,
        .aio = opt->aio,
    };
    m->state = state_create(&m->tab, &so, rank_pinned_bytes(m));
    m->R = state_ranks(m->state);
    m->W = state_world(m->state);
    CHECK_MSG(!opt->delayed_update || m->W == 1, "the delayed update runs one rank");
    int64_t layer_elems = model_block_numel(&m->tab);
    m->slots = opt->max_live_elems > 0 ? (int)(opt->max_live_elems / layer_elems) : 2;
    m->slots = m->slots > cfg->L ? cfg->L : m->slots < 2 ? (cfg->L < 2 ? cfg->L : 2) : m->slots;
    m->grad_slots = opt->micro_steps > 1 ? cfg->L : m->slots;
    m->full = m->W > 1 ? calloc((size_t)m->tab.n * m->R * 2, sizeof *m->full) : NULL;
    m->ranks = calloc(m->R, sizeof *m->ranks);
    CHECK(m->ranks && (m->W == 1 || m->full));
    for (int r = 0; r < m->R; r++) {
        m->ranks[r].worker = opt->comm ? comm_worker(opt->comm, r) : -1;
        rank_init(m, r);
    }
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
    for (size_t i = 0; m->full && i < (size_t)m->tab.n * m->R * 2; i++)
        tensor_free(&m->full[i]);
    for (int r = 0; r < m->R; r++)
        rank_free(m, &m->ranks[r]);
    state_destroy(m->state); /* after every other tensor: it releases the pinned pool */
    free(m->full);
    free(m->ranks);
    model_table_free(&m->tab);
    free(m);
}

void gpt_set_batch(struct gpt *m, const int32_t *inputs, const int32_t *targets)
{
    size_t N = (size_t)m->opt.B * m->opt.T;
    int V = m->tab.cfg.V;
    for (size_t i = 0; i < N * m->R; i++)
        if (inputs[i] < 0 || inputs[i] >= V || targets[i] < 0 || targets[i] >= V)
            user_fail("token id %d is outside the model's vocabulary of %d: the data does not "
                      "match the model (check --data-path and --vocab-size)",
                      inputs[i] < 0 || inputs[i] >= V ? inputs[i] : targets[i], V);
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
            struct state_shard *sh = state_shard(m->state, i, r);
            shard[r] = op == GATHER_PARAMS ? sh->param : sh->grad;
            full[r] = op == GATHER_PARAMS ? m->ranks[r].wfull[i] : m->ranks[r].gfull[i];
        }
        if (op == GATHER_PARAMS)
            comm_all_gather(m->opt.comm, shard, full, state_shard_elems(m->state, i));
        else
            comm_reduce_scatter(m->opt.comm, full, shard, state_shard_elems(m->state, i));
    }
}

/* The block's MLP layers are whole (not tiled): its fused forms apply (the FC product with bias
 * and GELU in one task, the FC projection's backward through GELU's derivative). */
static int mlp_fused(const struct rank *k, int l)
{
    return !tensor_compute_tiles(k->wfull[model_layer_tensor(l, LP_FC_W)]) &&
           !tensor_compute_tiles(k->wfull[model_layer_tensor(l, LP_FCPROJ_W)]);
}

/* One block's forward up to the MLP activation; the full forward adds the MLP output projection
 * and the residual (with the LayerNorm that reads it), which the recompute in backward does not
 * need. ln1: the block's first LayerNorm is done here (the recompute, and block 0); otherwise the
 * previous block's residual add did it. keep_pre: keep the MLP's pre-activation (fch), which the
 * backward reads, unless the backward recomputes this block. */
static void block_forward_to_gelu(struct gpt *m, struct rank *k, int l, int ln1, int keep_pre,
                                  int prio)
{
    const struct gpt_config *c = &m->tab.cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    struct layer_acts *a = acts_of(m, k, l);
    struct tensor *x = block_input(k, l);
#define W(p) (k->wfull[model_layer_tensor(l, p)])
    if (ln1)
        layernorm_forward_insert(&a->ln1, &a->ln1_mean, &a->ln1_rstd, x, W(LP_LN1_W), W(LP_LN1_B),
                                 N, C, prio);
    matmul_forward_insert(&a->qkv, &a->ln1, W(LP_QKV_W), W(LP_QKV_B), N, C, 3 * C, prio);
    attention_forward_insert(&a->atty, &a->att_stats, &a->qkv, B, T, C, c->NH, prio);
    matmul_forward_insert(&a->attproj, &a->atty, W(LP_PROJ_W), W(LP_PROJ_B), N, C, C, prio);
    add_layernorm_forward_insert(&a->res2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, x, &a->attproj,
                                 W(LP_LN2_W), W(LP_LN2_B), N, C, prio);
    if (mlp_fused(k, l)) {
        matmul_forward_gelu_insert(&a->fch_gelu, keep_pre ? &a->fch : NULL, &a->ln2, W(LP_FC_W),
                                   W(LP_FC_B), N, C, 4 * C, prio);
    } else {
        matmul_forward_insert(&a->fch, &a->ln2, W(LP_FC_W), W(LP_FC_B), N, C, 4 * C, prio);
        gelu_forward_insert(&a->fch_gelu, &a->fch, prio);
    }
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
    int L = m->tab.cfg.L, n = 0, first = l < L ? model_layer_tensor(l, 0) : model_lnf(&m->tab);
    int count = l < L ? LP_COUNT : 2, params = m->opt.offload_param && m->W == 1;
    if (l < 0) return;
    /* one rank: the full tensors are its shards, whose home is pinned memory */
    for (int k = 0; params && k < count; k++)
        if (!tensor_compute_tiles(r->wfull[first + k])) ts[n++] = r->wfull[first + k];
    if (params && l == L && !tensor_compute_tiles(r->wfull[MODEL_WTE]))
        ts[n++] = r->wfull[MODEL_WTE];
    if (ckpt && ckpt_offloaded(m) && l < L) ts[n++] = block_input(r, l);
    if (n) prefetch_insert(ts, n, after, RT_PRIO_LOW);
}

/* With parameter offload, local rank r's shards of layer l's parameters (one rank: the whole
 * tensors), or with `grads` its gradient shards when their home is in pinned memory, are the first
 * to leave the device once the tasks submitted so far are done; gradients go home then. Call it
 * after the layer's last reader of the parameters (several ranks: its all-gather), and after the
 * last writer of the gradients (the last micro-batch's backward, or the reduce-scatter). The
 * gathered full buffers get no hint: they have no home to go to, and the slots bound them. */
static void evict_layer(struct gpt *m, int r, int l, int grads)
{
    for (int k = 0; k < LP_COUNT; k++) {
        struct state_shard *sh = state_shard(m->state, model_layer_tensor(l, k), r);
        if (!grads && m->opt.offload_param) tensor_wont_use(sh->param);
        if (grads && state_params_in_pinned_ram(m->state)) tensor_wont_use(sh->grad);
    }
}

void gpt_forward(struct gpt *m)
{
    const struct gpt_config *c = &m->tab.cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C, L = c->L, lnf = model_lnf(&m->tab);
    collective(m, GATHER_PARAMS, MODEL_WTE, 2);
    collective(m, GATHER_PARAMS, model_layer_tensor(0, 0), LP_COUNT);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        struct layer_acts *a = acts_of(m, k, 0);
        rt_set_worker(k->worker);
        prefetch_layer(m, k, 0, &k->inputs, 0);
        encoder_forward_insert(&k->encoded, &k->inputs, k->wfull[MODEL_WTE], k->wfull[MODEL_WPE], B,
                               T, C, RT_PRIO_NORMAL);
        layernorm_forward_insert(&a->ln1, &a->ln1_mean, &a->ln1_rstd, &k->encoded,
                                 k->wfull[model_layer_tensor(0, LP_LN1_W)],
                                 k->wfull[model_layer_tensor(0, LP_LN1_B)], N, C, RT_PRIO_NORMAL);
    }
    for (int l = 0; l < L; l++) {
        for (int r = 0; r < m->R; r++) {
            struct rank *k = &m->ranks[r];
            struct layer_acts *a = acts_of(m, k, l);
            rt_set_worker(k->worker);
            prefetch_layer(m, k, l + 1, block_input(k, l), 0);
            block_forward_to_gelu(m, k, l, 0, !m->opt.checkpointing || l == L - 1, RT_PRIO_NORMAL);
            matmul_forward_insert(
                &a->fcproj, &a->fch_gelu, k->wfull[model_layer_tensor(l, LP_FCPROJ_W)],
                k->wfull[model_layer_tensor(l, LP_FCPROJ_B)], N, 4 * C, C, RT_PRIO_NORMAL);
        }
        /* the residual add and the LayerNorm that reads its result, block l + 1's first or ln_f:
         * those parameters first */
        int next = l + 1 < L ? model_layer_tensor(l + 1, LP_LN1_W) : lnf;
        collective(m, GATHER_PARAMS, l + 1 < L ? model_layer_tensor(l + 1, 0) : lnf,
                   l + 1 < L ? LP_COUNT : 2);
        for (int r = 0; r < m->R; r++) {
            struct rank *k = &m->ranks[r];
            struct layer_acts *a = acts_of(m, k, l);
            struct layer_acts *an = l + 1 < L ? acts_of(m, k, l + 1) : NULL;
            rt_set_worker(k->worker);
            add_layernorm_forward_insert(&k->res3[l], an ? &an->ln1 : &k->lnf,
                                         an ? &an->ln1_mean : &k->lnf_mean,
                                         an ? &an->ln1_rstd : &k->lnf_rstd, &a->res2, &a->fcproj,
                                         k->wfull[next], k->wfull[next + 1], N, C, RT_PRIO_NORMAL);
            evict_layer(m, r, l, 0);
            /* the checkpoint goes home once this layer has read it, until its recompute (the
             * last layer's backward comes next and does not recompute: its input stays) */
            if (ckpt_offloaded(m) && l < L - 1) tensor_wont_use(block_input(k, l));
        }
    }
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
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
    if (micro == 0) zero_all_insert(&k->gfull[first], count, prio);
}

/* A layer tensor whose gradient only a matmul backward makes (a linear layer's weight). */
static int is_matmul_weight(int p)
{
    return p == LP_QKV_W || p == LP_PROJ_W || p == LP_FC_W || p == LP_FCPROJ_W;
}

/* The set bits of a matmul backward in micro-batch `micro`: its input gradient is its own in
 * every micro-batch, its weight gradient starts the step's sum in the first. */
static unsigned matmul_set(int micro)
{
    return MATMUL_SET_DINP | (micro == 0 ? MATMUL_SET_DWEIGHT : 0);
}

/* The zero fills that start layer l's backward, as one task: the gradients that the layer's
 * backward tasks add to. Rank k's gradients of the layer's biases and LayerNorms on the first
 * micro-batch of a step (the weights' the matmul backwards write, matmul_set), and the activation
 * gradient that the unfused GELU adds to (every micro-batch; the linear layers' input gradients
 * are written by their products, dqkv by the attention's backward). One task instead of one per
 * buffer, as the layer's first task waits for the gradients anyway. */
static void zero_layer_backward(struct rank *k, int l, int micro, int fused, int prio)
{
    struct tensor *ts[LP_COUNT + 1];
    int n = 0, first = model_layer_tensor(l, 0);
    for (int i = 0; micro == 0 && i < LP_COUNT; i++)
        if (!is_matmul_weight(i)) ts[n++] = k->gfull[first + i];
    if (!fused) ts[n++] = &k->dfch;
    zero_all_insert(ts, n, prio);
}

static void block_backward(struct gpt *m, struct rank *k, int l, int prio, int micro)
{
    const struct gpt_config *c = &m->tab.cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    struct layer_acts *a = acts_of(m, k, l);
    struct tensor *x = block_input(k, l);
#define W(p) (k->wfull[model_layer_tensor(l, p)])
#define G(p) (k->gfull[model_layer_tensor(l, p)])
    /* The last block's activations are still in the shared set from the forward. */
    if (m->opt.checkpointing && l != c->L - 1) block_forward_to_gelu(m, k, l, 1, 1, prio);
    int fused = mlp_fused(k, l);
    zero_layer_backward(k, l, micro, fused, prio);
    /* dresidual holds d(block output); each LayerNorm backward adds its share to it in place,
     * which is the residual connections' backward. */
    /* the layer below's parameters move in while this layer's backward runs (after the first
     * task of the MLP's backward: the next writer of its output is that layer, which needs them
     * anyway) */
    if (fused) {
        /* dfch, overwritten, and the FC layer's bias gradient too */
        matmul_backward_dgelu_insert(&k->dfch, G(LP_FCPROJ_W), G(LP_FCPROJ_B), G(LP_FC_B),
                                     &k->dresidual, &a->fch_gelu, W(LP_FCPROJ_W), &a->fch, N, 4 * C,
                                     C, matmul_set(micro) & MATMUL_SET_DWEIGHT, prio);
        prefetch_layer(m, k, l - 1, &k->dfch, 1);
    } else {
        matmul_backward_insert(&k->dfch_gelu, G(LP_FCPROJ_W), G(LP_FCPROJ_B), &k->dresidual,
                               &a->fch_gelu, W(LP_FCPROJ_W), N, 4 * C, C, &k->dacc4,
                               matmul_set(micro), prio);
        prefetch_layer(m, k, l - 1, &k->dfch_gelu, 1);
        gelu_backward_insert(&k->dfch, &a->fch, &k->dfch_gelu, prio);
    }
    matmul_backward_insert(&k->dln2, G(LP_FC_W), fused ? NULL : G(LP_FC_B), &k->dfch, &a->ln2,
                           W(LP_FC_W), N, C, 4 * C, &k->dacc, matmul_set(micro), prio);
    layernorm_backward_insert(&k->dresidual, G(LP_LN2_W), G(LP_LN2_B), &k->dln2, &a->res2,
                              W(LP_LN2_W), &a->ln2_mean, &a->ln2_rstd, N, C, prio);
    matmul_backward_insert(&k->datty, G(LP_PROJ_W), G(LP_PROJ_B), &k->dresidual, &a->atty,
                           W(LP_PROJ_W), N, C, C, &k->dacc, matmul_set(micro), prio);
    attention_backward_insert(&k->dqkv, &k->datty, &a->qkv, &a->atty, &a->att_stats, B, T, C, c->NH,
                              prio);
    matmul_backward_insert(&k->dln1, G(LP_QKV_W), G(LP_QKV_B), &k->dqkv, &a->ln1, W(LP_QKV_W), N, C,
                           3 * C, &k->dacc, matmul_set(micro), prio);
    layernorm_backward_insert(&k->dresidual, G(LP_LN1_W), G(LP_LN1_B), &k->dln1, x, W(LP_LN1_W),
                              &a->ln1_mean, &a->ln1_rstd, N, C, prio);
#undef W
#undef G
    evict_layer(m, (int)(k - m->ranks), l, 0);
}

/* The end of the group of tensors that starts at table index i: the tensors of one layer, or the
 * embeddings, or ln_f's two (consecutive in the table). Tasks that work per tensor (sums of
 * squares, AdamW on the GPU) take a group at a time: 28 tasks for 24 layers instead of 292. */
static int group_end(const struct gpt *m, int i)
{
    int l = model_tensor_layer(&m->tab, i), end = i + 1;
    while (end < m->tab.n && end - i < LP_COUNT && model_tensor_layer(&m->tab, end) == l)
        end++;
    return end;
}

void gpt_backward(struct gpt *m, float loss_scale, int micro, int micro_steps)
{
    const struct gpt_config *c = &m->tab.cfg;
    int B = m->opt.B, T = m->opt.T, N = B * T, C = c->C;
    int prio = RT_PRIO_NORMAL, last = micro == micro_steps - 1, lnf = model_lnf(&m->tab);
    CHECK_MSG(m->W == 1 || micro_steps == 1 || m->grad_slots == c->L,
              "gpt_backward: several micro-batches a step, but gpt_options.micro_steps said one");
    /* the gradient of the mean loss over every rank's micro-batches */
    float dloss = loss_scale / ((float)N * micro_steps * m->W);
    m->loss_scale = loss_scale;
    collective(m, GATHER_PARAMS, lnf, 2);
    collective(m, GATHER_PARAMS, MODEL_WTE, 1);
    for (int r = 0; r < m->R; r++) {
        struct rank *k = &m->ranks[r];
        rt_set_worker(k->worker);
        zero_grads(k, lnf, 2, micro, prio);
        zero_insert(&k->dresidual, prio);
        crossentropy_backward_insert(&k->logits, &k->targets, dloss, N, c->V, c->Vp, prio);
        /* the LM head starts wte's gradient (the embedding's backward adds to it last) */
        matmul_backward_insert(&k->dlnf, k->gfull[MODEL_WTE], NULL, &k->logits, &k->lnf,
                               k->wfull[MODEL_WTE], N, C, c->Vp, &k->dacc, matmul_set(micro), prio);
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
        for (int i = 0, end; i < m->tab.n; i = end) {
            struct tensor *grads[LP_COUNT];
            end = group_end(m, i);
            for (int j = i; j < end; j++)
                grads[j - i] = state_shard(m->state, j, r)->grad;
            sumsq_insert(&k->sumsq_parts, i, grads, end - i, prio);
        }
        sum_insert(&k->sumsq, &k->sumsq_parts, prio);
        sumsq[r] = &k->sumsq;
    }
    rt_set_worker(-1);
    if (m->W > 1) comm_all_reduce(m->opt.comm, sumsq, 1);
}

/* The priority of the resident AdamW of the group that starts at tensor i: the next forward
 * reads the embeddings first, then layer 0, 1, ...: updates in that order (all below the
 * compute's), so that the forward starts as soon as its first weights are stepped and the later
 * layers' updates overlap it instead of all of them running first (issue 17, item 2). */
static int update_prio(const struct gpt *m, int i)
{
    int l = model_tensor_layer(&m->tab, i);
    return RT_PRIO_LOW - (l < 0 ? (i < model_lnf(&m->tab) ? 0 : m->tab.cfg.L + 1) : l + 1);
}

void gpt_update(struct gpt *m, const struct adamw_hparams *hp)
{
    enum rt_where where = state_optim_where(m->state);
    /* Without clipping and without fp16's overflow skip, no step needs the global norm: each
     * tensor's AdamW (and its swap-in) then runs as soon as its own gradient is complete, while
     * the backward goes on with the layers below. */
    int with_norm = hp->clip_norm > 0 || m->opt.dt == DTYPE_FP16;
    for (int i = 0, end; i < m->tab.n; i = end) {
        end = group_end(m, i);
        /* the group's tensors whose state is resident: each rank steps its own shards, on the GPU
         * in one task */
        for (int r = 0; r < m->R; r++) {
            struct adamw_group g[LP_COUNT];
            int n = 0;
            for (int j = i; j < end; j++) {
                struct state_shard *sh = state_shard(m->state, j, r);
                if (state_swapped(m->state, j)) continue;
                g[n++] = (struct adamw_group){sh->param == sh->master ? NULL : sh->param,
                                              sh->master,
                                              sh->m,
                                              sh->v,
                                              sh->grad,
                                              m->tab.params[j].decay ? hp->weight_decay : 0};
            }
            rt_set_worker(m->ranks[r].worker);
            adamw_group_insert(g, n, with_norm ? &m->ranks[r].sumsq : NULL, hp, update_prio(m, i),
                               where);
        }
        rt_set_worker(-1);
        /* each swapped tensor and rank's shard: swap-in, AdamW, swap-out through one of the
         * rank's buffer sets (state_swap_slot says how they take turns) */
        for (int j = i; j < end; j++) {
            struct adamw_hparams h = *hp;
            if (!m->tab.params[j].decay) h.weight_decay = 0;
            for (int r = 0; r < m->R && state_swapped(m->state, j); r++) {
                struct state_shard *sh = state_shard(m->state, j, r);
                struct state_swap w = state_swap_slot(m->state, j, r);
                struct tensor *b = w.buf, *norm = with_norm ? &m->ranks[r].sumsq : NULL;
                rt_set_worker(m->ranks[r].worker); /* the simulation: the rank's node's disk */
                swap_in_insert(&b[0], &b[1], &b[2], w.file, w.region_bytes, w.generation,
                               RT_PRIO_HIGH);
                adamw_insert(sh->param, &b[0], &b[1], &b[2], sh->grad, norm, &h, RT_PRIO_NORMAL,
                             RT_WHERE_CPU);
                swap_out_insert(&b[0], &b[1], &b[2], norm, hp->inv_loss_scale, w.file,
                                w.region_bytes, w.generation + 1, RT_PRIO_LOW);
            }
        }
        rt_set_worker(-1);
    }
    state_swap_advance(m->state);
    m->step_pending = m->opt.delayed_update;
}

void gpt_begin_step(struct gpt *m)
{
    if (!m->step_pending) return;
    state_delayed_swap(m->state);
    /* the copies the last iteration used on the GPU: its gradients go home for this step's AdamW
     * (one not there yet stays, for StarPU to evict later), its parameters are read there again
     * only after that AdamW rewrites them. StarPU would otherwise keep them until memory runs
     * out and then evict this iteration's own parameters between its forward and its backward
     * (read twice: 6 GB more over PCIe per iteration at 3.6B parameters under a 16 GiB cap); the
     * gradients are the ones that matter (in the simulation, evicting the parameters alone
     * changes nothing) */
    for (int i = 0; i < m->tab.n; i++) {
        tensor_evict_from_gpus(state_shard(m->state, i, 0)->param_alt);
        tensor_evict_from_gpus(state_shard(m->state, i, 0)->grad_alt);
    }
    point_at_shards(m);
    m->step_pending = 0;
}

void gpt_delayed_skip(struct gpt *m)
{
    if (!m->opt.delayed_update) return;
    /* the other copy holds the parameters of the last applied step (the one before, or what the
     * same copy got at an earlier skip); swapped tensors have no master in RAM to cast from */
    for (int i = 0; i < m->tab.n; i++) {
        struct state_shard *sh = state_shard(m->state, i, 0);
        cast_insert(sh->param, sh->param_alt, RT_PRIO_HIGH, RT_WHERE_CPU);
    }
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
    /* The simulation ran no kernel, so the values read are whatever the host copies held; the
     * waits above are the simulated run's all the same. Stand-ins, for a healthy run's control
     * flow: the loss of a model that predicts every token alike, ln V, and a gradient norm of 1
     * (the sum of squares of the gradients scaled by the loss scale), finite, so that no step is
     * skipped and the fp16 loss scale grows as in a run without overflows. */
    if (rt_simulated()) {
        *mean_loss = logf((float)m->tab.cfg.V);
        if (sumsq) *sumsq = m->loss_scale * m->loss_scale;
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
    size_t s = state_shard_elems(m->state, i);
    float *all = malloc(m->R * s * sizeof *all);
    CHECK_MSG(m->R == m->W, "gpt_read_grad: one process only");
    CHECK(all);
    for (int r = 0; r < m->R; r++)
        read_widened(state_shard(m->state, i, r)->grad, all + r * s);
    memcpy(out, all, model_param_numel(&m->tab.params[i]) * sizeof *out);
    free(all);
}
