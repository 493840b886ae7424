/* test_matmul_set.c: the matmul backward tasks with the set bits (codelets/matmul.c) define the
 * whole of the buffers they write, on the device the runtime picks (CPU workers, or the CUDA
 * worker on a GPU host).
 *
 * A write-only buffer in StarPU starts with whatever its memory held. The gathered full gradient
 * of a sharded tensor is longer than its weight (each rank's shard padded to 4 KiB), and the
 * reduce-scatter sums the whole buffer: the task that sets the weight's gradient must zero that
 * tail too, or the padding carries old memory into the last shard and the gradient norm (two
 * ranks gave non-finite or run-to-run different norms). For fp32, fp16 and bf16, the plain and
 * the fused GELU backward write into buffers that start as NaNs and are longer than the weight,
 * and must give, byte for byte, the buffers of the same task adding onto zeros (set bits off):
 * the product's bits, and zeros in the tail. dbias, read-write either way, must agree too.
 *
 *     test_matmul_set        whichever device rt_init picks
 *     test_matmul_set gpu    the same, skipped (77) without a CUDA device
 * Exit 0 pass, 1 fail, 77 skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "cpu_test.h"
#include "../test_expect.h"

enum { N = 64, C = 48, OC = 40, PAD = 1000 };

/* A tensor of n elements of dt holding x (NULL: n NaNs, or zeros when zero is set). */
static void make(struct tensor *t, enum dtype dt, size_t n, const float *x, int zero)
{
    tensor_init(t, "test", (enum tensor_type)dt, n, TENSOR_HOST_PAGEABLE);
    void *p = tensor_acquire_write(t);
    for (size_t i = 0; i < n; i++)
        dtype_store(dt, p, i, x ? x[i] : zero ? 0.0f : NAN);
    tensor_release(t);
}

/* Compares got and ref byte for byte; reports the first differing element. */
static void expect_same(struct tensor *got, struct tensor *ref, const char *what, enum dtype dt,
                        int fused)
{
    const char *g = tensor_acquire_read(got), *r = tensor_acquire_read(ref);
    size_t es = dtype_size(dt), i = 0;
    while (i < got->n && memcmp(g + i * es, r + i * es, es) == 0)
        i++;
    EXPECT(i == got->n, "%s %s %s: element %zu of %zu (%s): set %g, added onto zeros %g",
           fused ? "dgelu" : "plain", dtype_name(dt), what, i, got->n,
           i >= (size_t)OC * C ? "tail" : "product", i < got->n ? dtype_load(dt, g, i) : 0,
           i < got->n ? dtype_load(dt, r, i) : 0);
    tensor_release(got);
    tensor_release(ref);
}

/* One backward with the set bits into NaN buffers, one without into zeros; same inputs. */
static void check_case(enum dtype dt, int fused)
{
    size_t nin = (size_t)N * C, nw = (size_t)OC * C + PAD;
    float *x_inp = test_rand(nin, 2), *x_w = test_rand(nw, 0.3f), *x_dout = test_rand(N * OC, 1);
    float *x_db = test_rand(OC, 1), *x_dbp = test_rand(C, 1);
    struct tensor inp, w, dout, pre, din[2], dw[2], db[2], dbp[2];
    make(&inp, dt, nin, x_inp, 0);
    make(&pre, dt, nin, x_inp, 0);
    make(&w, dt, (size_t)OC * C, x_w, 0);
    make(&dout, dt, (size_t)N * OC, x_dout, 0);
    for (int s = 0; s < 2; s++) {
        make(&din[s], dt, nin, NULL, s);
        make(&dw[s], dt, nw, NULL, s);
        make(&db[s], dt, OC, x_db, 0);
        make(&dbp[s], dt, C, x_dbp, 0);
        unsigned set = s ? 0 : MATMUL_SET_DINP | MATMUL_SET_DWEIGHT;
        if (fused)
            matmul_backward_dgelu_insert(&din[s], &dw[s], &db[s], &dbp[s], &dout, &inp, &w, &pre, N,
                                         C, OC, set & MATMUL_SET_DWEIGHT, RT_PRIO_NORMAL);
        else
            matmul_backward_insert(&din[s], &dw[s], &db[s], &dout, &inp, &w, N, C, OC, NULL, set,
                                   RT_PRIO_NORMAL);
    }
    rt_wait_all();
    expect_same(&dw[0], &dw[1], "dweight", dt, fused);
    expect_same(&din[0], &din[1], fused ? "dpre" : "dinp", dt, fused);
    expect_same(&db[0], &db[1], "dbias", dt, fused);
    if (fused) expect_same(&dbp[0], &dbp[1], "dbias_pre", dt, fused);
    struct tensor *all[] = {&inp,   &pre,   &w,     &dout,  &din[0], &din[1],
                            &dw[0], &dw[1], &db[0], &db[1], &dbp[0], &dbp[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tensor_free(all[i]);
    float *xs[] = {x_inp, x_w, x_dout, x_db, x_dbp};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        free(xs[i]);
}

int main(int argc, char **argv)
{
    int gpu = argc > 1 && strcmp(argv[1], "gpu") == 0;
    if (gpu && rt_probe_gpu_bytes() == 0) {
        printf("skip: no CUDA device\n");
        return 77;
    }
    test_seed(7);
    rt_init(&(struct rt_options){.quiet = 1});
    printf("device: %s\n", rt_device_name());
    for (int d = DTYPE_FP32; d <= DTYPE_BF16; d++)
        for (int fused = 0; fused < 2; fused++)
            check_case((enum dtype)d, fused);
    rt_shutdown();
    return test_finish(gpu ? "test_matmul_set gpu" : "test_matmul_set");
}
