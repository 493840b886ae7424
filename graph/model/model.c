/* model.c: the tables of model.h, built from the configuration alone. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

int gpt_padded_vocab(int V, int divisor)
{
    return (V + divisor - 1) / divisor * divisor;
}

int64_t gpt_num_params(const struct gpt_config *cfg)
{
    struct model_table t;
    model_table_init(&t, cfg);
    int64_t n = model_table_numel(&t);
    model_table_free(&t);
    return n;
}

double gpt_flops_per_iteration(const struct gpt_config *c, int B, int T, int checkpointing)
{
    /* Megatron-LM: 24 * f * B * s * L * h^2 * (1 + s/(6h) + V/(16 L h)), f = 4 with recompute
     * (forward twice, backward twice the forward), 3 without. */
    double f = checkpointing ? 4 : 3, h = c->C;
    return 24.0 * f * B * T * c->L * h * h * (1.0 + T / (6.0 * h) + c->Vp / (16.0 * c->L * h));
}

int model_tensor_count(const struct gpt_config *cfg)
{
    return MODEL_FIRST_LAYER + cfg->L * LP_COUNT + 2;
}

int model_layer_tensor(int l, enum layer_param p)
{
    return MODEL_FIRST_LAYER + l * LP_COUNT + p;
}

int model_tensor_layer(const struct model_table *t, int i)
{
    int in_block = i >= MODEL_FIRST_LAYER && i < model_lnf(t);
    return in_block ? (i - MODEL_FIRST_LAYER) / LP_COUNT : -1;
}

int model_lnf(const struct model_table *t)
{
    return t->n - 2;
}

static void table_add(struct model_table *t, const char *name, int64_t rows, int64_t cols,
                      int conv1d, const char *op, enum model_init init, float std)
{
    struct gpt_param *p = &t->params[t->n++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols ? cols : 1;
    p->conv1d = conv1d;
    p->decay = p->ndim == 2;
    p->op = op;
    p->init = init;
    p->init_std = std;
}

void model_table_init(struct model_table *t, const struct gpt_config *c)
{
    int C = c->C;
    float std = 0.02f, residual = 0.02f / sqrtf(2.0f * c->L);
    char name[96];
    t->cfg = *c;
    t->n = 0;
    t->params = calloc(model_tensor_count(c), sizeof *t->params);
    CHECK(t->params);
    table_add(t, "transformer.wte.weight", c->Vp, C, 0, "LM head", MODEL_INIT_NORMAL, std);
    t->params[MODEL_WTE].hf_rows = c->V;
    table_add(t, "transformer.wpe.weight", c->maxT, C, 0, NULL, MODEL_INIT_NORMAL, std);
    static const struct {
        const char *suffix;
        int rows, cols; /* in units of C; cols 0: a vector */
        int conv1d;
        const char *op;
        enum model_init init;
        int residual; /* a residual projection: the smaller std */
    } block[LP_COUNT] = {
        {"ln_1.weight", 1, 0, 0, NULL, MODEL_INIT_ONE, 0},
        {"ln_1.bias", 1, 0, 0, NULL, MODEL_INIT_ZERO, 0},
        {"attn.c_attn.weight", 3, 1, 1, "attention QKV", MODEL_INIT_NORMAL, 0},
        {"attn.c_attn.bias", 3, 0, 0, "attention QKV", MODEL_INIT_ZERO, 0},
        {"attn.c_proj.weight", 1, 1, 1, "attention projection", MODEL_INIT_NORMAL, 1},
        {"attn.c_proj.bias", 1, 0, 0, "attention projection", MODEL_INIT_ZERO, 0},
        {"ln_2.weight", 1, 0, 0, NULL, MODEL_INIT_ONE, 0},
        {"ln_2.bias", 1, 0, 0, NULL, MODEL_INIT_ZERO, 0},
        {"mlp.c_fc.weight", 4, 1, 1, "MLP", MODEL_INIT_NORMAL, 0},
        {"mlp.c_fc.bias", 4, 0, 0, "MLP", MODEL_INIT_ZERO, 0},
        {"mlp.c_proj.weight", 1, 4, 1, "MLP projection", MODEL_INIT_NORMAL, 1},
        {"mlp.c_proj.bias", 1, 0, 0, "MLP projection", MODEL_INIT_ZERO, 0},
    };
    for (int l = 0; l < c->L; l++)
        for (int k = 0; k < LP_COUNT; k++) {
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, block[k].suffix);
            table_add(t, name, (int64_t)block[k].rows * C, (int64_t)block[k].cols * C,
                      block[k].conv1d, block[k].op, block[k].init,
                      block[k].residual ? residual : std);
        }
    table_add(t, "transformer.ln_f.weight", C, 0, 0, NULL, MODEL_INIT_ONE, std);
    table_add(t, "transformer.ln_f.bias", C, 0, 0, NULL, MODEL_INIT_ZERO, std);
}

void model_table_free(struct model_table *t)
{
    free(t->params);
    t->params = NULL;
    t->n = 0;
}

size_t model_param_numel(const struct gpt_param *p)
{
    return (size_t)(p->shape[0] * p->shape[1]);
}

size_t model_param_hf_numel(const struct gpt_param *p)
{
    int64_t shape[2];
    model_param_hf_shape(p, shape);
    return (size_t)(shape[0] * shape[1]);
}

void model_param_hf_shape(const struct gpt_param *p, int64_t shape[2])
{
    shape[0] = p->conv1d ? p->shape[1] : (p->hf_rows ? p->hf_rows : p->shape[0]);
    shape[1] = p->conv1d ? p->shape[0] : p->shape[1];
}

int64_t model_table_numel(const struct model_table *t)
{
    int64_t n = 0;
    for (int i = 0; i < t->n; i++)
        n += (int64_t)model_param_numel(&t->params[i]);
    return n;
}

