/* gpt.h: the GPT-2 model as a StarPU task graph.
 *
 * The tables of model.h (trainable tensors: name, shape, layout, decay, init; one rank's
 * activations) drive sizes, allocation, registration, checkpoint names and the weight-decay mask.
 * Everything here submits tasks through the codelets' submitters (codelets.h) and touches data
 * only through tensor_acquire_*; nothing calls StarPU directly.
 *
 * The training step reads like the algorithm:
 *     gpt_set_batch(m, inputs, targets);   // host -> the input tensors
 *     gpt_forward(m);                      // tasks: embeddings, L blocks, final LN, logits, loss
 *     gpt_backward(m, loss_scale, 0, 1);   // tasks: zero grads, backward, (recompute when
 *                                          //        checkpointing), global sum of squares
 *     gpt_update(m, &hp);                  // tasks: AdamW on every tensor (skips on overflow)
 *     gpt_step_stats(m, &loss, &sumsq);    // waits for this step's loss and gradient norm
 *
 * Dimension legend: B batch, T sequence, C channels, L layers, NH heads, V vocabulary, Vp padded
 * vocabulary (multiple of 128), maxT position table rows, N = B*T. */
#ifndef GPT50B_GPT_H
#define GPT50B_GPT_H

#include <stdint.h>

#include "aio.h"
#include "kernels_cpu.h"
#include "model.h"
#include "rt.h"
#include "state.h"
#include "tier.h"

struct comm;

struct gpt_options {
    /* ZeRO-3 data parallelism over the communicator's ranks, comm_local of them in this process
     * and comm_world in all (see docs/design.md): each rank owns a shard of every tensor and its
     * optimizer state, runs its own micro-batch on comm_worker, and the layers' parameters are
     * all-gathered before use and released after it, their gradients reduce-scattered after the
     * backward. Every process runs the same calls in the same order (SPMD). NULL: one rank, no
     * collectives. */
    struct comm *comm;
    /* Several ranks: gathered parameters that may live at once per rank, in elements,
     * DeepSpeed's stage3_max_live_parameters, rounded down to whole layers, at least 2 (0: 2
     * layers); the embeddings and ln_f live throughout. */
    int64_t max_live_elems;
    int micro_steps;   /* micro-batches per step, gpt_backward's micro_steps (0: 1) */
    enum dtype dt;     /* parameters, gradients and activations; master weights are fp32 */
    int B, T;          /* micro-batch and sequence length of every step */
    int checkpointing; /* keep each layer's input only; recompute the layer in backward */
    uint64_t seed;     /* weight initialisation */
    int tile_size;     /* memory-centric tiling: linear layers with more output channels run as
                          tasks of at most this many (separate tiles of the weight); 0: whole */
    enum tier optim_tier;
    /* fp16/bf16 parameters live in pinned CPU memory: each layer's are moved to the device one
     * layer ahead of use (a prefetch task) and are the first evicted after it (ZeRO-Infinity's
     * parameter offload). With the optimizer away from the device, parameters and gradients have
     * their home in pinned CPU memory anyway; this adds the prefetch and eviction. Several ranks:
     * the shards live there; a layer's all-gather, which runs ahead of the compute, is its
     * prefetch, and the eviction hints go to the shards after the all-gather (parameters) and the
     * reduce-scatter (gradients). */
    int offload_param;
    /* With checkpointing: the activation checkpoints (each block's input) have their home in
     * pinned CPU memory. Each is written back and the first evicted once the forward has read
     * it, and moved back to the device one layer ahead of its recompute in the backward
     * (ZeRO-Infinity's activation-checkpoint offload, DeepSpeed's cpu_checkpointing). */
    int offload_checkpoints;
    /* Optimizer on CPU workers: AdamW steps tensors in pieces of at most this many elements, one
     * task each, so the workers share a large tensor (whole rows; 0: whole tensors). Tensors
     * split by tile_size use their tiles instead. NVMe-streamed tensors step whole. */
    int64_t optim_chunk;
    /* ZeRO-Offload's delayed parameter update (DPU; off by default): step t's AdamW runs beside
     * iteration t+1, whose forward and backward use the parameters before step t (those of step
     * t-1; iterations 1 and 2 both the initial ones). The compute copies and gradients are
     * double-buffered (gpt_begin_step takes the other pair) so that the step writes one while
     * the next iteration reads the other. One rank, the CPU optimizer (state in RAM or on NVMe),
     * fp16/bf16. The math of each step is AdamW's; its gradient is one iteration older. */
    int delayed_update;
    /* TIER_NVME only (several ranks: one swap file per shard, named after its rank, in
     * the process's one swap folder): */
    const char *nvme_path;    /* the folder that receives this process's swap folder */
    int swap_buffers;         /* RAM buffer sets per rank cycled by swap-in/AdamW/swap-out (>= 1) */
    double resident_fraction; /* share of a rank's optimizer bytes planned to stay in RAM */
    const struct aio_config *aio; /* the I/O engine's settings (NULL: defaults) */
};

