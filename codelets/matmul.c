/* matmul.c: the linear layer out = inp . W^T + bias as tasks (BLAS on CPU, cuBLAS on GPU).
 *
 * A layer whose weight was split by tensor_tiles (memory-centric tiling, ZeRO-Infinity's
 * technique 4) becomes one task per tile of output channels: tile t reads weight rows and bias
 * entries [o0, o1) and writes columns [o0, o1) of out, a column block whose rows are OC apart,
 * so each task holds only its tile of the weight. The backward tiles all add into the whole dinp:
 * they are submitted in tile order with dinp read-write, so the sum runs in that fixed order. In
 * fp16/bf16 they add into an fp32 accumulator instead (dinp widened into it first, rounded back
 * once at the end), so dinp is rounded once, as the untiled layer's GEMM rounds it. A backward
 * that sets dinp (MATMUL_SET_DINP) lets the first tile write it, or the accumulator, and the
 * others add; one that sets dweight writes every tile of it: those buffers are then write-only
 * for StarPU, and the graph needs no zero fill before them. A write-only buffer must be defined
 * to its last byte: a gathered full gradient of several ranks is longer than its weight (each
 * rank's shard padded to 4 KiB), and the task that sets it also zeroes that tail, which the
 * reduce-scatter sums into the last shard's padding and the gradient norm reads. */
#include <string.h>

#include "check.h"
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"

struct matmul_args {
    int N, C, OC; /* OC: this task's output channels */
    int ldo;      /* the layer's output channels: row stride of out/dout */
    size_t o0;    /* this task's first column of out/dout */
    enum dtype dt;
    int has_bias, has_scratch;
    enum dtype dinp_dt; /* dt, or fp32 for a tiled layer's accumulator */
    size_t head;        /* bytes of the scratch buffer before cuBLASLt's workspace */
    int has_pre;        /* the fused MLP forms: pre (forward), dbias_pre (backward) given */
    unsigned set;       /* backward: the matmul_set bits of this task */
};

/* A task's STARPU_SCRATCH buffer: `bytes` of the kernel's own, rounded up to 256, then cuBLASLt's
 * workspace; NULL without a GPU. *head receives the offset of the workspace. */
static struct tensor *gemm_scratch(size_t bytes, size_t *head)
{
    *head = (bytes + 255) & ~(size_t)255;
    return rt_scratch(*head + MATMUL_CUDA_WORKSPACE_BYTES);
}

/* The kernel's scratch (NULL when it has none) and the workspace in buffer i of a task. */
static void *kernel_scratch(void *b[], int i, const struct matmul_args *a)
{
    return a->has_scratch && a->head ? RT_PTR(b, i) : NULL;
}
static void *workspace(void *b[], int i, const struct matmul_args *a)
{
    return a->has_scratch ? (char *)RT_PTR(b, i) + a->head : NULL;
}
#define WORKSPACE_BYTES(a) ((a)->has_scratch ? MATMUL_CUDA_WORKSPACE_BYTES : 0)

/* out/dout of a task: the tile's first column. */
static void *out_cols(void *b[], int i, const struct matmul_args *a)
{
    return (char *)RT_PTR(b, i) + a->o0 * dtype_size(a->dt);
}

/* With MATMUL_SET_DWEIGHT, the bytes of dweight's buffer past the OC x C weight gradient (the
 * padding of a full gradient of several ranks) as zeros: in the CPU task, or on the CUDA worker's
 * stream after the product. */
static void zero_dweight_tail(void *b[], const struct matmul_args *a, int cuda)
{
    size_t used = (size_t)a->OC * a->C * dtype_size(a->dt);
    size_t bytes = STARPU_VECTOR_GET_NX(b[1]) * STARPU_VECTOR_GET_ELEMSIZE(b[1]);
    if (!(a->set & MATMUL_SET_DWEIGHT) || bytes <= used) return;
    if (cuda)
        zero_cuda((char *)RT_PTR(b, 1) + used, bytes - used, CUDA_STREAM());
    else
        memset((char *)RT_PTR(b, 1) + used, 0, bytes - used);
}