int64_t model_largest_numel(const struct model_table *t)
{
    int64_t max = 0;
    for (int i = 0; i < t->n; i++) {
        int64_t n = (int64_t)model_param_numel(&t->params[i]);
        max = n > max ? n : max;
    }
    return max;
}

int64_t model_block_numel(const struct model_table *t)
{
    int64_t n = 0;
    for (int k = 0; k < LP_COUNT; k++)
        n += (int64_t)model_param_numel(&t->params[model_layer_tensor(0, k)]);
    return n;
}

int model_widest_linear(const struct model_table *t)
{
    int widest = -1;
    for (int i = 0; i < t->n; i++) {
        const struct gpt_param *p = &t->params[i];
        if (p->op && p->ndim == 2 && (widest < 0 || p->shape[0] >= t->params[widest].shape[0]))
            widest = i;
    }
    return widest;
}

static size_t elem_size(enum model_elem e, enum dtype dt)
{
    return e == MODEL_ELEM_DT ? dtype_size(dt) : 4;
}

void model_acts(struct model_act_info a[MODEL_NACTS], const struct gpt_config *c,
                const struct model_act_options *o)
{
    const size_t N = (size_t)o->B * o->T, C = (size_t)c->C;
    const size_t att_stats = (size_t)o->B * c->NH * o->T * 2;
    const int L = c->L, sets = o->checkpointing ? 1 : L;
    const int set = o->checkpointing ? -1 : 1; /* in_block of the block activations */
    const int sums = o->tile_size > 0 && o->dt != DTYPE_FP32;
#define ACT(k, name, group, elem, n, copies, in_block)                                             \
    a[MODEL_ACT_##k] = (struct model_act_info){                                                    \
        name, MODEL_ACT_GROUP_##group, MODEL_ELEM_##elem, n, 0, copies, in_block}
    ACT(INPUTS, "inputs", STEP, I32, N, 1, 0);
    ACT(TARGETS, "targets", STEP, I32, N, 1, 0);
    ACT(ENCODED, "encoded", CHECKPOINTS, DT, N * C, 1, 0);
    ACT(LAYER_OUT, "out", CHECKPOINTS, DT, N * C, L, 1);
    ACT(LN1, "ln1", LAYER, DT, N * C, sets, set);
    ACT(LN1_MEAN, "ln1_mean", LAYER, FP32, N, sets, set);
    ACT(LN1_RSTD, "ln1_rstd", LAYER, FP32, N, sets, set);
    ACT(QKV, "qkv", LAYER, DT, N * 3 * C, sets, set);
    ACT(ATT_STATS, "att_stats", LAYER, FP32, att_stats, sets, set);
    ACT(ATTY, "atty", LAYER, DT, N * C, sets, set);
    ACT(ATTPROJ, "attproj", LAYER, DT, N * C, sets, set);
    ACT(RES2, "res2", LAYER, DT, N * C, sets, set);
    ACT(LN2, "ln2", LAYER, DT, N * C, sets, set);
    ACT(LN2_MEAN, "ln2_mean", LAYER, FP32, N, sets, set);
    ACT(LN2_RSTD, "ln2_rstd", LAYER, FP32, N, sets, set);
    ACT(FCH, "fch", LAYER, DT, N * 4 * C, sets, set);
    ACT(FCH_GELU, "fch_gelu", LAYER, DT, N * 4 * C, sets, set);
    ACT(FCPROJ, "fcproj", LAYER, DT, N * C, sets, set);
    ACT(LNF, "lnf", HEAD, DT, N * C, 1, 0);
    ACT(LNF_MEAN, "lnf_mean", HEAD, FP32, N, 1, 0);
    ACT(LNF_RSTD, "lnf_rstd", HEAD, FP32, N, 1, 0);
    ACT(LOGITS, "logits", HEAD, DT, N * c->Vp, 1, 0);
    ACT(LOSSES, "losses", HEAD, FP32, N, 1, 0);
    ACT(SUMSQ, "grad_sumsq", STEP, FP32, 1, 1, 0);
    ACT(SUMSQ_PARTS, "grad_sumsq_parts", STEP, FP32, model_tensor_count(c), 1, 0);
    ACT(DRESIDUAL, "dresidual", GRADS, DT, N * C, 1, 0);
    ACT(DLN1, "dln1", GRADS, DT, N * C, 1, 0);
    ACT(DQKV, "dqkv", GRADS, DT, N * 3 * C, 1, 0);
    ACT(DATTY, "datty", GRADS, DT, N * C, 1, 0);
    ACT(DLN2, "dln2", GRADS, DT, N * C, 1, 0);
    ACT(DLNF, "dlnf", GRADS, DT, N * C, 1, 0);
    ACT(DFCH, "dfch", GRADS, DT, N * 4 * C, 1, 0);
    ACT(DFCH_GELU, "dfch_gelu", GRADS, DT, N * 4 * C, o->tile_size > 0, 0);
    ACT(DACC, "dinp_fp32_sum", GRADS, FP32, N * C, sums, 0);
    ACT(DACC4, "dinp_fp32_sum4", GRADS, FP32, N * 4 * C, sums, 0);
#undef ACT
    for (int k = 0; k < MODEL_NACTS; k++)
        a[k].bytes = (int64_t)(a[k].n * elem_size(a[k].elem, o->dt));
}

int64_t model_acts_bytes(const struct model_act_info a[MODEL_NACTS], enum model_act_group g)
{
    int64_t bytes = 0;
    for (int k = 0; k < MODEL_NACTS; k++)
        if (a[k].group == g) bytes += a[k].copies * a[k].bytes;
    return bytes;
}
