/* test_matmul_tiles_cpu.c: a linear layer split into tiles of output channels (memory-centric
 * tiling) gives the bits of the whole layer.
 *
 * Tile t holds weight rows and bias entries [o0, o1) and writes columns [o0, o1) of out through
 * the kernels' leading dimension (ldo = OC), as codelets/matmul.c submits it; the split is
 * runtime/rt.c's tensor_tiles one, o0 = t*OC/ntiles, with OC not a multiple of the tile count.
 * Forward outputs, dweight and dbias are per-column or per-row results whose reduction (over C,
 * or over N) runs in the same order tiled or not. dinp sums over all OC: the tiles add their share
 * one after the other, and since every element of the product is one chain of fused
 * multiply-adds in ascending k (gemm.h), the tiles continue the whole layer's chain. In fp16 and
 * bf16 they add into an fp32 accumulator (dinp widened into it, rounded back once, as
 * codelets/matmul.c does with its `acc`), so every output is bit-identical to the whole layer in
 * fp32, fp16 and bf16; the old way, one rounding per tile straight into the 16-bit dinp, is
 * checked to differ.
 *
 * The set bits (MATMUL_SET_DINP, MATMUL_SET_DWEIGHT), with which the graph skips the zero fills:
 * the backward and the fused GELU backward write dinp and dweight over NaNs with the bits of
 * adding onto zeros, and still add to dbias. */
#include <stdio.h>
#include <stdlib.h>

#include "cpu_test.h"
#include "kernels_cpu.h"

#define N      128
#define C      96
#define OC     389
#define NTILES 3

