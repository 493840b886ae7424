/* codelets.h: the submitters of every operation, the only way graph/ creates tasks.
 *
 * Each `<op>_insert` submits one asynchronous task; its dependencies come from the access modes
 * of the tensors (written in each prototype: out/d* tensors are written or accumulated, the rest
 * read). Sizes follow kernels_cpu.h, whose contracts (accumulate vs overwrite) apply unchanged;
 * the element type comes from the tensors. `prio` is an rt_prio. */
#ifndef GPT50B_CODELETS_H
#define GPT50B_CODELETS_H

#include "comm.h"
#include "kernels_cpu.h"
#include "rt.h"
#include "swap.h"

void encoder_forward_insert(struct tensor *out, struct tensor *tokens, struct tensor *wte,
                            struct tensor *wpe, int B, int T, int C, int prio);
void encoder_backward_insert(struct tensor *dwte, struct tensor *dwpe, struct tensor *dout,
                             struct tensor *tokens, int B, int T, int C, int prio);

void layernorm_forward_insert(struct tensor *out, struct tensor *mean, struct tensor *rstd,
                              struct tensor *inp, struct tensor *weight, struct tensor *bias, int N,
                              int C, int prio);
/* res = a + b (the residual stream), then out = layernorm(res) with mean and rstd, in one task:
 * add_forward_insert then layernorm_forward_insert, with the same bits on the CPU. res must be
 * neither a nor b. */
void add_layernorm_forward_insert(struct tensor *res, struct tensor *out, struct tensor *mean,
                                  struct tensor *rstd, struct tensor *a, struct tensor *b,
                                  struct tensor *weight, struct tensor *bias, int N, int C,
                                  int prio);
void layernorm_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                               struct tensor *dout, struct tensor *inp, struct tensor *weight,
                               struct tensor *mean, struct tensor *rstd, int N, int C, int prio);

/* bias / dbias may be NULL. acc (may be NULL): an fp32 tensor of dinp's size in which a tiled
 * layer's backward sums its tiles when dinp is fp16/bf16, so that dinp is rounded once. set: the
 * matmul_set bits (kernels_cpu.h), the gradients written instead of added to (dbias always adds).
 */
void matmul_forward_insert(struct tensor *out, struct tensor *inp, struct tensor *weight,
                           struct tensor *bias, int N, int C, int OC, int prio);
void matmul_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                            struct tensor *dout, struct tensor *inp, struct tensor *weight, int N,
                            int C, int OC, struct tensor *acc, unsigned set, int prio);

/* The fused MLP forms, for whole (untiled) layers; same contracts and CPU bits as
 * matmul_forward_gelu_cpu and matmul_backward_dgelu_cpu (kernels_cpu.h). pre (forward) may be NULL
 * when the backward recomputes it; dpre is overwritten; dbias and dbias_pre may be NULL; set:
 * MATMUL_SET_DWEIGHT or 0. */
void matmul_forward_gelu_insert(struct tensor *out, struct tensor *pre, struct tensor *inp,
                                struct tensor *weight, struct tensor *bias, int N, int C, int OC,
                                int prio);
void matmul_backward_dgelu_insert(struct tensor *dpre, struct tensor *dweight, struct tensor *dbias,
                                  struct tensor *dbias_pre, struct tensor *dout, struct tensor *inp,
                                  struct tensor *weight, struct tensor *pre, int N, int C, int OC,
                                  unsigned set, int prio);

/* stats: [B,NH,T,2] fp32, the forward's per-row softmax statistics (flash_attention_*_cpu); the
 * backward reads the forward's qkv, out and stats, and writes dqkv (no zero fill before it). */
void attention_forward_insert(struct tensor *out, struct tensor *stats, struct tensor *qkv, int B,
                              int T, int C, int NH, int prio);
void attention_backward_insert(struct tensor *dqkv, struct tensor *dout, struct tensor *qkv,
                               struct tensor *out, struct tensor *stats, int B, int T, int C,
                               int NH, int prio);

void gelu_forward_insert(struct tensor *out, struct tensor *inp, int prio);
void gelu_backward_insert(struct tensor *dinp, struct tensor *inp, struct tensor *dout, int prio);

void add_forward_insert(struct tensor *out, struct tensor *a, struct tensor *b, int prio);

void crossentropy_forward_insert(struct tensor *losses, struct tensor *logits,
                                 struct tensor *targets, int N, int V, int Vp, int prio);
/* Replaces logits by dlogits in place. */
void crossentropy_backward_insert(struct tensor *logits, struct tensor *targets, float dloss, int N,
                                  int V, int Vp, int prio);

