/* gelu.c: GPT-2's tanh-approximate GELU as tasks. */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct gelu_args {
    size_t n;
    enum dtype dt;
};

static void gelu_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct gelu_args *a = cl_arg;
    rt_cpu_task_begin();
    gelu_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), a->n, a->dt);
}

static void gelu_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct gelu_args *a = cl_arg;
    gelu_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), a->n, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(gelu_forward);

void gelu_forward_insert(struct tensor *out, struct tensor *inp, int prio)
{
    struct gelu_args a = {out->n, (enum dtype)out->type};
    struct rt_buf bufs[] = {{out, RT_W}, {inp, RT_R}};
    rt_submit(CODELET(gelu_forward), "gelu_fwd", bufs, 2, &a, sizeof a, 0, prio, RT_WHERE_COMPUTE);
}

static void gelu_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct gelu_args *a = cl_arg;
    rt_cpu_task_begin();
    gelu_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->n, a->dt);
}

static void gelu_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct gelu_args *a = cl_arg;
    gelu_backward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->n, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(gelu_backward);

void gelu_backward_insert(struct tensor *dinp, struct tensor *inp, struct tensor *dout, int prio)
{
    struct gelu_args a = {dinp->n, (enum dtype)dinp->type};
    struct rt_buf bufs[] = {{dinp, RT_RW}, {inp, RT_R}, {dout, RT_R}};
    rt_submit(CODELET(gelu_backward), "gelu_bwd", bufs, 3, &a, sizeof a, 0, prio, RT_WHERE_COMPUTE);
}