/* Tile i of t, or t itself when it is not split; NULL stays NULL. */
static struct tensor *tile_of(struct tensor *t, int i)
{
    return t && tensor_compute_tiles(t) ? &t->tiles[i] : t;
}

static void matmul_forward_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    rt_cpu_task_begin();
    matmul_forward_cpu(out_cols(b, 0, a), RT_PTR(b, 1), RT_PTR(b, 2),
                       a->has_bias ? RT_PTR(b, 3) : NULL, a->N, a->C, a->OC, a->ldo, a->dt);
}

/* Buffers: out, inp, weight, [bias], [scratch]. */
static void matmul_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 3 + a->has_bias;
    matmul_forward_ws_cuda(CUBLAS_HANDLE(), out_cols(b, 0, a), RT_PTR(b, 1), RT_PTR(b, 2),
                           a->has_bias ? RT_PTR(b, 3) : NULL, a->N, a->C, a->OC, a->ldo, a->dt,
                           workspace(b, i, a), WORKSPACE_BYTES(a), CUDA_STREAM());
}

CODELET_DEFINE(matmul_forward);

/* Output channels of tile w of weight: its rows when tiled, else OC (a ZeRO-3 rank's full buffer
 * may be longer than the weight: the shards' padding). */
static int tile_rows(const struct tensor *weight, const struct tensor *w, int C, int OC)
{
    return tensor_compute_tiles(weight) ? (int)(w->n / C) : OC;
}

void matmul_forward_insert(struct tensor *out, struct tensor *inp, struct tensor *weight,
                           struct tensor *bias, int N, int C, int OC, int prio)
{
    int ntiles = tensor_compute_tiles(weight) ? tensor_compute_tiles(weight) : 1;
    CHECK_MSG(!bias || tensor_compute_tiles(bias) == tensor_compute_tiles(weight),
              "bias and weight tiled differently");
    size_t head;
    struct tensor *scratch = gemm_scratch(0, &head);
    for (int t = 0; t < ntiles; t++) {
        struct tensor *w = tile_of(weight, t);
        struct matmul_args a = {.N = N,
                                .C = C,
                                .OC = tile_rows(weight, w, C, OC),
                                .ldo = OC,
                                .o0 = w->offset / C,
                                .dt = (enum dtype)out->type,
                                .has_bias = bias != NULL,
                                .has_scratch = scratch != NULL,
                                .dinp_dt = (enum dtype)out->type,
                                .head = head};
        struct rt_buf bufs[] = {{out, t == 0 ? RT_W : RT_RW},
                                {inp, RT_R},
                                {w, RT_R},
                                {tile_of(bias, t), RT_R},
                                {scratch, RT_SCRATCH}};
        rt_submit(CODELET(matmul_forward), "matmul_fwd", bufs, 5, &a, sizeof a, 2.0 * N * C * a.OC,
                  prio, RT_WHERE_COMPUTE);
    }
}

/* Buffers: dinp, dweight, [dbias], dout, inp, weight, [scratch]. */
static void matmul_backward_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    rt_cpu_task_begin();
    matmul_backward_cpu(RT_PTR(b, 0), a->dinp_dt, RT_PTR(b, 1), dbias, out_cols(b, i, a),
                        RT_PTR(b, i + 1), RT_PTR(b, i + 2), a->N, a->C, a->OC, a->ldo, a->dt,
                        a->set);
    zero_dweight_tail(b, a, 0);
}

static void matmul_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    matmul_backward_ws_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), a->dinp_dt, RT_PTR(b, 1), dbias,
                            out_cols(b, i, a), RT_PTR(b, i + 1), RT_PTR(b, i + 2), a->N, a->C,
                            a->OC, a->ldo, a->dt, a->set, kernel_scratch(b, i + 3, a),
                            workspace(b, i + 3, a), WORKSPACE_BYTES(a), CUDA_STREAM());
    zero_dweight_tail(b, a, 1);
}