struct gpt; /* opaque */

/* User error (exit 2) when the shape is impossible: heads not dividing hidden, a sequence longer
 * than the position table, non-positive sizes. Needs no runtime. */
void gpt_check_config(const struct gpt_config *cfg, const struct gpt_options *opt);

/* Builds the table, registers every tensor and initialises weights like GPT-2 (normal 0.02,
 * residual projections 0.02/sqrt(2L), LayerNorm 1/0, biases 0, padded wte rows 0) from
 * opt->seed. Exits with a user error when the configuration is impossible. */
struct gpt *gpt_create(const struct gpt_config *cfg, const struct gpt_options *opt);
void gpt_destroy(struct gpt *m);
const struct gpt_config *gpt_get_config(const struct gpt *m);

/* The model's tensor table (model.h): its size and tensor i. */
int gpt_num_tensors(const struct gpt *m);
const struct gpt_param *gpt_tensor(const struct gpt *m, int i);
/* The model's state (graph/state/state.h): shards, tiers, NVMe swap, whole-tensor views for
 * checkpoints, placement and traffic for logs. */
struct state *gpt_get_state(struct gpt *m);

/* Copies one batch per local rank (R = comm_local ranks, 1 without a communicator; N tokens
 * each, row-major [B,T], local rank r's at r*N) into the ranks' input tensors. Waits for the
 * previous step's readers of those tensors. Token ids must be < V. */
void gpt_set_batch(struct gpt *m, const int32_t *inputs, const int32_t *targets);
void gpt_forward(struct gpt *m);
/* The start of a training step, before its first micro-batch's gpt_forward. With the delayed
 * update, after a step has been submitted (gpt_update): the other compute copies and gradients
 * (the step just submitted writes the ones its iteration used). Nothing otherwise. */
void gpt_begin_step(struct gpt *m);
/* With the delayed update, after gpt_step_stats has shown that the step just submitted was
 * skipped (fp16 overflow): the compute copies that step would have written get the other copies
 * (the parameters of the last applied step), which the iteration after next then reads. */
void gpt_delayed_skip(struct gpt *m);
/* Backward of micro-batch `micro` (0-based) of `micro_steps` accumulated into one step: the
 * gradients are those of the mean loss over all the step's micro-batches of all ranks, times
 * loss_scale. The first micro-batch zeroes them; the last reduce-scatters them into the ranks'
 * shards and ends with the global sum of squares of the (scaled) gradients in a tensor the update
 * reads. */
void gpt_backward(struct gpt *m, float loss_scale, int micro, int micro_steps);
void gpt_update(struct gpt *m, const struct adamw_hparams *hp);
/* Waits for the current step's mean loss (over all ranks of all processes: a collective, call it
 * in every process) and, after gpt_backward, the gradients' sum of squares (scaled by
 * loss_scale^2; non-finite on overflow). sumsq may be NULL (forward only). The simulation, where no
 * kernel runs, waits alike and gives stand-ins: ln V (uniform predictions) and a norm of 1. */
void gpt_step_stats(struct gpt *m, float *mean_loss, float *sumsq);
/* Rank 0's logits of the last forward, [N,Vp] widened to fp32 into out; waits for them. Call
 * between gpt_forward and gpt_backward (the backward overwrites them). */
void gpt_read_logits(struct gpt *m, float *out);
/* Gradient of tensor i widened to fp32 (our layout) into out; waits for the backward. One
 * process only. */
void gpt_read_grad(struct gpt *m, int i, float *out);

#endif
