/* test_comm_nccl.c: the NCCL backend of the collectives (codelets.h, runtime/comm.h) against the
 * host backend, over all local GPUs (world = number of GPUs; 1 works too).
 *
 * Both communicators get the same data per rank and run, for fp32, fp16 and bf16, at a small
 * size and a ~3M-element one (neither a multiple of the 4096-byte shard alignment): an
 * all-gather, which must match the host result byte for byte, then a reduce-scatter followed
 * at once by an all-gather of its result (data dependencies only, no wait). NCCL sums in its own
 * order and type, so the reduced values may differ from the host's fp32 sum rounded once by W-1
 * roundings of partial sums of up to 2W in magnitude: |got - ref| <= 2 W^2 eps(dtype). Prints
 * the worst element of each comparison. Exit 0 pass, 1 fail, 77 without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "codelets.h"
#include "../../test_expect.h"

struct bufs {
    struct tensor shard_t[COMM_MAX_LOCAL], full_t[COMM_MAX_LOCAL];
    struct tensor *shard[COMM_MAX_LOCAL], *full[COMM_MAX_LOCAL];
};

/* Rank r's shard holds global elements [r*s, (r+1)*s) of a smooth signal in [-2, 2], zero past
 * n; full buffers start as zeros, which the first all-gather overwrites. */
static void bufs_init(struct bufs *b, int L, enum dtype dt, size_t n, size_t s)
{
    for (int r = 0; r < L; r++) {
        b->shard[r] = &b->shard_t[r];
        b->full[r] = &b->full_t[r];
        tensor_init(b->shard[r], "shard", (enum tensor_type)dt, s, TENSOR_HOST_PAGEABLE);
        tensor_init(b->full[r], "full", (enum tensor_type)dt, L * s, TENSOR_HOST_PAGEABLE);
        void *p = tensor_acquire_write(b->shard[r]);
        for (size_t i = 0; i < s; i++) {
            size_t j = r * s + i;
            dtype_store(dt, p, i, j < n ? 2.0f * sinf(0.37f * (float)j + 0.1f * (float)r) : 0.0f);
        }
        tensor_release(b->shard[r]);
    }
}

static void bufs_free(struct bufs *b, int L)
{
    for (int r = 0; r < L; r++) {
        tensor_free(b->shard[r]);
        tensor_free(b->full[r]);
    }
}

/* Largest |got - ref| over rank r's tensors; fails when above tol. */
static void compare(struct tensor *got, struct tensor *ref, double tol, const char *what, int r)
{
    enum dtype dt = (enum dtype)got->type;
    const void *g = tensor_acquire_read(got), *f = tensor_acquire_read(ref);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < got->n; i++) {
        double d = fabs((double)dtype_load(dt, g, i) - dtype_load(dt, f, i));
        if (!(d <= worst)) worst = d, at = i;
    }
    printf("%-26s %s n=%-8zu rank %d: worst |nccl - host| %.3g at %zu (tol %.3g)\n", what,
           dtype_name(dt), got->n, r, worst, at, tol);
    EXPECT(worst <= tol, "%s %s rank %d: element %zu: nccl %.9g host %.9g", what, dtype_name(dt), r,
           at, dtype_load(dt, g, at), dtype_load(dt, f, at));
    tensor_release(got);
    tensor_release(ref);
}

static void check_case(struct comm *nccl, struct comm *host, enum dtype dt, size_t n)
{
    static const double EPS[] = {0x1p-23, 0x1p-10, 0x1p-7};
    int L = comm_local(nccl), W = comm_world(nccl);
    size_t s = comm_shard_elems(n, W, 4096, dtype_size(dt));
    double tol = W == 1 ? 0 : 2.0 * W * W * EPS[dt];
    struct bufs g, h;
    bufs_init(&g, L, dt, n, s);
    bufs_init(&h, L, dt, n, s);
    comm_all_gather(nccl, g.shard, g.full, s);
    comm_all_gather(host, h.shard, h.full, s);
    for (int r = 0; r < L; r++)
        compare(g.full[r], h.full[r], 0, "all-gather", r);
    comm_reduce_scatter(nccl, g.full, g.shard, s);
    comm_all_gather(nccl, g.shard, g.full, s);
    comm_reduce_scatter(host, h.full, h.shard, s);
    comm_all_gather(host, h.shard, h.full, s);
    for (int r = 0; r < L; r++) {
        compare(g.shard[r], h.shard[r], tol, "reduce-scatter", r);
        compare(g.full[r], h.full[r], tol, "reduce-scatter+all-gather", r);
    }
    bufs_free(&g, L);
    bufs_free(&h, L);
}

int main(void)
{
    if (rt_probe_gpu_bytes() == 0) {
        printf("skip: no CUDA device\n");
        return 77;
    }
    rt_init(&(struct rt_options){.quiet = 1, .cpu_workers = 1});
    struct comm *nccl = comm_create(&(struct comm_config){COMM_BACKEND_NCCL, 0});
    struct comm *host = comm_create(&(struct comm_config){COMM_BACKEND_HOST, comm_local(nccl)});
    printf("NCCL over %d GPUs of %s\n", comm_world(nccl), rt_device_name());
    for (int d = DTYPE_FP32; d <= DTYPE_BF16; d++) {
        check_case(nccl, host, (enum dtype)d, 1037);
        check_case(nccl, host, (enum dtype)d, (3u << 20) + 5);
    }
    comm_destroy(nccl);
    comm_destroy(host);
    rt_shutdown();
    return test_finish("test_comm_nccl");
}
