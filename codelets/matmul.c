/* matmul.c: the linear layer out = inp . W^T + bias as tasks (BLAS on CPU, cuBLAS on GPU).
 *
 * A layer whose weight was split by tensor_tiles (memory-centric tiling, ZeRO-Infinity's
 * technique 4) becomes one task per tile of output channels: tile t reads weight rows and bias
 * entries [o0, o1) and writes columns [o0, o1) of out, a column block whose rows are OC apart,
 * so each task holds only its tile of the weight. The backward tiles all add into the whole dinp:
 * they are submitted in tile order with dinp read-write, so the sum runs in that fixed order. In
 * fp16/bf16 they add into an fp32 accumulator instead (dinp widened into it first, rounded back
 * once at the end), so dinp is rounded once, as the untiled layer's GEMM rounds it. */
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
};

/* out/dout of a task: the tile's first column. */
static void *out_cols(void *b[], int i, const struct matmul_args *a)
{
    return (char *)RT_PTR(b, i) + a->o0 * dtype_size(a->dt);
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

static void matmul_forward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    matmul_forward_cuda(CUBLAS_HANDLE(), out_cols(b, 0, a), RT_PTR(b, 1), RT_PTR(b, 2),
                        a->has_bias ? RT_PTR(b, 3) : NULL, a->N, a->C, a->OC, a->ldo, a->dt,
                        CUDA_STREAM());
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
    for (int t = 0; t < ntiles; t++) {
        struct tensor *w = tile_of(weight, t);
        struct matmul_args a = {N,
                                C,
                                tile_rows(weight, w, C, OC),
                                OC,
                                w->offset / C,
                                (enum dtype)out->type,
                                bias != NULL,
                                0,
                                (enum dtype)out->type};
        struct rt_buf bufs[] = {
            {out, t == 0 ? RT_W : RT_RW}, {inp, RT_R}, {w, RT_R}, {tile_of(bias, t), RT_R}};
        rt_submit(&matmul_forward_cl, "matmul_fwd", bufs, 4, &a, sizeof a, 2.0 * N * C * a.OC, prio,
                  RT_WHERE_COMPUTE);
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
                        RT_PTR(b, i + 1), RT_PTR(b, i + 2), a->N, a->C, a->OC, a->ldo, a->dt);
}

static void matmul_backward_cuda_func(void *b[], void *cl_arg)
{
    const struct matmul_args *a = cl_arg;
    int i = 2;
    void *dbias = a->has_bias ? RT_PTR(b, i++) : NULL;
    void *scratch = a->has_scratch ? RT_PTR(b, i + 3) : NULL;
    matmul_backward_cuda(CUBLAS_HANDLE(), RT_PTR(b, 0), a->dinp_dt, RT_PTR(b, 1), dbias,
                         out_cols(b, i, a), RT_PTR(b, i + 1), RT_PTR(b, i + 2), a->N, a->C, a->OC,
                         a->ldo, a->dt, scratch, CUDA_STREAM());
}

CODELET_DEFINE(matmul_backward);

void matmul_backward_insert(struct tensor *dinp, struct tensor *dweight, struct tensor *dbias,
                            struct tensor *dout, struct tensor *inp, struct tensor *weight, int N,
                            int C, int OC, struct tensor *acc, int prio)
{
    int ntiles = tensor_compute_tiles(weight) ? tensor_compute_tiles(weight) : 1;
    struct tensor *sum = dinp;
    if (ntiles > 1 && acc && dinp->type != TENSOR_TYPE_FP32) {
        CHECK_MSG(acc->type == TENSOR_TYPE_FP32 && acc->n == dinp->n,
                  "matmul_backward: the accumulator must be fp32 and dinp's size");
        cast_insert(acc, dinp, prio, RT_WHERE_COMPUTE);
        sum = acc;
    }
    CHECK_MSG(tensor_compute_tiles(dweight) == tensor_compute_tiles(weight) &&
                  (!dbias || tensor_compute_tiles(dbias) == tensor_compute_tiles(weight)),
              "gradients and weight tiled differently");
    for (int t = 0; t < ntiles; t++) {
        struct tensor *w = tile_of(weight, t);
        int oc = tile_rows(weight, w, C, OC);
        struct tensor *scratch =
            dbias ? rt_scratch(matmul_backward_cuda_scratch_bytes(N, oc)) : NULL;
        struct matmul_args a = {N,
                                C,
                                oc,
                                OC,
                                w->offset / C,
                                (enum dtype)dout->type,
                                dbias != NULL,
                                scratch != NULL,
                                (enum dtype)sum->type};
        struct rt_buf bufs[] = {{sum, RT_RW},
                                {tile_of(dweight, t), RT_RW},
                                {tile_of(dbias, t), RT_RW},
                                {dout, RT_R},
                                {inp, RT_R},
                                {w, RT_R},
                                {scratch, RT_SCRATCH}};
        rt_submit(&matmul_backward_cl, "matmul_bwd", bufs, 7, &a, sizeof a, 4.0 * N * C * oc, prio,
                  RT_WHERE_COMPUTE);
    }
    if (sum != dinp) cast_insert(dinp, sum, prio, RT_WHERE_COMPUTE);
}
