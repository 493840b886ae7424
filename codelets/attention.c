/* attention.c: causal multi-head self-attention as tasks, on flash attention's contract: the
 * forward keeps per-row statistics (stats, [B,NH,T,2] fp32) instead of the T x T probabilities,
 * and the backward recomputes those from qkv and stats.
 *
 * One codelet per direction, whose CPU and CUDA functions take the same buffers: on the CPU
 * flash_attention_*_cpu; on a GPU the fused flash kernels where they take the case
 * (flash_attention_cuda_supported: fp16/bf16, head size 64 or 128), else attention.cu's cuBLAS
 * path, which recomputes its chunks of T x T scores in scratch. Which CUDA path runs is decided at
 * submission (it sizes the scratch), the same for every task of a shape. */
#include <string.h>

#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct attention_args {
    int B, T, C, NH;
    enum dtype dt;
    int flash, has_scratch;
};

/* The args of a task on these sizes; flash only on CUDA workers, and only where it applies. */
static struct attention_args attention_args(int B, int T, int C, int NH, enum dtype dt)
{
    int flash = rt_device() == RT_DEVICE_CUDA && flash_attention_cuda_supported(C, NH, dt);
    return (struct attention_args){B, T, C, NH, dt, flash, 0};
}

/* Buffers: out, stats, qkv, [scratch]. */
static void attention_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    rt_cpu_task_begin();
    flash_attention_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->B, a->T, a->C, a->NH,
                                a->dt);
}

static void attention_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    if (a->flash)
        flash_attention_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->B, a->T, a->C,
                                     a->NH, a->dt, CUDA_STREAM());
    else
        attention_forward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->B,
                               a->T, a->C, a->NH, a->dt, RT_PTR(b, 3), CUDA_STREAM());
}

CODELET_DEFINE(attention_forward);

/* Two batched products of B*NH*T*T*hs multiply-adds each. */
static double attention_flops(int B, int T, int C)
{
    return 4.0 * B * T * (double)T * C;
}

void attention_forward_insert(struct tensor *out, struct tensor *stats, struct tensor *qkv, int B,
                              int T, int C, int NH, int prio)
{
    struct attention_args a = attention_args(B, T, C, NH, (enum dtype)out->type);
    struct tensor *scratch =
        a.flash ? NULL : rt_scratch(attention_forward_cuda_scratch_bytes(B, T, C, NH, a.dt));
    a.has_scratch = scratch != NULL;
    struct rt_buf bufs[] = {{out, RT_W}, {stats, RT_W}, {qkv, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(CODELET(attention_forward), "attention_fwd", bufs, 4, &a, sizeof a,
              attention_flops(B, T, C), prio, RT_WHERE_COMPUTE);
}

/* Buffers: dqkv, dout, qkv, out, stats, [scratch]. The task writes dqkv: the flash kernels
 * store it, the other paths add to it after a zero fill of their own. */
static size_t dqkv_bytes(const struct attention_args *a)
{
    return (size_t)a->B * a->T * 3 * a->C * dtype_size(a->dt);
}

static void attention_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    rt_cpu_task_begin();
    memset(RT_PTR(b, 0), 0, dqkv_bytes(a));
    flash_attention_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3),
                                 RT_PTR(b, 4), a->B, a->T, a->C, a->NH, a->dt);
}

static void attention_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    if (a->flash) {
        flash_attention_backward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3),
                                      RT_PTR(b, 4), a->B, a->T, a->C, a->NH, a->dt, 0,
                                      a->has_scratch ? RT_PTR(b, 5) : NULL, CUDA_STREAM());
    } else {
        zero_cuda(RT_PTR(b, 0), dqkv_bytes(a), CUDA_STREAM());
        attention_backward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2),
                                RT_PTR(b, 4), a->B, a->T, a->C, a->NH, a->dt, RT_PTR(b, 5),
                                CUDA_STREAM());
    }
}

CODELET_DEFINE(attention_backward);

void attention_backward_insert(struct tensor *dqkv, struct tensor *dout, struct tensor *qkv,
                               struct tensor *out, struct tensor *stats, int B, int T, int C,
                               int NH, int prio)
{
    struct attention_args a = attention_args(B, T, C, NH, (enum dtype)dout->type);
    size_t bytes = a.flash ? flash_attention_backward_cuda_scratch_bytes(B, T, C, NH, a.dt)
                           : attention_backward_cuda_scratch_bytes(B, T, C, NH, a.dt);
    struct tensor *scratch = rt_scratch(bytes);
    a.has_scratch = scratch != NULL;
    struct rt_buf bufs[] = {{dqkv, RT_W}, {dout, RT_R},  {qkv, RT_R},
                            {out, RT_R},  {stats, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(CODELET(attention_backward), "attention_bwd", bufs, 6, &a, sizeof a,
              2 * attention_flops(B, T, C), prio, RT_WHERE_COMPUTE);
}
