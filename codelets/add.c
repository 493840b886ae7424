/* add.c: the residual connection (out = a + b). */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct add_args {
    size_t n;
    enum dtype dt;
};

static void add_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct add_args *a = cl_arg;
    rt_cpu_task_begin();
    add_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->n, a->dt);
}

static void add_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct add_args *a = cl_arg;
    add_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->n, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(add_forward);

void add_forward_insert(struct tensor *out, struct tensor *a, struct tensor *b, int prio)
{
    struct add_args args = {out->n, (enum dtype)out->type};
    struct rt_buf bufs[] = {{out, RT_W}, {a, RT_R}, {b, RT_R}};
    rt_submit(CODELET(add_forward), "add_fwd", bufs, 3, &args, sizeof args, 0, prio,
              RT_WHERE_COMPUTE);
}
