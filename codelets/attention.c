/* attention.c: causal multi-head self-attention as tasks. The forward keeps the softmax
 * probabilities (att, [B,NH,T,T]) for the backward; with activation checkpointing both are
 * recomputed per layer, so only one layer's att is alive at a time. */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct attention_args {
    int B, T, C, NH;
    enum dtype dt;
    int has_scratch;
};

static void attention_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    rt_cpu_task_begin();
    attention_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->B, a->T, a->C, a->NH, a->dt);
}

static void attention_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    attention_forward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->B, a->T,
                           a->C, a->NH, a->dt, a->has_scratch ? RT_PTR(b, 3) : NULL, CUDA_STREAM());
}

CODELET_DEFINE(attention_forward);

/* Two batched products of B*NH*T*T*hs multiply-adds each. */
static double attention_flops(int B, int T, int C)
{
    return 4.0 * B * T * (double)T * C;
}

void attention_forward_insert(struct tensor *out, struct tensor *att, struct tensor *qkv, int B,
                              int T, int C, int NH, int prio)
{
    enum dtype dt = (enum dtype)out->type;
    struct tensor *scratch = rt_scratch(attention_forward_cuda_scratch_bytes(B, T, C, NH, dt));
    struct attention_args a = {B, T, C, NH, dt, scratch != NULL};
    struct rt_buf bufs[] = {{out, RT_W}, {att, RT_W}, {qkv, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(&attention_forward_cl, "attention_fwd", bufs, 4, &a, sizeof a,
              attention_flops(B, T, C), prio, RT_WHERE_COMPUTE);
}

static void attention_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    rt_cpu_task_begin();
    attention_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), a->B, a->T, a->C,
                           a->NH, a->dt);
}

static void attention_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct attention_args *a = cl_arg;
    attention_backward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3),
                            a->B, a->T, a->C, a->NH, a->dt, a->has_scratch ? RT_PTR(b, 4) : NULL,
                            CUDA_STREAM());
}

CODELET_DEFINE(attention_backward);

void attention_backward_insert(struct tensor *dqkv, struct tensor *dout, struct tensor *qkv,
                               struct tensor *att, int B, int T, int C, int NH, int prio)
{
    enum dtype dt = (enum dtype)dout->type;
    struct tensor *scratch = rt_scratch(attention_backward_cuda_scratch_bytes(B, T, C, NH, dt));
    struct attention_args a = {B, T, C, NH, dt, scratch != NULL};
    struct rt_buf bufs[] = {
        {dqkv, RT_RW}, {dout, RT_R}, {qkv, RT_R}, {att, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(&attention_backward_cl, "attention_bwd", bufs, 5, &a, sizeof a,
              2 * attention_flops(B, T, C), prio, RT_WHERE_COMPUTE);
}
