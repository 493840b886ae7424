/* encoder.c: token + position embedding as tasks (forward writes the residual stream, backward
 * accumulates into the embedding tables' gradients). */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct encoder_args {
    int B, T, C;
    enum dtype dt;
};

static void encoder_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct encoder_args *a = cl_arg;
    rt_cpu_task_begin();
    encoder_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), a->B, a->T, a->C,
                        a->dt);
}

static void encoder_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct encoder_args *a = cl_arg;
    encoder_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), a->B, a->T, a->C,
                         a->dt, CUDA_STREAM());
}

CODELET_DEFINE(encoder_forward);

void encoder_forward_insert(struct tensor *out, struct tensor *tokens, struct tensor *wte,
                            struct tensor *wpe, int B, int T, int C, int prio)
{
    struct encoder_args a = {B, T, C, (enum dtype)out->type};
    struct rt_buf bufs[] = {{out, RT_W}, {tokens, RT_R}, {wte, RT_R}, {wpe, RT_R}};
    rt_submit(CODELET(encoder_forward), "encoder_fwd", bufs, 4, &a, sizeof a, 0, prio,
              RT_WHERE_COMPUTE);
}

static void encoder_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct encoder_args *a = cl_arg;
    rt_cpu_task_begin();
    encoder_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), a->B, a->T, a->C,
                         a->dt);
}

static void encoder_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct encoder_args *a = cl_arg;
    encoder_backward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), a->B, a->T, a->C,
                          a->dt, CUDA_STREAM());
}

CODELET_DEFINE(encoder_backward);

void encoder_backward_insert(struct tensor *dwte, struct tensor *dwpe, struct tensor *dout,
                             struct tensor *tokens, int B, int T, int C, int prio)
{
    struct encoder_args a = {B, T, C, (enum dtype)dout->type};
    struct rt_buf bufs[] = {{dwte, RT_RW}, {dwpe, RT_RW}, {dout, RT_R}, {tokens, RT_R}};
    rt_submit(CODELET(encoder_backward), "encoder_bwd", bufs, 4, &a, sizeof a, 0, prio,
              RT_WHERE_COMPUTE);
}