/* parts[slot + i] += the sum of squares of grads[i], i < n, in one task (up to 16 a task). Tasks
 * on distinct slots of parts run in any order (STARPU_COMMUTE) and give the same bits in any
 * order; sum_insert then adds the slots in index order into out[0], so the global norm does not
 * depend on the schedule. */
void sumsq_insert(struct tensor *parts, int slot, struct tensor *const *grads, int n, int prio);
void sum_insert(struct tensor *out, struct tensor *parts, int prio);
/* param may be NULL (fp32 runs train the master itself); sumsq may be NULL (no clipping, no
 * overflow skip: the task then waits for this tensor's gradient only). The step covers grad->n
 * elements: master, m and v may be larger (swap buffers shared by tensors of several sizes). A
 * split master steps one task per piece; the other tensors must be split the same way. */
void adamw_insert(struct tensor *param, struct tensor *master, struct tensor *m, struct tensor *v,
                  struct tensor *grad, struct tensor *sumsq, const struct adamw_hparams *hp,
                  int prio, enum rt_where where);

/* adamw_insert for each tensor of a group (a layer's), each with its own weight decay (hp's is
 * unused): on a GPU (where RT_WHERE_COMPUTE, CUDA workers) one task of the multi-tensor kernel
 * for up to 16 whole tensors (none split into pieces, param given for all or none), the same
 * bits as a task each; elsewhere adamw_insert's tasks. */
struct adamw_group {
    struct tensor *param, *master, *m, *v, *grad;
    float weight_decay;
};
void adamw_group_insert(const struct adamw_group *g, int n, struct tensor *sumsq,
                        const struct adamw_hparams *hp, int prio, enum rt_where where);

/* NVMe optimizer state (codelets/swap.c): the master, m and v regions of `file`, each
 * region_bytes long, into or out of three RAM buffers of at least region_bytes. A swap-in expects
 * the regions to carry `generation` (what the last swap-out wrote); a swap-out writes it. With
 * sumsq (the one AdamW read, NULL: none), a swap-out whose step AdamW skipped (non-finite
 * adamw_global_norm(sumsq, inv_loss_scale)) writes nothing and retags the regions, which hold
 * generation - 1, as generation (swap_file_keep). */
void swap_in_insert(struct tensor *master, struct tensor *m, struct tensor *v,
                    struct swap_file *file, size_t region_bytes, uint64_t generation, int prio);
void swap_out_insert(struct tensor *master, struct tensor *m, struct tensor *v,
                     struct tensor *sumsq, float inv_loss_scale, struct swap_file *file,
                     size_t region_bytes, uint64_t generation, int prio);
void cast_insert(struct tensor *dst, struct tensor *src, int prio, enum rt_where where);
/* A task on the compute device that only reads `ts` (n of them; NULL skipped) once `after` is
 * ready: the scheduler moves them to the device while the tasks before it run. */
void prefetch_insert(struct tensor *const *ts, int n, struct tensor *after, int prio);
/* Sets every byte of t to 0; zero_all_insert of ts[0..n) in one task (up to 16 a task). */
void zero_insert(struct tensor *t, int prio);
void zero_all_insert(struct tensor *const *ts, int n, int prio);

/* ZeRO-3's collectives over a communicator's ranks (runtime/comm.h; codelets/collectives.c): one
 * asynchronous task per collective and process, naming every local rank's tensors, run one at a
 * time per communicator in submission order at high priority; each holds one worker until it
 * ends (a CPU worker for the host backend, for NCCL one CUDA worker's thread). */
/* For every local rank r: full[r] (world * shard_elems elements) = the concatenation of all
 * ranks' shard[] (shard_elems each) in global-rank order. shard[] read, full[] written; all
 * tensors of one dtype (fp32, fp16 or bf16). */
void comm_all_gather(struct comm *c, struct tensor **shard, struct tensor **full,
                     size_t shard_elems);
/* For every local rank r: shard[r] = the sum over all ranks g of full_g's slice
 * [comm_rank(c, r) * shard_elems, +shard_elems). full[] read, shard[] written; dtypes as above.
 * Host backend: summed in fp32 in global-rank order and rounded once (bit-reproducible whatever
 * the split into processes); NCCL: NCCL's order. */
void comm_reduce_scatter(struct comm *c, struct tensor **full, struct tensor **shard,
                         size_t shard_elems);
/* For every local rank r: t[r][0..n) = the sum over all ranks g of t_g[0..n) (host backend: in
 * fp32 in global-rank order, rounded once, so every rank gets the same bits whatever the split
 * into processes). t[] read and written. For the global gradient norm that every rank's
 * optimizer step reads. */
void comm_all_reduce(struct comm *c, struct tensor **t, size_t n);

#endif
