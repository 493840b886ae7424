/* sumsq.c: sum of squares of a gradient, into its own slot of a shared fp32 vector in any order
 * (STARPU_COMMUTE), and the sum of the slots in a fixed order: the global gradient norm for
 * clipping and the overflow check of fp16 loss scaling, without the host in the loop, and with
 * the same bits whatever order the gradients complete in (so in every optimizer tier). */
#include "check.h"
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct sumsq_args {
    size_t n;
    enum dtype dt;
    int has_scratch;
    int slot;
};

static void sumsq_cpu_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    rt_cpu_task_begin();
    sumsq_cpu((float *)RT_PTR(b, 0) + a->slot, RT_PTR(b, 1), a->n, a->dt);
}

static void sumsq_cuda_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    sumsq_cuda((float *)RT_PTR(b, 0) + a->slot, RT_PTR(b, 1), a->n, a->dt,
               a->has_scratch ? RT_PTR(b, 2) : NULL, CUDA_STREAM());
}

CODELET_DEFINE(sumsq);

void sumsq_insert(struct tensor *parts, int slot, struct tensor *grad, int prio)
{
    CHECK(parts->type == TENSOR_TYPE_FP32 && slot >= 0 && (size_t)slot < parts->n);
    struct tensor *scratch = rt_scratch(sumsq_cuda_scratch_bytes(grad->n));
    struct sumsq_args a = {grad->n, (enum dtype)grad->type, scratch != NULL, slot};
    struct rt_buf bufs[] = {{parts, RT_RW_COMMUTE}, {grad, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(&sumsq_cl, "sumsq", bufs, 3, &a, sizeof a, 2.0 * grad->n, prio, RT_WHERE_COMPUTE);
}

struct sum_args {
    size_t n;
};

static void sum_cpu_func(void *b[], void *cl_arg)
{
    const struct sum_args *a = cl_arg;
    rt_cpu_task_begin();
    sum_cpu(RT_PTR(b, 0), RT_PTR(b, 1), a->n);
}

static void sum_cuda_func(void *b[], void *cl_arg)
{
    const struct sum_args *a = cl_arg;
    sum_cuda(RT_PTR(b, 0), RT_PTR(b, 1), a->n, CUDA_STREAM());
}

CODELET_DEFINE(sum);

void sum_insert(struct tensor *out, struct tensor *parts, int prio)
{
    CHECK(out->type == TENSOR_TYPE_FP32 && parts->type == TENSOR_TYPE_FP32);
    struct sum_args a = {parts->n};
    struct rt_buf bufs[] = {{out, RT_W}, {parts, RT_R}};
    rt_submit(&sum_cl, "sum", bufs, 2, &a, sizeof a, (double)parts->n, prio, RT_WHERE_COMPUTE);
}
