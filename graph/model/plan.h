/* plan.h: the memory plan, computed before anything is allocated.
 *
 * From the model's shape, the micro-batch, the precision, the number of data-parallel ranks and
 * where each kind of tensor lives (GPU, CPU memory or NVMe), the plan counts the bytes of every
 * kind on every tier, per rank, per node and in all ranks, compares them with the capacities and
 * says in one line what does not fit and what to change. Each line names the setting that put it
 * there and where that setting came from (dsconfig.h's struct setting_origin), so a surprising
 * number can be traced to a flag, a config key or a default.
 *
 * The model of memory, ZeRO-3 as in the SC21 run:
 * - Model states are partitioned over the world_size ranks: each rank holds ceil(P / N) elements
 *   of the parameters (dt), of the gradients (dt, or fp32 with the optimizer state as DeepSpeed's
 *   offload keeps them), of the fp32 master weights and of Adam's m and v. So NVMe holds 16 bytes
 *   per parameter in DeepSpeed's configuration (master 4 + m 4 + v 4 + fp32 gradient 4) and 12
 *   when the gradients stay elsewhere.
 * - Activations are those that graph/gpt.c allocates, from model.h's activation table: L+1
 *   residual-stream tensors [B,T,C] (the checkpoints, in RAM when ckpt_in_cpu), one block's
 *   activations (all L without checkpointing), the shared activation gradients, the final
 *   LayerNorm and logits [B,T,Vp]. The parameter count is the sum of model.h's tensor table.
 * - When parameters are gathered (several ranks, or parameters away from the compute device) the
 *   compute device holds the largest linear operator's parameters and gradients (the paper's
 *   model-state working memory: 16 C^2 bytes for the fp16 MLP, more for the LM head when
 *   Vp > 4C), cut by tiling, plus the prefetched parameters.
 * - RAM also holds the pinned swap buffers (optimizer: buffer_count x sub-group x 4 bytes;
 *   parameters: buffer_count x buffer_size x dt) and the pinned staging pool, per rank.
 * - Partial residency: with the optimizer state on NVMe, whole sub-groups of it stay in RAM when
 *   RAM has room after everything else (less a headroom share), up to resident_fraction of it.
 *   Resident sub-groups are never read or written on NVMe.
 * Capacities: GPU per rank (0: no GPU, the compute device is the CPU and "GPU" tiers mean RAM),
 * RAM and NVMe per node (one process drives a node's ranks_per_node GPUs). -1: unknown, not
 * checked. Sizes are decimal: 1 GB = 1e9 bytes.
 *
 *     struct plan_input in;
 *     settings_plan_input(&settings, swap_unit, &in); // settings.h: shape, tiers, buffers, origins
 *     if (plan_capacity_gpu(&in.cap[TIER_GPU], card_bytes, err, sizeof err) ||
 *         plan_capacity_ram(&in.cap[TIER_CPU], err, sizeof err) ||
 *         plan_capacity_nvme(&in.cap[TIER_NVME], settings.nvme_path, err, sizeof err))
 *         user_fail("%s", err);
 *     struct plan p;
 *     if (plan_compute(&p, &in, err, sizeof err)) user_fail("%s", err);
 *     plan_print(&p, stdout);
 *     if (plan_verdict(&p, err, sizeof err)) user_fail("%s", err);
 */
#ifndef GPT50B_PLAN_H
#define GPT50B_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dsconfig.h"
#include "dtype.h"
#include "tier.h"

struct machine;

/* Enough for any message the plan writes into err. */
#define PLAN_ERR_SIZE 512

/* The inputs whose origin the plan reports. */
enum plan_knob {
    PLAN_KNOB_MODEL,
    PLAN_KNOB_MICRO_BATCH,
    PLAN_KNOB_GRAD_ACCUM,
    PLAN_KNOB_DTYPE,
    PLAN_KNOB_CHECKPOINTING,
    PLAN_KNOB_CKPT_IN_CPU,
    PLAN_KNOB_WORLD,
    PLAN_KNOB_TIER_PARAMS,
    PLAN_KNOB_TIER_GRADS,
    PLAN_KNOB_TIER_OPTIM,
    PLAN_KNOB_PIN_PARAMS,
    PLAN_KNOB_PIN_OPTIM,
    PLAN_KNOB_PARAM_BUFFERS,
    PLAN_KNOB_OPTIM_BUFFERS,
    PLAN_KNOB_SUB_GROUP,
    PLAN_KNOB_RESIDENT,
    PLAN_KNOB_TILE,
    PLAN_KNOB_PREFETCH,
    PLAN_KNOB_PINNED_POOL,
    PLAN_NKNOBS
};