static int test_dtype(enum dtype dt)
{
    size_t es = dtype_size(dt), nout = (size_t)N * OC, nw = (size_t)OC * C, nin = (size_t)N * C;
    float *x_inp = test_rand(nin, 1), *x_w = test_rand(nw, 0.2f), *x_b = test_rand(OC, 1);
    float *x_dout = test_rand(nout, 1), *x_dinp = test_rand(nin, 1);
    float *x_dw = test_rand(nw, 1), *x_db = test_rand(OC, 1);
    void *inp = test_to_dt(dt, x_inp, nin), *w = test_to_dt(dt, x_w, nw);
    void *b = test_to_dt(dt, x_b, OC), *dout = test_to_dt(dt, x_dout, nout);
    void *ref = test_nan_dt(dt, nout), *got = test_nan_dt(dt, nout);
    void *dinp_ref = test_to_dt(dt, x_dinp, nin), *dinp = test_to_dt(dt, x_dinp, nin);
    void *dw_ref = test_to_dt(dt, x_dw, nw), *dw = test_to_dt(dt, x_dw, nw);
    void *db_ref = test_to_dt(dt, x_db, OC), *db = test_to_dt(dt, x_db, OC);
    const char *name = dtype_name(dt);
    char what[96];
    int fail = 0;

    matmul_forward_cpu(ref, inp, w, b, N, C, OC, OC, dt);
    matmul_backward_cpu(dinp_ref, dt, dw_ref, db_ref, dout, inp, w, N, C, OC, OC, dt, 0);
    /* the tiles' dinp: fp32 in place, else an fp32 accumulator rounded into dinp at the end */
    enum dtype acc_dt = DTYPE_FP32;
    float *acc = dt == DTYPE_FP32 ? dinp : test_alloc(nin);
    void *dinp16 = test_to_dt(dt, x_dinp, nin), *dw16 = test_to_dt(dt, x_dw, nw);
    if (dt != DTYPE_FP32) dtype_to_f32(dt, dinp, acc, nin);
    for (int t = 0; t < NTILES; t++) {
        int o0 = t * OC / NTILES, o1 = (t + 1) * OC / NTILES, oc = o1 - o0;
        matmul_forward_cpu((char *)got + o0 * es, inp, (char *)w + (size_t)o0 * C * es,
                           (char *)b + o0 * es, N, C, oc, OC, dt);
        /* the tile wrote its columns only: the next tile's first column is still unwritten */
        for (int n = 0; o1 < OC && n < N; n++)
            if (!isnan(dtype_load(dt, got, (size_t)n * OC + o1))) {
                printf("FAIL %s forward tile %d wrote column %d of row %d\n", name, t, o1, n);
                fail = 1;
            }
        matmul_backward_cpu(acc, acc_dt, (char *)dw + (size_t)o0 * C * es, (char *)db + o0 * es,
                            (char *)dout + o0 * es, inp, (char *)w + (size_t)o0 * C * es, N, C, oc,
                            OC, dt, 0);
        if (dt != DTYPE_FP32)
            matmul_backward_cpu(dinp16, dt, (char *)dw16 + (size_t)o0 * C * es, NULL,
                                (char *)dout + o0 * es, inp, (char *)w + (size_t)o0 * C * es, N, C,
                                oc, OC, dt, 0);
    }
    if (dt != DTYPE_FP32) dtype_from_f32(dt, acc, dinp, nin);
    snprintf(what, sizeof what, "%s forward, %d tiles vs whole", name, NTILES);
    fail |= test_same_bits(what, got, ref, nout * es);
    snprintf(what, sizeof what, "%s dweight, %d tiles vs whole", name, NTILES);
    fail |= test_same_bits(what, dw, dw_ref, nw * es);
    snprintf(what, sizeof what, "%s dbias, %d tiles vs whole", name, NTILES);
    fail |= test_same_bits(what, db, db_ref, OC * es);
    float *g = test_alloc(nin), *r = test_alloc(nin);
    dtype_to_f32(dt, dinp, g, nin);
    dtype_to_f32(dt, dinp_ref, r, nin);
    snprintf(what, sizeof what, "%s dinp, %d tiles vs whole", name, NTILES);
    fail |= test_same_bits(what, dinp, dinp_ref, nin * es);
    if (dt != DTYPE_FP32) {
        size_t same16 = 0;
        float *g16 = test_alloc(nin);
        dtype_to_f32(dt, dinp16, g16, nin);
        for (size_t i = 0; i < nin; i++)
            same16 += g16[i] == r[i];
        printf("%s dinp: %zu of %zu elements bit-identical with one rounding per tile\n", name,
               same16, nin);
        if (same16 == nin) {
            printf("FAIL %s dinp: one rounding per tile should differ from the whole layer\n",
                   name);
            fail = 1;
        }
        free(g16);
        free(acc);
    }
    free(dinp16);
    free(dw16);

    void *all[] = {x_inp, x_w, x_b,      x_dout, x_dinp, x_dw, x_db,   inp, w, b, dout,
                   ref,   got, dinp_ref, dinp,   dw_ref, dw,   db_ref, db,  g, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return fail;
}

/* The set bits: written over NaNs (an output read before it is written stays NaN), the bits of
 * the same products added onto zeros; dbias (and the fused form's dbias_pre) still add. */
static int test_set(enum dtype dt)
{
    size_t es = dtype_size(dt), nout = (size_t)N * OC, nw = (size_t)OC * C, nin = (size_t)N * C;
    float *x_inp = test_rand(nin, 3), *x_w = test_rand(nw, 0.2f), *x_dout = test_rand(nout, 1);
    float *x_db = test_rand(OC, 1), *x_dbp = test_rand(C, 1);
    void *inp = test_to_dt(dt, x_inp, nin), *w = test_to_dt(dt, x_w, nw);
    void *dout = test_to_dt(dt, x_dout, nout), *pre = test_to_dt(dt, x_inp, nin);
    void *di = test_nan_dt(dt, nin), *dw = test_nan_dt(dt, nw), *db = test_to_dt(dt, x_db, OC);
    void *di0 = test_to_dt(dt, NULL, nin), *dw0 = test_to_dt(dt, NULL, nw);
    void *db0 = test_to_dt(dt, x_db, OC);
    const char *name = dtype_name(dt);
    char what[96];
    int fail = 0;
    matmul_backward_cpu(di, dt, dw, db, dout, inp, w, N, C, OC, OC, dt,
                        MATMUL_SET_DINP | MATMUL_SET_DWEIGHT);
    matmul_backward_cpu(di0, dt, dw0, db0, dout, inp, w, N, C, OC, OC, dt, 0);
    snprintf(what, sizeof what, "%s backward, set: dinp as added onto zeros", name);
    fail |= test_same_bits(what, di, di0, nin * es);
    snprintf(what, sizeof what, "%s backward, set: dweight as added onto zeros", name);
    fail |= test_same_bits(what, dw, dw0, nw * es);
    snprintf(what, sizeof what, "%s backward, set: dbias still adds", name);
    fail |= test_same_bits(what, db, db0, OC * es);

    /* the fused form: dpre[N,C] from dout[N,OC]; its weight gradient alone follows set */
    void *dp = test_nan_dt(dt, nin), *dp0 = test_nan_dt(dt, nin);
    void *dbp = test_to_dt(dt, x_dbp, C), *dbp0 = test_to_dt(dt, x_dbp, C);
    void *gw = test_nan_dt(dt, nw), *gw0 = test_to_dt(dt, NULL, nw);
    matmul_backward_dgelu_cpu(dp, gw, db, dbp, dout, inp, w, pre, N, C, OC, dt, MATMUL_SET_DWEIGHT);
    matmul_backward_dgelu_cpu(dp0, gw0, db0, dbp0, dout, inp, w, pre, N, C, OC, dt, 0);
    snprintf(what, sizeof what, "%s dgelu backward, set: dweight as added onto zeros", name);
    fail |= test_same_bits(what, gw, gw0, nw * es);
    snprintf(what, sizeof what, "%s dgelu backward, set: dpre, dbias, dbias_pre", name);
    fail |= test_same_bits(what, dp, dp0, nin * es) | test_same_bits(what, db, db0, OC * es) |
            test_same_bits(what, dbp, dbp0, C * es);
    void *all[] = {x_inp, x_w, x_dout, x_db, x_dbp, inp, w,   dout, pre, di, dw,
                   db,    di0, dw0,    db0,  dp,    dp0, dbp, dbp0, gw,  gw0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return fail;
}

int main(void)
{
    test_skip_unsupported_isa();
    test_seed(42);
    int fail = test_dtype(DTYPE_FP32);
    fail |= test_dtype(DTYPE_FP16);
    fail |= test_dtype(DTYPE_BF16);
    for (int d = DTYPE_FP32; d <= DTYPE_BF16; d++)
        fail |= test_set((enum dtype)d);
    return fail ? 1 : 0;
}