CODELET_DEFINE(matmul_backward);

void matmul_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                            struct tensor *dout, struct tensor *inp, struct tensor *weight, int N,
                            int C, int OC, struct tensor *acc, unsigned set, int prio)
{
    int ntiles = tensor_compute_tiles(weight) ? tensor_compute_tiles(weight) : 1;
    struct tensor *sum = dinp;
    if (ntiles > 1 && acc && dinp->type != TENSOR_TYPE_FP32) {
        CHECK_MSG(acc->type == TENSOR_TYPE_FP32 && acc->n == dinp->n,
                  "matmul_backward: the accumulator must be fp32 and dinp's size");
        if (!(set & MATMUL_SET_DINP)) cast_insert(acc, dinp, prio, RT_WHERE_COMPUTE);
        sum = acc;
    }
    CHECK_MSG(tensor_compute_tiles(dweight) == tensor_compute_tiles(weight) &&
                  (!dbias || tensor_compute_tiles(dbias) == tensor_compute_tiles(weight)),
              "gradients and weight tiled differently");
    for (int t = 0; t < ntiles; t++) {
        struct tensor *w = tile_of(weight, t);
        int oc = tile_rows(weight, w, C, OC);
        size_t head;
        struct tensor *scratch =
            gemm_scratch(dbias ? matmul_backward_cuda_scratch_bytes(N, oc) : 0, &head);
        struct matmul_args a = {.N = N,
                                .C = C,
                                .OC = oc,
                                .ldo = OC,
                                .o0 = w->offset / C,
                                .dt = (enum dtype)dout->type,
                                .has_bias = dbias != NULL,
                                .has_scratch = scratch != NULL,
                                .dinp_dt = (enum dtype)sum->type,
                                .head = head,
                                .set = set & (t == 0 ? ~0u : ~(unsigned)MATMUL_SET_DINP)};
        struct rt_buf bufs[] = {{sum, a.set & MATMUL_SET_DINP ? RT_W : RT_RW},
                                {tile_of(dweight, t), a.set & MATMUL_SET_DWEIGHT ? RT_W : RT_RW},
                                {tile_of(dbias, t), RT_RW},
                                {dout, RT_R},
                                {inp, RT_R},
                                {w, RT_R},
                                {scratch, RT_SCRATCH}};
        rt_submit(CODELET(matmul_backward), "matmul_bwd", bufs, 7, &a, sizeof a, 4.0 * N * C * oc,
                  prio, RT_WHERE_COMPUTE);
    }
    if (sum != dinp) cast_insert(dinp, sum, prio, RT_WHERE_COMPUTE);
}

/* Buffers: out, [pre], inp, weight, [bias], [scratch]. */
static void matmul_forward_gelu_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 1 + a->has_pre;
    rt_cpu_task_begin();
    matmul_forward_gelu_cpu(RT_PTR(b, 0), a->has_pre ? RT_PTR(b, 1) : NULL, RT_PTR(b, i),
                            RT_PTR(b, i + 1), a->has_bias ? RT_PTR(b, i + 2) : NULL, a->N, a->C,
                            a->OC, a->dt);
}

static void matmul_forward_gelu_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 1 + a->has_pre, s = i + 2 + a->has_bias;
    matmul_forward_gelu_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), a->has_pre ? RT_PTR(b, 1) : NULL,
                             RT_PTR(b, i), RT_PTR(b, i + 1), a->has_bias ? RT_PTR(b, i + 2) : NULL,
                             a->N, a->C, a->OC, a->OC, a->dt, workspace(b, s, a),
                             WORKSPACE_BYTES(a), CUDA_STREAM());
}

CODELET_DEFINE(matmul_forward_gelu);

