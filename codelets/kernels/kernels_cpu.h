/* kernels_cpu.h: the CPU reference kernels of every operation of the model and its optimizer.
 *
 * Plain functions with no runtime code: the codelets in codelets/<op>.c call them on CPU workers
 * and the tests call them directly. Arguments come in a fixed order: outputs, inputs, weights,
 * sizes, dtype. Buffers typed `void *` hold elements of `dt`; `float *` buffers are always fp32.
 * Math is fp32 whatever dt is (fp16/bf16 inputs are widened, results rounded once on store).
 * Kernels are deterministic: the same inputs give bit-identical outputs, whatever the thread count.
 *
 * Dimension legend: B batch, T sequence, C channels, NH heads, hs = C/NH head size, OC output
 * channels, N = B*T rows, V vocabulary, Vp padded vocabulary (a multiple of 128, Vp >= V), maxT
 * rows of the position table.
 *
 * Gradient convention (as llm.c): every backward kernel ACCUMULATES (+=) into its gradient
 * outputs (d-prefixed), so the caller zeroes them first; crossentropy_backward is the one that
 * overwrites (it starts the backward pass). */
#ifndef GPT50B_KERNELS_CPU_H
#define GPT50B_KERNELS_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* out[N,C] = wte[tokens[b,t],:] + wpe[t,:] */
void encoder_forward_cpu(void *out, const int32_t *tokens, const void *wte, const void *wpe, int B,
                         int T, int C, enum dtype dt);
/* dwte[Vp,C] += scatter of dout by token, dwpe[maxT,C] += sum over b of dout */
void encoder_backward_cpu(void *dwte, void *dwpe, const void *dout, const int32_t *tokens, int B,
                          int T, int C, enum dtype dt);

/* out[N,C] = (inp - mean) * rstd * weight + bias, eps 1e-5; writes mean[N] and rstd[N] (fp32). */
void layernorm_forward_cpu(void *out, float *mean, float *rstd, const void *inp, const void *weight,
                           const void *bias, int N, int C, enum dtype dt);
/* The residual add and the next LayerNorm in one pass over the rows:
 *     res[N,C] = a + b (the residual stream, rounded to dt), out[N,C] = layernorm(res)
 * with mean[N] and rstd[N]; bit for bit add_forward_cpu then layernorm_forward_cpu. res may be a
 * or b (in place). Its backward needs no fused kernel: layernorm_backward already adds dinp into
 * the residual gradient, which is the add's backward. */
void add_layernorm_forward_cpu(void *res, void *out, float *mean, float *rstd, const void *a,
                               const void *b, const void *weight, const void *bias, int N, int C,
                               enum dtype dt);
void layernorm_backward_cpu(void *dinp, void *dweight, void *dbias, const void *dout,
                            const void *inp, const void *weight, const float *mean,
                            const float *rstd, int N, int C, enum dtype dt);

/* out[N,OC] = inp[N,C] . weight[OC,C]^T + bias[OC]; bias may be NULL. BLAS sgemm. Rows of out
 * are ldo >= OC elements apart (ldo > OC: out is a block of columns of a wider matrix, e.g. one
 * tile of a layer split over its output channels). */
void matmul_forward_cpu(void *out, const void *inp, const void *weight, const void *bias, int N,
                        int C, int OC, int ldo, enum dtype dt);
/* The `set` bits of the matmul backward's kernels: the gradients the product writes instead of
 * adding to; their old contents are never read, so they need no zero fill first. The bits are
 * those of adding the product onto a zero-filled buffer. */
enum matmul_set { MATMUL_SET_DINP = 1, MATMUL_SET_DWEIGHT = 2 };

/* dinp[N,C] += dout . weight; dweight[OC,C] += dout^T . inp; dbias[OC] += column sums of dout,
 * whose rows are ldo >= OC elements apart. dinp and dbias may be NULL (not wanted). set: the
 * matmul_set bits (0: every gradient adds). */
void matmul_backward_cpu(void *dinp, enum dtype dinp_dt, void *dweight, void *dbias,
                         const void *dout, const void *inp, const void *weight, int N, int C,
                         int OC, int ldo, enum dtype dt, unsigned set);

/* The MLP's first layer and its activation (the contract of matmul_forward_gelu_cuda, for a whole
 * layer): pre[N,OC] = inp . weight^T + bias, out[N,OC] = gelu(pre). pre may be NULL (not kept:
 * the backward of activation checkpointing recomputes it). Bit for bit matmul_forward_cpu then
 * gelu_forward_cpu on the rounded pre-activation. */
void matmul_forward_gelu_cpu(void *out, void *pre, const void *inp, const void *weight,
                             const void *bias, int N, int C, int OC, enum dtype dt);
/* The backward of the MLP's second layer (C inputs, OC outputs) through the first's activation
 * (matmul_backward_dgelu_cuda's contract); inp[N,C] = gelu(pre), weight[OC,C], dout[N,OC]:
 *     dpre[N,C] = gelu'(pre) * (dout . weight)    OVERWRITES
 *     dweight += dout^T . inp (written with set MATMUL_SET_DWEIGHT), dbias += column sums of
 *     dout (may be NULL)
 *     dbias_pre[C] += column sums of dpre: the first layer's bias gradient (may be NULL)
 * Bit for bit matmul_backward_cpu into a zeroed buffer, gelu_backward_cpu into a zeroed dpre, and
 * dpre's column sums as matmul_backward_cpu sums a dbias. Allocates that [N,C] buffer. */
void matmul_backward_dgelu_cpu(void *dpre, void *dweight, void *dbias, void *dbias_pre,
                               const void *dout, const void *inp, const void *weight,
                               const void *pre, int N, int C, int OC, enum dtype dt, unsigned set);

