/* layernorm.c: LayerNorm as tasks; mean and rstd (fp32) carry from forward to backward. The
 * residual add before a LayerNorm can be the same task (add_layernorm_forward): one pass over the
 * rows instead of two; its backward is layernorm_backward's, which adds into the residual
 * stream's gradient. */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct layernorm_args {
    int N, C;
    enum dtype dt;
    int has_scratch;
};

static void layernorm_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    rt_cpu_task_begin();
    layernorm_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                          RT_PTR(b, 5), a->N, a->C, a->dt);
}

static void layernorm_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    layernorm_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                           RT_PTR(b, 5), a->N, a->C, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(layernorm_forward);

void layernorm_forward_insert(struct tensor *out, struct tensor *mean, struct tensor *rstd,
                              struct tensor *inp, struct tensor *weight, struct tensor *bias, int N,
                              int C, int prio)
{
    struct layernorm_args a = {N, C, (enum dtype)out->type, 0};
    struct rt_buf bufs[] = {{out, RT_W}, {mean, RT_W},   {rstd, RT_W},
                            {inp, RT_R}, {weight, RT_R}, {bias, RT_R}};
    rt_submit(CODELET(layernorm_forward), "layernorm_fwd", bufs, 6, &a, sizeof a, 8.0 * N * C, prio,
              RT_WHERE_COMPUTE);
}

/* Buffers: res, out, mean, rstd, a, b, weight, bias. */
static void add_layernorm_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    rt_cpu_task_begin();
    add_layernorm_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                              RT_PTR(b, 5), RT_PTR(b, 6), RT_PTR(b, 7), a->N, a->C, a->dt);
}

static void add_layernorm_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    add_layernorm_forward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                               RT_PTR(b, 5), RT_PTR(b, 6), RT_PTR(b, 7), a->N, a->C, a->dt,
                               CUDA_STREAM());
}

CODELET_DEFINE(add_layernorm_forward);

/* The CUDA kernel holds a row in registers: up to 16384 channels whatever the dtype and alignment
 * (kernels_cuda.h); wider rows take the add and the LayerNorm as two tasks. */
#define ADD_LAYERNORM_MAX_C 16384

void add_layernorm_forward_insert(struct tensor *res, struct tensor *out, struct tensor *mean,
                                  struct tensor *rstd, struct tensor *a, struct tensor *b,
                                  struct tensor *weight, struct tensor *bias, int N, int C,
                                  int prio)
{
    if (C > ADD_LAYERNORM_MAX_C) {
        add_forward_insert(res, a, b, prio);
        layernorm_forward_insert(out, mean, rstd, res, weight, bias, N, C, prio);
        return;
    }
    struct layernorm_args args = {N, C, (enum dtype)out->type, 0};
    struct rt_buf bufs[] = {{res, RT_W}, {out, RT_W}, {mean, RT_W},   {rstd, RT_W},
                            {a, RT_R},   {b, RT_R},   {weight, RT_R}, {bias, RT_R}};
    rt_submit(CODELET(add_layernorm_forward), "add_layernorm_fwd", bufs, 8, &args, sizeof args,
              9.0 * N * C, prio, RT_WHERE_COMPUTE);
}

static void layernorm_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    rt_cpu_task_begin();
    layernorm_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                           RT_PTR(b, 5), RT_PTR(b, 6), RT_PTR(b, 7), a->N, a->C, a->dt);
}

static void layernorm_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct layernorm_args *a = cl_arg;
    layernorm_backward_cuda(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), RT_PTR(b, 3), RT_PTR(b, 4),
                            RT_PTR(b, 5), RT_PTR(b, 6), RT_PTR(b, 7), a->N, a->C, a->dt,
                            a->has_scratch ? RT_PTR(b, 8) : NULL, CUDA_STREAM());
}

CODELET_DEFINE(layernorm_backward);

void layernorm_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                               struct tensor *dout, struct tensor *inp, struct tensor *weight,
                               struct tensor *mean, struct tensor *rstd, int N, int C, int prio)
{
    struct tensor *scratch = rt_scratch(layernorm_backward_cuda_scratch_bytes(N, C));
    struct layernorm_args a = {N, C, (enum dtype)dout->type, scratch != NULL};
    struct rt_buf bufs[] = {{dinp, RT_RW}, {dweight, RT_RW}, {dbias, RT_RW},
                            {dout, RT_R},  {inp, RT_R},      {weight, RT_R},
                            {mean, RT_R},  {rstd, RT_R},     {scratch, RT_SCRATCH}};
    rt_submit(CODELET(layernorm_backward), "layernorm_bwd", bufs, 9, &a, sizeof a, 12.0 * N * C,
              prio, 0);
}
