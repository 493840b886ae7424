/* crossentropy.c: the fused softmax cross-entropy over the unpadded vocabulary. The backward
 * overwrites the logits with their gradient, so the [N,Vp] buffer exists once. */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct crossentropy_args {
    int N, V, Vp;
    enum dtype dt;
    float dloss;
};

static void crossentropy_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct crossentropy_args *a = cl_arg;
    rt_cpu_task_begin();
    crossentropy_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->N, a->V, a->Vp, a->dt);
}

static void crossentropy_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct crossentropy_args *a = cl_arg;
    crossentropy_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->N, a->V, a->Vp, a->dt,
                              CUDA_STREAM());
}

CODELET_DEFINE(crossentropy_forward);

void crossentropy_forward_insert(struct tensor *losses, struct tensor *logits,
                                 struct tensor *targets, int N, int V, int Vp, int prio)
{
    struct crossentropy_args a = {N, V, Vp, (enum dtype)logits->type, 0};
    struct rt_buf bufs[] = {{losses, RT_W}, {logits, RT_R}, {targets, RT_R}};
    rt_submit(CODELET(crossentropy_forward), "crossentropy_fwd", bufs, 3, &a, sizeof a, 0, prio,
              RT_WHERE_COMPUTE);
}

static void crossentropy_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct crossentropy_args *a = cl_arg;
    rt_cpu_task_begin();
    crossentropy_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 0), RT_PTR(b, 1), a->dloss, a->N, a->V, a->Vp,
                              a->dt);
}

static void crossentropy_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct crossentropy_args *a = cl_arg;
    crossentropy_backward_cuda(RT_PTR(b, 0), RT_PTR(b, 0), RT_PTR(b, 1), a->dloss, a->N, a->V,
                               a->Vp, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(crossentropy_backward);

void crossentropy_backward_insert(struct tensor *logits, struct tensor *targets, float dloss, int N,
                                  int V, int Vp, int prio)
{
    struct crossentropy_args a = {N, V, Vp, (enum dtype)logits->type, dloss};
    struct rt_buf bufs[] = {{logits, RT_RW}, {targets, RT_R}};
    rt_submit(CODELET(crossentropy_backward), "crossentropy_bwd", bufs, 2, &a, sizeof a, 0, prio,
              RT_WHERE_COMPUTE);
}