/* Causal multi-head self-attention without the T x T probabilities (flash attention's
 * contract). qkv[N,3C] holds per token q (C) | k (C) | v (C), head h in columns [h*hs, (h+1)*hs)
 * of each; out[N,C] receives the heads concatenated (softmax scale 1/sqrt(hs)). The forward also
 * writes two fp32 statistics per query row, stats[B,NH,T,2]:
 *     stats[b,h,t,0] = m = max over t2 <= t of s(t2), s(t2) = q_t . k_t2 / sqrt(hs)
 *     stats[b,h,t,1] = l = sum over t2 <= t of exp(s(t2) - m)
 * (8 bytes per row: 0.5 MiB for B 4, NH 16, T 1024, where the probabilities took 128 MiB of
 * fp16), from which the backward recomputes p(t2) = exp(s(t2) - m) / l. The pair, rather than
 * log-sum-exp m + log l, lets the CPU backward recompute the forward's probabilities bit for bit.
 * These CPU kernels compute each row whole, in O(T) memory a thread: the bits of the earlier
 * kernels that kept the probabilities (llm.c's attention_forward/backward) in every dtype. */
void flash_attention_forward_cpu(void *out, float *stats, const void *qkv, int B, int T, int C,
                                 int NH, enum dtype dt);
/* dqkv[N,3C] += gradient of the attention given dout[N,C], the forward's qkv, out and stats.
 * Recomputes each row's probabilities as the forward did, rounds them to dt (the operand the
 * products of a 16-bit run see), then back through the products and the softmax. It does not read
 * out, which the CUDA flash backward needs for rowsum(dout * out). O(B NH T^2 hs) time. */
void flash_attention_backward_cpu(void *dqkv, const void *dout, const void *qkv, const void *out,
                                  const float *stats, int B, int T, int C, int NH, enum dtype dt);

/* GPT-2 tanh-approximate GELU over n elements; backward dinp += gelu'(inp) * dout. */
void gelu_forward_cpu(void *out, const void *inp, size_t n, enum dtype dt);
void gelu_backward_cpu(void *dinp, const void *inp, const void *dout, size_t n, enum dtype dt);

/* out = a + b over n elements (the residual connection). */
void add_forward_cpu(void *out, const void *a, const void *b, size_t n, enum dtype dt);

/* losses[N] (fp32) = logsumexp(logits[n, 0:V]) - logits[n, targets[n]]; columns V..Vp-1 are
 * padding and never take part. */
void crossentropy_forward_cpu(float *losses, const void *logits, const int32_t *targets, int N,
                              int V, int Vp, enum dtype dt);
/* dlogits[N,Vp] = (softmax(logits[n,0:V]) - onehot(targets[n])) * dloss, padding columns 0.
 * Overwrites. dlogits may equal logits (in place). dloss is d(total objective)/d(loss[n]),
 * e.g. loss_scale / N for a mean loss. */
void crossentropy_backward_cpu(void *dlogits, const void *logits, const int32_t *targets,
                               float dloss, int N, int V, int Vp, enum dtype dt);

/* out[0] += sum of grad[i]^2 over n elements (fp32 result, accumulated in double on CPU).
 * A non-finite element makes the result non-finite (overflow detection). */
void sumsq_cpu(float *out, const void *grad, size_t n, enum dtype dt);
/* out[0] = in[0] + ... + in[n-1], summed in double in index order (the same bits as sum_cuda). */
void sum_cpu(float *out, const float *in, size_t n);

/* Hyper-parameters of one AdamW step. */
struct adamw_hparams {
    float lr, beta1, beta2, eps, weight_decay;
    int step;             /* 1-based count of applied (not skipped) steps, for bias correction */
    float inv_loss_scale; /* gradients are multiplied by this before use */
    float clip_norm;      /* max global norm of the unscaled gradient; <= 0: no clipping */
};

/* One AdamW step over n elements, PyTorch's formula (torch.optim.AdamW, foreach=False):
 *   norm = sqrt(*sumsq) * inv_loss_scale            (global norm of the unscaled gradient)
 *   if !isfinite(norm): return, nothing changes      (overflow: the step is skipped)
 *   coef = clip_norm > 0 && norm > clip_norm ? clip_norm / (norm + 1e-6) : 1
 *   g = grad * inv_loss_scale * coef
 *   master *= 1 - lr * weight_decay
 *   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
 *   denom = sqrt(v) / sqrt(1 - beta2^step) + eps
 *   master -= (lr / (1 - beta1^step)) * m / denom
 *   param = master rounded to dt (skipped when param is NULL: fp32 runs train the master itself)
 * sumsq points to the sum of squares of ALL scaled gradients of the model (see sumsq_cpu), or is
 * NULL when neither clipping nor the overflow skip applies (clip_norm <= 0, no fp16 scaling): the
 * step then needs no global information and may start as soon as this tensor's gradient is
 * complete; it equals the step with a finite sumsq and clip_norm <= 0 bit for bit. */
void adamw_cpu(void *param, float *master, float *m, float *v, const void *grad, const float *sumsq,
               size_t n, const struct adamw_hparams *hp, enum dtype dt);
/* The global norm that adamw_cpu computes, sqrt(*sumsq) * inv_loss_scale (0 with sumsq NULL);
 * non-finite means every tensor's step is skipped. Shared with the NVMe swap-out, which then has
 * nothing new to write. */
float adamw_global_norm(const float *sumsq, float inv_loss_scale);

/* dst (type dst_dt) = src (type src_dt), n elements. */
void cast_cpu(void *dst, enum dtype dst_dt, const void *src, enum dtype src_dt, size_t n);

#endif
