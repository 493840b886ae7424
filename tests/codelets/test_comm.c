/* test_comm.c: the host backend's collectives (codelets.h over runtime/comm.h) against naive
 * references.
 *
 * Every rank's data is a hash of (case, global rank, index), so each process computes the
 * reference for all ranks alone. All-gather must give the concatenation byte for byte;
 * reduce-scatter the fp32 sum in global-rank order rounded once, also byte for byte; a
 * reduce-scatter followed at once by an all-gather back into the same full buffers (their data
 * dependencies only, no wait in between) must give the concatenation of the reduced shards.
 * Sizes are not multiples of the alignment and some cases leave whole ranks as padding. Also
 * checks comm_shard_elems against a brute-force search; all-reduce against the same ordered sums;
 * and the host transfers (comm_allreduce_host, comm_bcast_host, comm_gather_host,
 * comm_same_everywhere).
 *
 *     test_comm        one process, simulated ranks W = 1..4, fp32/fp16/bf16
 *     test_comm mpi    under mpirun: every process with 1 then 2 local ranks
 * Exit 0 pass, 1 fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "../test_expect.h"

static const enum dtype DTYPES[] = {DTYPE_FP32, DTYPE_FP16, DTYPE_BF16};

/* A value in [-2, 2) with a full fp32 mantissa, so sums round. */
static float value(uint64_t seed, int rank, size_t i)
{
    uint64_t x =
        (seed * 1000003u + (uint64_t)rank) * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 29;
    return (float)((double)(x >> 40) / (double)(1 << 22) - 2.0);
}

/* Global element j of rank `rank`'s data, zero past n (padding), rounded to dt. */
static float element(enum dtype dt, uint64_t seed, int rank, size_t j, size_t n)
{
    uint32_t tmp;
    dtype_store(dt, &tmp, 0, j < n ? value(seed, rank, j) : 0.0f);
    return dtype_load(dt, &tmp, 0);
}

/* First element where got and ref differ bytewise, or n. */
static size_t first_difference(enum dtype dt, const void *got, const void *ref, size_t n)
{
    size_t es = dtype_size(dt), i = 0;
    while (i < n && memcmp((const char *)got + i * es, (const char *)ref + i * es, es) == 0)
        i++;
    return i;
}

static void expect_equal(enum dtype dt, const void *got, const void *ref, size_t n,
                         const char *what, int W, int rank)
{
    size_t i = first_difference(dt, got, ref, n);
    EXPECT(i == n, "%s %s W=%d rank %d: element %zu of %zu: got %.9g, ref %.9g", what,
           dtype_name(dt), W, rank, i, n, i < n ? dtype_load(dt, got, i) : 0,
           i < n ? dtype_load(dt, ref, i) : 0);
}

static void fill(struct tensor *t, uint64_t seed, int rank, size_t first, size_t n)
{
    enum dtype dt = (enum dtype)t->type;
    void *p = tensor_acquire_write(t);
    for (size_t i = 0; i < t->n; i++)
        dtype_store(dt, p, i, element(dt, seed, rank, first + i, n));
    tensor_release(t);
}

/* The reduced shard of global rank R: sum over ranks g of full_g[R*s + i], fp32, rank order. */
static void reduced_ref(enum dtype dt, void *out, uint64_t seed, int W, int R, size_t s, size_t n)
{
    for (size_t i = 0; i < s; i++) {
        float acc = element(dt, seed, 0, R * s + i, n);
        for (int g = 1; g < W; g++)
            acc += element(dt, seed, g, R * s + i, n);
        dtype_store(dt, out, i, acc);
    }
}

