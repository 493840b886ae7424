/* sumsq.c: sum of squares of a gradient, into its own slot of a shared fp32 vector in any order
 * (STARPU_COMMUTE), and the sum of the slots in a fixed order: the global gradient norm for
 * clipping and the overflow check of fp16 loss scaling, without the host in the loop, and with
 * the same bits whatever order the gradients complete in (so in every optimizer tier). */
#include "check.h"
#include "codelet_def.h"
#include "codelets.h"
#include "cuda_scratch.h"
#include "kernels_cuda.h"

/* One task does the sums of squares of up to SUMSQ_MAX gradients (a layer's) into their slots:
 * on a GPU in two launches for all of them (sumsq_multi_cuda), each slot with the bits of one
 * task per gradient. */
#define SUMSQ_MAX SUMSQ_MULTI_MAX
struct sumsq_args {
    int n, slot; /* gradients, and the first one's slot */
    int has_scratch;
    enum dtype dt;
    size_t elems[SUMSQ_MAX];
};

/* Buffers: parts, grads[0..n), [scratch]. */
static void sumsq_cpu_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    rt_cpu_task_begin();
    for (int i = 0; i < a->n; i++)
        sumsq_cpu((float *)RT_PTR(b, 0) + a->slot + i, RT_PTR(b, 1 + i), a->elems[i], a->dt);
}

static void sumsq_cuda_func(void *b[], void *cl_arg)
{
    const struct sumsq_args *a = cl_arg;
    const void *grads[SUMSQ_MAX];
    for (int i = 0; i < a->n; i++)
        grads[i] = RT_PTR(b, 1 + i);
    sumsq_multi_cuda((float *)RT_PTR(b, 0) + a->slot, grads, a->elems, a->n, a->dt,
                     a->has_scratch ? RT_PTR(b, 1 + a->n) : NULL, CUDA_STREAM());
}

CODELET_DEFINE(sumsq);

void sumsq_insert(struct tensor *parts, int slot, struct tensor *const *grads, int n, int prio)
{
    CHECK(parts->type == TENSOR_TYPE_FP32 && slot >= 0 && (size_t)slot + n <= parts->n);
    for (int first = 0; first < n; first += SUMSQ_MAX) {
        struct sumsq_args a = {n - first < SUMSQ_MAX ? n - first : SUMSQ_MAX,
                               slot + first,
                               0,
                               (enum dtype)grads[first]->type,
                               {0}};
        struct rt_buf bufs[SUMSQ_MAX + 2] = {{parts, RT_RW_COMMUTE}};
        size_t total = 0;
        for (int i = 0; i < a.n; i++) {
            struct tensor *g = grads[first + i];
            CHECK(g->type == grads[first]->type);
            a.elems[i] = g->n;
            total += g->n;
            bufs[1 + i] = (struct rt_buf){g, RT_R};
        }
        struct tensor *scratch = rt_scratch(sumsq_multi_cuda_scratch_bytes(a.elems, a.n));
        a.has_scratch = scratch != NULL;
        bufs[1 + a.n] = (struct rt_buf){scratch, RT_SCRATCH};
        rt_submit(CODELET(sumsq), "sumsq", bufs, a.n + 2, &a, sizeof a, 2.0 * total, prio,
                  RT_WHERE_COMPUTE);
    }
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
    rt_submit(CODELET(sum), "sum", bufs, 2, &a, sizeof a, (double)parts->n, prio, RT_WHERE_COMPUTE);
}
