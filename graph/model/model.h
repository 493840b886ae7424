/* model.h: the GPT-2 model as tables, without any runtime: its configuration, the one table of
 * trainable tensors, and the table of the activation tensors that each data-parallel rank
 * allocates.
 *
 * Every size of the program comes from these two tables: the parameter count, the memory plan's
 * rows (plan.c), the parameters, shards and swap regions (graph/state/), the activations
 * (graph/gpt.c), the checkpoint's names, shapes and byte counts (graph/checkpoint.c) and the
 * weight-decay mask. Adding a tensor is one line in model.c.
 *
 *     struct model_table t;
 *     model_table_init(&t, &cfg);               // wte, wpe, L blocks of LP_COUNT, ln_f
 *     for (int i = 0; i < t.n; i++)
 *         printf("%s %zu\n", t.params[i].name, model_param_numel(&t.params[i]));
 *     model_table_free(&t);
 *
 * Dimension legend: B batch, T sequence, C channels, L layers, NH heads, V vocabulary, Vp padded
 * vocabulary (multiple of 128), maxT position table rows, N = B*T. */
#ifndef GPT50B_MODEL_H
#define GPT50B_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

struct gpt_config {
    int L, C, NH;
    int maxT; /* rows of the position table */
    int V;    /* real vocabulary: logits beyond it never reach the softmax */
    int Vp;   /* padded vocabulary, the rows of wte */
};

/* Pads a vocabulary size to a multiple of `divisor` (Megatron's make-vocab-size-divisible-by). */
int gpt_padded_vocab(int V, int divisor);
/* Parameter count of a configuration (with the padded vocabulary, as Megatron counts): the sum of
 * its table. O(L). */
int64_t gpt_num_params(const struct gpt_config *cfg);
/* Model FLOPs per iteration (Megatron's formula, the recompute counted when checkpointing). */
double gpt_flops_per_iteration(const struct gpt_config *cfg, int B, int T, int checkpointing);

/* How a tensor's initial values are drawn (GPT-2's initialisation). */
enum model_init {
    MODEL_INIT_ZERO,
    MODEL_INIT_ONE,
    MODEL_INIT_NORMAL, /* normal(0, init_std) */
};

/* One trainable tensor of the table. */
struct gpt_param {
    char name[96]; /* Hugging Face GPT-2 name, e.g. transformer.h.3.attn.c_attn.weight */
    int ndim;
    int64_t shape[2]; /* our layout: linear weights are [OC, C] like nn.Linear; vectors [n, 1] */
    int conv1d;       /* stored transposed ([C, OC], HF Conv1D) in checkpoints */
    int hf_rows;      /* rows in checkpoints when they differ from ours (wte: V, not Vp), else 0 */
    int decay;        /* AdamW weight decay applies (matrices only) */
    const char *op;   /* the weight or bias of a linear layer (the tied wte: the LM head): its
                         name; shape[0] are the layer's output channels, which tiling cuts.
                         NULL: not a linear layer's */
    enum model_init init;
    float init_std; /* MODEL_INIT_NORMAL: 0.02, residual projections 0.02 / sqrt(2L) */
};

/* The trainable tensors of one block, in Hugging Face's order. */
enum layer_param {
    LP_LN1_W,
    LP_LN1_B,
    LP_QKV_W,
    LP_QKV_B,
    LP_PROJ_W,
    LP_PROJ_B,
    LP_LN2_W,
    LP_LN2_B,
    LP_FC_W,
    LP_FC_B,
    LP_FCPROJ_W,
    LP_FCPROJ_B,
    LP_COUNT,
};

/* The table's order: wte and wpe, then the blocks' LP_COUNT tensors each, then ln_f's weight and
 * bias (model_lnf). */
enum model_tensor_index {
    MODEL_WTE,
    MODEL_WPE,
    MODEL_FIRST_LAYER,
};

struct model_table {
    struct gpt_config cfg;
    int n;                    /* model_tensor_count(&cfg) */
    struct gpt_param *params; /* [n] */
};

/* Builds the table of cfg. O(L). */
void model_table_init(struct model_table *t, const struct gpt_config *cfg);
void model_table_free(struct model_table *t);
/* Tensors in the table of cfg. */
int model_tensor_count(const struct gpt_config *cfg);
/* Index of tensor p of block l. */
int model_layer_tensor(int l, enum layer_param p);
/* The block that tensor i belongs to, or -1 (embeddings, ln_f). */
int model_tensor_layer(const struct model_table *t, int i);
/* Index of ln_f's weight; its bias follows. */
int model_lnf(const struct model_table *t);
/* Elements of a tensor in our layout, and in checkpoints (wte without its padding rows). */
size_t model_param_numel(const struct gpt_param *p);
size_t model_param_hf_numel(const struct gpt_param *p);
/* Its shape in checkpoints: Conv1D weights transposed, wte without padding rows. */
void model_param_hf_shape(const struct gpt_param *p, int64_t shape[2]);
/* Elements of the whole table, of one block's tensors, and of the largest tensor. O(n). */
int64_t model_table_numel(const struct model_table *t);
int64_t model_block_numel(const struct model_table *t);
int64_t model_largest_numel(const struct model_table *t);
/* The linear layer with the most output channels (ties: the later in the table, so a block's MLP
 * rather than an LM head of the same width): the index of its weight. */