/* One case: `local` ranks here, n elements of dt, shards aligned to `align` bytes. */
static void check_case(int local, enum dtype dt, size_t n, size_t align, uint64_t seed)
{
    struct comm *c = comm_create(&(struct comm_config){COMM_BACKEND_HOST, local});
    int W = comm_world(c);
    size_t es = dtype_size(dt), s = comm_shard_elems(n, W, align, es);
    struct tensor shard_t[COMM_MAX_LOCAL], full_t[COMM_MAX_LOCAL];
    struct tensor *shard[COMM_MAX_LOCAL], *full[COMM_MAX_LOCAL];
    char *ref = malloc(W * s * es);
    CHECK(ref);
    for (int r = 0; r < local; r++) {
        shard[r] = &shard_t[r];
        full[r] = &full_t[r];
        tensor_init(shard[r], "shard", (enum tensor_type)dt, s, TENSOR_HOST_PAGEABLE);
        tensor_init(full[r], "full", (enum tensor_type)dt, W * s, TENSOR_HOST_PAGEABLE);
        fill(shard[r], seed, 0, comm_rank(c, r) * s, n);
        fill(full[r], seed + 1, comm_rank(c, r), 0, n);
    }

    /* all-gather: rank g's shard is elements [g*s, (g+1)*s) of the seed's data */
    comm_all_gather(c, shard, full, s);
    for (size_t j = 0; j < W * s; j++)
        dtype_store(dt, ref, j, element(dt, seed, 0, j, n));
    for (int r = 0; r < local; r++) {
        expect_equal(dt, tensor_acquire_read(full[r]), ref, W * s, "all-gather", W, r);
        tensor_release(full[r]);
        fill(full[r], seed + 1, comm_rank(c, r), 0, n);
    }

    /* reduce-scatter, then all-gather of its result back into the full buffers, no wait */
    comm_reduce_scatter(c, full, shard, s);
    comm_all_gather(c, shard, full, s);
    for (int g = 0; g < W; g++)
        reduced_ref(dt, ref + g * s * es, seed + 1, W, g, s, n);
    for (int r = 0; r < local; r++) {
        expect_equal(dt, tensor_acquire_read(shard[r]), ref + comm_rank(c, r) * s * es, s,
                     "reduce-scatter", W, r);
        tensor_release(shard[r]);
        expect_equal(dt, tensor_acquire_read(full[r]), ref, W * s, "reduce-scatter+all-gather", W,
                     r);
        tensor_release(full[r]);
        fill(full[r], seed + 1, comm_rank(c, r), 0, n);
    }

    /* all-reduce of the whole full buffers: every rank gets what the reduce-scatter gave all */
    comm_all_reduce(c, full, W * s);
    for (int r = 0; r < local; r++) {
        expect_equal(dt, tensor_acquire_read(full[r]), ref, W * s, "all-reduce", W, r);
        tensor_release(full[r]);
        tensor_free(shard[r]);
        tensor_free(full[r]);
    }
    comm_destroy(c);
    free(ref);
}

/* comm_shard_elems against the smallest multiple of the aligned grain that covers n. */
static void check_shard_elems(void)
{
    static const size_t ns[] = {1, 7, 1000, 4097, (1u << 20) + 3};
    static const size_t aligns[] = {0, 1, 12, 64, 4096};
    for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++)
        for (size_t e = 1; e <= 4; e *= 2)
            for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
                for (int w = 1; w <= 8; w++) {
                    size_t grain = 1, n = ns[k], s, want;
                    while (aligns[a] > 1 && grain * e % aligns[a] != 0)
                        grain++;
                    for (want = grain; want * w < n; want += grain)
                        ;
                    s = comm_shard_elems(n, w, aligns[a], e);
                    EXPECT(s == want && s * w >= n && (aligns[a] < 2 || s * e % aligns[a] == 0),
                           "comm_shard_elems(%zu, %d, %zu, %zu) = %zu, want %zu", n, w, aligns[a],
                           e, s, want);
                }
}

int main(int argc, char **argv)
{
    int mpi = argc > 1 && strcmp(argv[1], "mpi") == 0;
    setenv("STARPU_NCUDA", "0", 1);
    rt_init(&(struct rt_options){.quiet = 1, .mpi = mpi});
    check_shard_elems();
    uint64_t seed = 1;
    for (int local = 1; local <= (mpi ? 2 : 4); local++)
        for (int d = 0; d < 3; d++) {
            int W = local * rt_mpi_size();
            check_case(local, DTYPES[d], 1000 + 37 * W, 64, seed += 2);
            /* 4096-byte shards: the last rank (W = 3, 4) is partly or wholly padding */
            check_case(local, DTYPES[d], 3000, 4096, seed += 2);
        }
    struct comm *c = comm_create(&(struct comm_config){COMM_BACKEND_HOST, 1});
    double vals[2] = {rt_mpi_rank() + 1.0, 1.0};
    comm_allreduce_host(c, vals, 2);
    double np = rt_mpi_size();
    EXPECT(vals[0] == np * (np + 1) / 2 && vals[1] == np, "allreduce_host: %g %g", vals[0],
           vals[1]);
    int me = rt_mpi_rank(), *all = calloc(rt_mpi_size(), sizeof *all), from0 = me == 0 ? 42 : -1;
    CHECK(all);
    comm_bcast_host(c, &from0, sizeof from0);
    EXPECT(from0 == 42, "bcast_host: process %d got %d", me, from0);
    all[me] = me;
    comm_gather_host(c, all, sizeof me);
    for (int p = 0; me == 0 && p < rt_mpi_size(); p++)
        EXPECT(all[p] == p, "gather_host: slot %d holds %d", p, all[p]);
    free(all);
    EXPECT(comm_same_everywhere(c, 7) && comm_same_everywhere(c, 7 + (uint64_t)me) == (np == 1),
           "same_everywhere");
    comm_destroy(c);
    rt_shutdown();
    return test_finish(mpi ? "test_comm mpi" : "test_comm");
}
