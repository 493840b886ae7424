/* sumsq.c: sum of squares of a gradient, added to a shared fp32 accumulator in any order
 * (STARPU_COMMUTE): the global gradient norm for clipping and the overflow check of fp16 loss
 * scaling, without the host in the loop. */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct sumsq_args {
    size_t n;
    enum dtype dt;
    int has_scratch;
};

static void sumsq_cpu_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    rt_cpu_task_begin();
    sumsq_cpu(RT_PTR(b, 0), RT_PTR(b, 1), a->n, a->dt);
}

static void sumsq_cuda_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    sumsq_cuda(RT_PTR(b, 0), RT_PTR(b, 1), a->n, a->dt, a->has_scratch ? RT_PTR(b, 2) : NULL,
               CUDA_STREAM());
}

CODELET_DEFINE(sumsq);

void sumsq_insert(struct tensor *acc, struct tensor *grad, int prio)
{
    struct tensor *scratch = rt_scratch(sumsq_cuda_scratch_bytes(grad->n));
    struct sumsq_args a = {grad->n, (enum dtype)grad->type, scratch != NULL};
    struct rt_buf bufs[] = {{acc, RT_RW_COMMUTE}, {grad, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(&sumsq_cl, "sumsq", bufs, 3, &a, sizeof a, 2.0 * grad->n, prio, RT_WHERE_COMPUTE);
}