struct plan_capacity {
    int64_t bytes;                /* -1: unknown */
    struct setting_origin origin; /* e.g. env STARPU_LIMIT_CUDA_MEM, default MemAvailable; when
                                     unknown, why ("no NVMe folder"), which plan_print shows */
};

struct plan_input {
    int L, C, NH, T, maxT, Vp; /* model shape, gpt.h's legend */
    int B;                     /* micro-batch of each rank */
    int grad_accum;            /* micro-batches per optimizer step */
    enum dtype dt;             /* parameters, gradients, activations; master weights are fp32 */
    int checkpointing;         /* keep each layer's input only, recompute the layer in backward */
    int ckpt_in_cpu;           /* the checkpoints live in RAM (SC21); only with checkpointing */
    int delayed_update;        /* a second dt copy of the parameters and gradients, pinned */
    int world_size;            /* data-parallel ranks: ZeRO-3 partitions model states over them */
    int ranks_per_node;        /* ranks sharing one node's RAM and NVMe; divides world_size */
    enum tier tier_params;     /* dt parameters: GPU, CPU or NVMe */
    enum tier tier_grads;      /* dt gradients: GPU or CPU; unused when grads_with_optim */
    enum tier tier_optim;      /* fp32 master weights, Adam m and v: GPU, CPU or NVMe */
    int grads_with_optim;      /* DeepSpeed's offload: an fp32 gradient lives with the optimizer
                                  state (and is swapped with it) instead of a dt gradient */
    int pin_params, pin_optim; /* the RAM copies are page-locked */
    int64_t pinned_pool;       /* bytes of the reusable pinned staging pool of each rank */
    int param_buffer_count;    /* parameter swap buffers (parameters on NVMe) ... */
    int64_t param_buffer_size; /* ... of this many elements */
    int optim_buffer_count;    /* optimizer swap buffers of one sub-group's fp32 elements */
    int optim_buffer_tensors;  /* tensors each buffer holds: 1 in DeepSpeed (a buffer per
                                  tensor), 3 in gpt50b (a buffer set holds master, m and v) */
    int64_t sub_group_size;    /* elements of a rank's partition per optimizer step unit */
    double resident_fraction;  /* at most this share of NVMe optimizer state stays in RAM */
    double ram_headroom;       /* share of the RAM capacity the resident share leaves free */
    int64_t tile;              /* output rows per tile of the largest linear operator; 0: none */
    int64_t prefetch;          /* parameter elements gathered ahead of use */
    struct plan_capacity cap[NTIERS]; /* GPU per rank; CPU and NVMe per node */
    struct setting_origin origin[PLAN_NKNOBS];
    /* --machine's description, or this host's rates measured at start (probe.h) (NULL: none):
     * with the optimizer state on NVMe, plan_print times a node's step at its disk and CPU AdamW
     * rates */
    const struct machine *machine;
};

/* The kinds of memory, in the order the table prints them. */
enum plan_row_kind {
    PLAN_ROW_PARAMS,
    PLAN_ROW_GRADS,
    PLAN_ROW_MASTER,
    PLAN_ROW_ADAM_M,
    PLAN_ROW_ADAM_V,
    PLAN_ROW_FP32_GRADS,
    PLAN_ROW_DELAYED,        /* the delayed update's second parameters and gradients */
    PLAN_ROW_OPTIM_RESIDENT, /* the resident share of NVMe optimizer state, all four tensors */
    PLAN_ROW_OPTIM_SWAP_BUFFERS,
    PLAN_ROW_PARAM_SWAP_BUFFERS,
    PLAN_ROW_PINNED_POOL,
    PLAN_ROW_CHECKPOINTS,
    PLAN_ROW_LAYER_ACTS,
    PLAN_ROW_ACT_GRADS,
    PLAN_ROW_LOGITS,
    PLAN_ROW_OP_WORKING,
    PLAN_ROW_PREFETCH,
    PLAN_NROWS
};

struct plan_row {
    char what[96];
    enum tier tier;
    int pinned;
    int64_t per_rank, per_node, all; /* bytes; 0: the row does not apply */
    enum plan_knob knob;             /* the input that put it there */
};