int model_widest_linear(const struct model_table *t);

/* The activation tensors of one data-parallel rank, in the order graph/gpt.c allocates them. */
enum model_act {
    MODEL_ACT_INPUTS,    /* [N] int32 token ids */
    MODEL_ACT_TARGETS,   /* [N] int32 */
    MODEL_ACT_ENCODED,   /* [N,C] the first block's input */
    MODEL_ACT_LAYER_OUT, /* [L] of [N,C]: each block's output */
    /* one block's activations: one shared set with checkpointing, else one set per layer */
    MODEL_ACT_LN1,         /* [N,C] */
    MODEL_ACT_LN1_MEAN,    /* [N] fp32 */
    MODEL_ACT_LN1_RSTD,    /* [N] fp32 */
    MODEL_ACT_QKV,         /* [N,3C] */
    MODEL_ACT_ATT_STATS,   /* [B,NH,T,2] fp32 softmax statistics (row max, sum of exp) */
    MODEL_ACT_ATTY,        /* [N,C] */
    MODEL_ACT_ATTPROJ,     /* [N,C] */
    MODEL_ACT_RES2,        /* [N,C] */
    MODEL_ACT_LN2,         /* [N,C] */
    MODEL_ACT_LN2_MEAN,    /* [N] fp32 */
    MODEL_ACT_LN2_RSTD,    /* [N] fp32 */
    MODEL_ACT_FCH,         /* [N,4C] */
    MODEL_ACT_FCH_GELU,    /* [N,4C] */
    MODEL_ACT_FCPROJ,      /* [N,C] */
    MODEL_ACT_LNF,         /* [N,C] */
    MODEL_ACT_LNF_MEAN,    /* [N] fp32 */
    MODEL_ACT_LNF_RSTD,    /* [N] fp32 */
    MODEL_ACT_LOGITS,      /* [N,Vp], dlogits after the backward */
    MODEL_ACT_LOSSES,      /* [N] fp32 */
    MODEL_ACT_SUMSQ,       /* [1] fp32: sum of squares of all gradients */
    MODEL_ACT_SUMSQ_PARTS, /* [tensors] fp32: each tensor's sum of squares */
    /* gradients of activations, shared by all blocks */
    MODEL_ACT_DRESIDUAL, /* [N,C] */
    MODEL_ACT_DLN1,      /* [N,C] */
    MODEL_ACT_DQKV,      /* [N,3C] */
    MODEL_ACT_DATTY,     /* [N,C] */
    MODEL_ACT_DLN2,      /* [N,C] */
    MODEL_ACT_DLNF,      /* [N,C] */
    MODEL_ACT_DFCH,      /* [N,4C] */
    MODEL_ACT_DFCH_GELU, /* [N,4C], with tiling only: the fused MLP backward needs none */
    /* fp16/bf16 with tiling: fp32 sums of a tiled layer's input gradient */
    MODEL_ACT_DACC,  /* [N,C] fp32 */
    MODEL_ACT_DACC4, /* [N,4C] fp32 */
    MODEL_NACTS,
};

/* What the memory plan counts an activation as (one row each); STEP is not counted (the batch and
 * the gradient norm's sums: bytes per token, beside megabytes per token for the rest). */
enum model_act_group {
    MODEL_ACT_GROUP_STEP,
    MODEL_ACT_GROUP_CHECKPOINTS, /* the blocks' inputs: the checkpoints when checkpointing */
    MODEL_ACT_GROUP_LAYER,
    MODEL_ACT_GROUP_GRADS,
    MODEL_ACT_GROUP_HEAD, /* final LayerNorm, logits, losses */
};

/* Element types of activations: the model's dtype, fp32 (statistics, losses, sums), int32 (token
 * ids). */
enum model_elem {
    MODEL_ELEM_DT,
    MODEL_ELEM_FP32,
    MODEL_ELEM_I32,
};

struct model_act_options {
    int B, T;          /* micro-batch and sequence length */
    enum dtype dt;     /* parameters, gradients and activations */
    int checkpointing; /* one shared set of block activations, recomputed in the backward */
    int64_t tile_size; /* memory-centric tiling of linear layers (0: none) */
};

struct model_act_info {
    const char *name; /* graph/gpt.c's tensor name (a block's: h<l>.<name>) */
    enum model_act_group group;
    enum model_elem elem;
    size_t n;      /* elements of one copy */
    int64_t bytes; /* of one copy */
    int copies;    /* per rank: 1, L (layer outputs), L or 1 (block activations), 0: absent */
    int in_block;  /* a block's tensor: 1, copy l is block l's, named h<l>.<name>; -1, one copy
                      that all blocks share (checkpointing), named h-1.<name>; 0: not a block's */
};

/* The activation table of cfg under o. O(1). */
void model_acts(struct model_act_info acts[MODEL_NACTS], const struct gpt_config *cfg,
                const struct model_act_options *o);
/* Bytes per rank of the activations of group g, all copies. */
int64_t model_acts_bytes(const struct model_act_info acts[MODEL_NACTS], enum model_act_group g);

#endif
