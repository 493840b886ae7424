/* cast.c: element type conversion (fp32 master weights to fp16/bf16 compute copies) and the
 * zero fill that starts every gradient accumulation. */
#include <string.h>

#include "codelet_def.h"
#include "check.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct cast_args {
    size_t n;
    enum dtype dst_dt, src_dt;
};

static void cast_cpu_func(void *b[], void *cl_arg)
{
    const struct cast_args *a = cl_arg;
    rt_cpu_task_begin();
    cast_cpu(RT_PTR(b, 0), a->dst_dt, RT_PTR(b, 1), a->src_dt, a->n);
}

static void cast_cuda_func(void *b[], void *cl_arg)
{
    const struct cast_args *a = cl_arg;
    cast_cuda(RT_PTR(b, 0), a->dst_dt, RT_PTR(b, 1), a->src_dt, a->n, CUDA_STREAM());
}

CODELET_DEFINE(cast);

void cast_insert(struct tensor *dst, struct tensor *src, int prio, enum rt_where where)
{
    CHECK(dst->n == src->n);
    struct cast_args a = {dst->n, (enum dtype)dst->type, (enum dtype)src->type};
    struct rt_buf bufs[] = {{dst, RT_W}, {src, RT_R}};
    rt_submit(CODELET(cast), "cast", bufs, 2, &a, sizeof a, 0, prio, where);
}

/* Buffers: the tensors to clear, one or several (a layer's gradients: one task, not twelve). */
#define ZERO_MAX 16
struct zero_args {
    int n;
    size_t bytes[ZERO_MAX];
};

static void zero_cpu_func(void *b[], void *cl_arg)
{
    const struct zero_args *a = cl_arg;
    for (int i = 0; i < a->n; i++)
        memset(RT_PTR(b, i), 0, a->bytes[i]);
}

static void zero_cuda_func(void *b[], void *cl_arg)
{
    const struct zero_args *a = cl_arg;
    for (int i = 0; i < a->n; i++)
        zero_cuda(RT_PTR(b, i), a->bytes[i], CUDA_STREAM());
}

CODELET_DEFINE(zero);

void zero_all_insert(struct tensor *const *ts, int n, int prio)
{
    for (int first = 0; first < n; first += ZERO_MAX) {
        struct zero_args a = {n - first < ZERO_MAX ? n - first : ZERO_MAX, {0}};
        struct rt_buf bufs[ZERO_MAX];
        for (int i = 0; i < a.n; i++) {
            a.bytes[i] = tensor_bytes(ts[first + i]);
            bufs[i] = (struct rt_buf){ts[first + i], RT_W};
        }
        rt_submit(CODELET(zero), "zero", bufs, a.n, &a, sizeof a, 0, prio, RT_WHERE_COMPUTE);
    }
}

void zero_insert(struct tensor *t, int prio)
{
    zero_all_insert(&t, 1, prio);
}