struct plan {
    struct plan_input in;
    int64_t nparams;      /* whole model, padded vocabulary (as gpt_num_params) */
    int64_t nparams_rank; /* one rank's partition: ceil(nparams / world_size) */
    enum tier compute;    /* GPU, or CPU when there is none */
    char op_name[64];     /* the largest linear operator, e.g. "LM head 50304 x 8192" */
    struct plan_row rows[PLAN_NROWS];
    int64_t need[NTIERS]; /* GPU per rank, CPU and NVMe per node */
    int64_t pinned;       /* pinned bytes per node */
    int fits[NTIERS];     /* 1 fits, 0 does not, -1 capacity unknown */
    int fit;              /* no known capacity is exceeded */
    /* NVMe optimizer state, per rank (all zero unless tier_optim is NVMe) */
    int64_t subgroups, resident_subgroups, resident_elems, resident_bytes;
    double resident_share; /* resident_elems / nparams_rank */
    /* NVMe bytes per iteration per rank, with the resident share and with everything swapped */
    int64_t nvme_read, nvme_write, nvme_read_swapped, nvme_write_swapped;
};

/* Defaults: tiers GPU, fp32, B 1, one rank, no checkpointing, DeepSpeed's buffer counts (5 x 1e8
 * and 4 x sub-group 1e9), resident_fraction 1 (as much as fits), ram_headroom 0.1, prefetch 5e7,
 * no pool, capacities unknown; every origin SOURCE_DEFAULT. The model shape is left 0. A run's
 * inputs come from its settings instead (settings_plan_input, settings.h). */
void plan_input_init(struct plan_input *in);

/* card_bytes (0 without a GPU), lowered to STARPU_LIMIT_CUDA_MEM (MiB) when that is set.
 * Returns 0, or -1 when the variable is not a size. */
int plan_capacity_gpu(struct plan_capacity *cap, int64_t card_bytes, char *err, size_t errlen);
/* STARPU_LIMIT_CPU_MEM (MiB) when set, else MemAvailable; -1 bytes when neither is known. */
int plan_capacity_ram(struct plan_capacity *cap, char *err, size_t errlen);
/* Free space of folders (statvfs f_bavail), one folder or --nvme-path's comma-separated list
 * (fsdir_list_split; folders on one file system counted once): the NVMe folders', or a
 * checkpoint's; unknown when folders is NULL or "". -1 when the list is malformed or a folder
 * cannot be examined (missing, unreadable): err holds the
 * one-line error of a run, and the capacity is unknown with "FOLDER: reason" as its origin, so
 * that a dry run can go on planning and report it ("NVMe space ... not checked: /local_nvme: No
 * such file or directory"). */
int plan_capacity_nvme(struct plan_capacity *cap, const char *folders, char *err, size_t errlen);
/* The capacities of a described machine (machine.h: --machine) instead of this one's: its GPU
 * memory per card (lowered by STARPU_LIMIT_CUDA_MEM as a card's is), its RAM available per node
 * (STARPU_LIMIT_CPU_MEM wins when set, as over MemAvailable) and its NVMe space per node, each
 * with "--machine NAME: field" as its origin. Returns 0, or -1 when a variable is not a size. */
int plan_capacity_machine(struct plan_capacity cap[NTIERS], const struct machine *m, char *err,
                          size_t errlen);
/* At m's rates, with the optimizer state on NVMe: the resident share at which a node's disk time
 * for the state with nothing resident, less that share, equals its CPU AdamW time (plan_print's
 * step times, at in.machine's); 0 when the AdamW is the slower with nothing resident. The share
 * --nvme-resident-fraction auto plans with (RAM permitting). */
double plan_balance_share(const struct plan *p, const struct machine *m);
/* MemAvailable of /proc/meminfo in bytes, -1 when unknown. */
int64_t plan_mem_available(void);
/* b in decimal units with that many decimals into buf, e.g. "100.71 GB", "512 B". */
void plan_bytes_words(int64_t b, int decimals, char *buf, size_t n);

/* Fills *p from *in; pure, O(L) (it builds the model's tables, model.h). Returns 0 (fitting or not:
 * see p->fit), or -1 with a message when the inputs are impossible (ranks per node not dividing the
 * world size, gradients on NVMe, a zero sub-group size, ...). */
int plan_compute(struct plan *p, const struct plan_input *in, char *err, size_t errlen);
/* The table: inputs with their origins, every row with its tier, sizes and origin, the need and
 * capacity of each tier with the verdict, the resident share and the NVMe traffic. */
void plan_print(const struct plan *p, FILE *f);
/* 0 when everything fits; else -1 and ONE line for the first tier that does not (GPU, CPU,
 * NVMe): "plan: GPU memory: the plan needs 18.3 GB per GPU, the cap is 16.0 GB
 * (STARPU_LIMIT_CUDA_MEM): <what to change>". */
int plan_verdict(const struct plan *p, char *msg, size_t n);

#endif