void matmul_forward_gelu_insert(struct tensor *out, struct tensor *pre, struct tensor *inp,
                                struct tensor *weight, struct tensor *bias, int N, int C, int OC,
                                int prio)
{
    CHECK_MSG(!tensor_compute_tiles(weight), "matmul_forward_gelu_insert: a tiled layer");
    size_t head;
    struct tensor *scratch = gemm_scratch(0, &head);
    struct matmul_args a = {.N = N,
                            .C = C,
                            .OC = OC,
                            .ldo = OC,
                            .dt = (enum dtype)out->type,
                            .has_bias = bias != NULL,
                            .has_scratch = scratch != NULL,
                            .dinp_dt = (enum dtype)out->type,
                            .head = head,
                            .has_pre = pre != NULL};
    struct rt_buf bufs[] = {{out, RT_W},    {pre, RT_W},  {inp, RT_R},
                            {weight, RT_R}, {bias, RT_R}, {scratch, RT_SCRATCH}};
    rt_submit(CODELET(matmul_forward_gelu), "matmul_gelu_fwd", bufs, 6, &a, sizeof a,
              2.0 * N * C * OC, prio, RT_WHERE_COMPUTE);
}

/* Buffers: dpre, dweight, [dbias], [dbias_pre], dout, inp, weight, pre, [scratch]. */
static void matmul_backward_dgelu_cpu_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    void *dbias_pre = a->has_pre ? RT_PTR(b, i++) : NULL;
    rt_cpu_task_begin();
    matmul_backward_dgelu_cpu(RT_PTR(b, 0), RT_PTR(b, 1), dbias, dbias_pre, RT_PTR(b, i),
                              RT_PTR(b, i + 1), RT_PTR(b, i + 2), RT_PTR(b, i + 3), a->N, a->C,
                              a->OC, a->dt, a->set);
    zero_dweight_tail(b, a, 0);
}

static void matmul_backward_dgelu_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    void *dbias_pre = a->has_pre ? RT_PTR(b, i++) : NULL;
    matmul_backward_dgelu_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), RT_PTR(b, 1), dbias, dbias_pre,
                               RT_PTR(b, i), RT_PTR(b, i + 1), RT_PTR(b, i + 2), RT_PTR(b, i + 3),
                               a->N, a->C, a->OC, a->dt, a->set, kernel_scratch(b, i + 4, a),
                               workspace(b, i + 4, a), WORKSPACE_BYTES(a), CUDA_STREAM());
    zero_dweight_tail(b, a, 1);
}

CODELET_DEFINE(matmul_backward_dgelu);

void matmul_backward_dgelu_insert(struct tensor *dpre, struct tensor *dweight, struct tensor *dbias,
                                  struct tensor *dbias_pre, struct tensor *dout, struct tensor *inp,
                                  struct tensor *weight, struct tensor *pre, int N, int C, int OC,
                                  unsigned set, int prio)
{
    CHECK_MSG(!tensor_compute_tiles(weight), "matmul_backward_dgelu_insert: a tiled layer");
    size_t head;
    struct tensor *scratch = gemm_scratch(
        dbias || dbias_pre ? matmul_backward_dgelu_cuda_scratch_bytes(N, C, OC) : 0, &head);
    struct matmul_args a = {.N = N,
                            .C = C,
                            .OC = OC,
                            .ldo = OC,
                            .dt = (enum dtype)dout->type,
                            .has_bias = dbias != NULL,
                            .has_scratch = scratch != NULL,
                            .dinp_dt = (enum dtype)dout->type,
                            .head = head,
                            .has_pre = dbias_pre != NULL,
                            .set = set & MATMUL_SET_DWEIGHT};
    struct rt_buf bufs[] = {{dpre, RT_W},         {dweight, a.set ? RT_W : RT_RW},
                            {dbias, RT_RW},       {dbias_pre, RT_RW},
                            {dout, RT_R},         {inp, RT_R},
                            {weight, RT_R},       {pre, RT_R},
                            {scratch, RT_SCRATCH}};
    rt_submit(CODELET(matmul_backward_dgelu), "matmul_dgelu_bwd", bufs, 9, &a, sizeof a,
              4.0 * N * C * OC, prio, RT_WHERE_COMPUTE);
}
