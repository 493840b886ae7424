/* matmul.c: CPU reference of the fully connected layer, out = inp . weight^T + bias.
 *
 * Both products are gemm_f32 (gemm.h): every element is one chain of fused multiply-adds in
 * ascending k, so the bits depend on neither the thread count, the processor, the tiling nor the
 * rows around it. The forward starts each output element's chain at its bias (or 0); the backward
 * continues the chains of the gradients it accumulates into, so tiles of a layer adding their
 * share of dinp one after the other give the whole layer's bits. fp16/bf16 operands are widened to
 * fp32 copies first and the result rounded once; the backward accumulates straight into fp32
 * gradients, or into a widened copy for fp16/bf16. dbias is a sum over the N rows, parallel over
 * blocks of output channels, each summing the rows in order.
 *
 * out and dout may be column blocks of wider matrices (leading dimension ldo >= OC), so that a
 * layer split into tiles of output channels writes each tile's columns in place: the fp32 path
 * hands ldo to the product, the fp16/bf16 path widens and rounds row by row.
 *
 * The MLP's fused forms (matmul_forward_gelu_cpu, matmul_backward_dgelu_cpu) are these products
 * and gelu.c's kernels called in the unfused order, so they give the unfused bits. */
#include <stdlib.h>
#include <string.h>

#include "f32_view.h"
#include "gemm.h"
#include "kernels_cpu.h"

/* Output channels per block of the dbias reduction. */
#define MATMUL_OCBLOCK 64

/* fp32 view of the [N,OC] block of p whose rows are ldo apart; *ld receives the view's. */
static float *rows_view(enum dtype dt, void *p, int N, int OC, int ldo, float *tmp, int load,
                        int *ld)
{
    *ld = dt == DTYPE_FP32 ? ldo : OC;
    if (dt == DTYPE_FP32) return p;
    for (int n = 0; load && n < N; n++)
        dtype_to_f32(dt, (const char *)p + (size_t)n * ldo * dtype_size(dt), tmp + (size_t)n * OC,
                     OC);
    return tmp;
}

/* Rounds a view from rows_view back into p; no-op for fp32. */
static void rows_store(enum dtype dt, void *p, int N, int OC, int ldo, const float *view)
{
    for (int n = 0; dt != DTYPE_FP32 && n < N; n++)
        dtype_from_f32(dt, view + (size_t)n * OC, (char *)p + (size_t)n * ldo * dtype_size(dt), OC);
}

/* dbias[OC] += the column sums of g[N,OC] (rows ldg apart), parallel over blocks of output
 * channels, each summing the rows in order. */
static void colsum_add(enum dtype dt, void *dbias, const float *g, int ldg, int N, int OC)
{
    float *tdb = f32_scratch(dt, OC);
    float *db = f32_inout(dt, dbias, 0, OC, tdb);
    int nblocks = (OC + MATMUL_OCBLOCK - 1) / MATMUL_OCBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * MATMUL_OCBLOCK;
        int nb = OC - o0 < MATMUL_OCBLOCK ? OC - o0 : MATMUL_OCBLOCK;
        float s[MATMUL_OCBLOCK] = {0};
        for (int n = 0; n < N; n++)
            for (int k = 0; k < nb; k++)
                s[k] += g[(size_t)n * ldg + o0 + k];
        for (int k = 0; k < nb; k++)
            db[o0 + k] += s[k];
    }
    f32_store(dt, dbias, 0, OC, db);
    free(tdb);
}

void matmul_forward_cpu(void *out, const void *inp, const void *weight, const void *bias, int N,
                        int C, int OC, int ldo, enum dtype dt)
{
    size_t nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
    float *ti = f32_scratch(dt, nin), *tw = f32_scratch(dt, nw), *to = f32_scratch(dt, nout);
    float *tb = bias ? f32_scratch(dt, OC) : NULL;
    int ld;
    const float *x = f32_in(dt, inp, 0, nin, ti);
    const float *w = f32_in(dt, weight, 0, nw, tw);
    float *o = rows_view(dt, out, N, OC, ldo, to, 0, &ld);
    const float *b = bias ? f32_in(dt, bias, 0, OC, tb) : NULL;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            o[(size_t)n * ld + oc] = b ? b[oc] : 0.0f;
    gemm_f32(0, 1, N, OC, C, x, C, w, C, o, ld);
    rows_store(dt, out, N, OC, ldo, o);
    free(ti);
    free(tw);
    free(to);
    free(tb);
}

void matmul_backward_cpu(void *dinp, enum dtype dinp_dt, void *dweight, void *dbias,
                         const void *dout, const void *inp, const void *weight, int N, int C,
                         int OC, int ldo, enum dtype dt, unsigned set)
{
    size_t nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
    float *tg = f32_scratch(dt, nout);
    int ldg;
    const float *g = rows_view(dt, (void *)dout, N, OC, ldo, tg, 1, &ldg);

    if (dinp) {
        float *tw = f32_scratch(dt, nw), *tdi = f32_scratch(dinp_dt, nin);
        const float *w = f32_in(dt, weight, 0, nw, tw);
        float *di = set & MATMUL_SET_DINP ? f32_zeroed(dinp_dt, dinp, nin, tdi)
                                          : f32_inout(dinp_dt, dinp, 0, nin, tdi);
        gemm_f32(0, 0, N, C, OC, g, ldg, w, C, di, C);
        f32_store(dinp_dt, dinp, 0, nin, di);
        free(tw);
        free(tdi);
    }

    float *ti = f32_scratch(dt, nin), *tdw = f32_scratch(dt, nw);
    const float *x = f32_in(dt, inp, 0, nin, ti);
    float *dw = set & MATMUL_SET_DWEIGHT ? f32_zeroed(dt, dweight, nw, tdw)
                                         : f32_inout(dt, dweight, 0, nw, tdw);
    gemm_f32(1, 0, OC, C, N, g, ldg, x, C, dw, C);
    f32_store(dt, dweight, 0, nw, dw);
    free(ti);
    free(tdw);

    if (dbias) colsum_add(dt, dbias, g, ldg, N, OC);
    free(tg);
}

void matmul_forward_gelu_cpu(void *out, void *pre, const void *inp, const void *weight,
                             const void *bias, int N, int C, int OC, enum dtype dt)
{
    void *p = pre ? pre : out;
    matmul_forward_cpu(p, inp, weight, bias, N, C, OC, OC, dt);
    gelu_forward_cpu(out, p, (size_t)N * OC, dt);
}

void matmul_backward_dgelu_cpu(void *dpre, void *dweight, void *dbias, void *dbias_pre,
                               const void *dout, const void *inp, const void *weight,
                               const void *pre, int N, int C, int OC, enum dtype dt, unsigned set)
{
    size_t n = (size_t)N * C, es = dtype_size(dt);
    void *dact = calloc(n, es); /* d(gelu(pre)), zero: all-zero bits are 0.0 in every dtype */
    CHECK_MSG(dact != NULL, "out of host memory in matmul_backward_dgelu_cpu");
    matmul_backward_cpu(dact, dt, dweight, dbias, dout, inp, weight, N, C, OC, OC, dt,
                        set & MATMUL_SET_DWEIGHT);
    memset(dpre, 0, n * es);
    gelu_backward_cpu(dpre, pre, dact, n, dt);
    free(dact);
    if (!dbias_pre) return;
    float *tg = f32_scratch(dt, n);
    int ldg;
    const float *g = rows_view(dt, dpre, N, C, C, tg, 1, &ldg);
    colsum_add(dt, dbias_pre, g, ldg, N, C);
    free(tg);
}
