/* matmul.c: the linear layer out = inp . W^T + bias as tasks (BLAS on CPU, cuBLAS on GPU). */
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct matmul_args {
    int N, C, OC;
    enum dtype dt;
    int has_bias, has_scratch;
};

static void matmul_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    rt_cpu_task_begin();
    matmul_forward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2), a->has_bias ? RT_PTR(b, 3) : NULL,
                       a->N, a->C, a->OC, a->dt);
}

static void matmul_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    matmul_forward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), RT_PTR(b, 2),
                        a->has_bias ? RT_PTR(b, 3) : NULL, a->N, a->C, a->OC, a->dt, CUDA_STREAM());
}

CODELET_DEFINE(matmul_forward);

void matmul_forward_insert(struct tensor *out, struct tensor *inp, struct tensor *weight,
                           struct tensor *bias, int N, int C, int OC, int prio)
{
    struct matmul_args a = {N, C, OC, (enum dtype)out->type, bias != NULL, 0};
    struct rt_buf bufs[] = {{out, RT_W}, {inp, RT_R}, {weight, RT_R}, {bias, RT_R}};
    rt_submit(&matmul_forward_cl, "matmul_fwd", bufs, 4, &a, sizeof a, 2.0 * N * C * OC, prio,
              RT_WHERE_COMPUTE);
}

/* Buffers: dinp, dweight, [dbias], dout, inp, weight, [scratch]. */
static void matmul_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    rt_cpu_task_begin();
    matmul_backward_cpu(RT_PTR(b, 0), RT_PTR(b, 1), dbias, RT_PTR(b, i), RT_PTR(b, i + 1),
                        RT_PTR(b, i + 2), a->N, a->C, a->OC, a->dt);
}

static void matmul_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    void *scratch = a->has_scratch ? RT_PTR(b, i + 3) : NULL;
    matmul_backward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), dbias, RT_PTR(b, i),
                         RT_PTR(b, i + 1), RT_PTR(b, i + 2), a->N, a->C, a->OC, a->dt, scratch,
                         CUDA_STREAM());
}

CODELET_DEFINE(matmul_backward);

void matmul_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                            struct tensor *dout, struct tensor *inp, struct tensor *weight, int N,
                            int C, int OC, int prio)
{
    struct tensor *scratch = dbias ? rt_scratch(matmul_backward_cuda_scratch_bytes(N, OC)) : NULL;
    struct matmul_args a = {N, C, OC, (enum dtype)dout->type, dbias != NULL, scratch != NULL};
    struct rt_buf bufs[] = {{dinp, RT_RW}, {dweight, RT_RW}, {dbias, RT_RW},       {dout, RT_R},
                            {inp, RT_R},   {weight, RT_R},   {scratch, RT_SCRATCH}};
    rt_submit(&matmul_backward_cl, "matmul_bwd", bufs, 7, &a, sizeof a, 4.0 * N * C * OC, prio,
              RT_WHERE_COMPUTE);
}
