/* comm.c: the communicator and its collectives (comm.h).
 *
 * The communicator and its codelet live together here, not in codelets/, because the codelet is
 * per communicator (its nodes[] name this communicator's GPUs) and runtime/ owns MPI and NCCL.
 * Every collective task has the buffers shard[0..local-1], full[0..local-1], token, whatever the
 * direction, so one nodes[] table serves both operations. */
#include "comm.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if GPT50B_HAVE_NCCL
#include <nccl.h>
#endif

#include "check.h"
#if GPT50B_HAVE_NCCL
#include "cuda_check.h"
#endif
#include "timer.h"

enum comm_op {
    COMM_OP_ALL_GATHER,
    COMM_OP_REDUCE_SCATTER,
    COMM_OP_ALL_REDUCE,
};

struct comm {
    enum comm_backend backend;
    int local, proc, nproc; /* world = nproc * local */
    int workers[COMM_MAX_LOCAL], nodes[COMM_MAX_LOCAL];
    struct starpu_codelet cl;        /* all-gather, reduce-scatter: shard[L], full[L], token */
    struct starpu_codelet cl_reduce; /* all-reduce: t[L], token */
    struct tensor token;             /* a void handle: orders the collectives, carries no data */
    MPI_Comm mpi_tasks, mpi_host;    /* duplicates of MPI_COMM_WORLD (nproc > 1): collective tasks
                                        use the first, comm_allreduce_host the second */
    char *stage;                     /* host MPI staging, used by one task at a time (the token) */
    size_t stage_bytes;
    struct ncclComm *nccl[COMM_MAX_LOCAL];
    struct CUstream_st *streams[COMM_MAX_LOCAL]; /* cudaStream_t, NCCL only */
    struct comm_stats stats; /* written by the running collective only (the token) */
};

struct comm_args {
    struct comm *c;
    enum comm_op op;
    size_t shard; /* elements */
    enum dtype dt;
};

#define MPI_OK(x) CHECK_MSG((x) == MPI_SUCCESS, #x)

/* The task's time and the part of it spent in MPI or in NCCL's call and stream wait (which holds
 * the wait for the peers); one collective runs at a time per communicator, so no lock. */
static void stats_add(struct comm *c, enum comm_op op, double t0, double wire_s)
{
    c->stats.count[op]++;
    c->stats.task_s[op] += timer_now_s() - t0;
    c->stats.wire_s[op] += wire_s;
}

/* ---- host backend ---- */

/* out[i] = src[0][i] + src[1][i] + ... in fp32, in that order, rounded once to dt. */
static void sum_in_order(enum dtype dt, void *out, char *const *src, int nsrc, size_t n)
{
    enum { CHUNK = 1024 };
    float acc[CHUNK], x[CHUNK];
    size_t es = dtype_size(dt);
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        dtype_to_f32(dt, src[0] + i0 * es, acc, m);
        for (int k = 1; k < nsrc; k++) {
            dtype_to_f32(dt, src[k] + i0 * es, x, m);
            for (size_t i = 0; i < m; i++)
                acc[i] += x[i];
        }
        dtype_from_f32(dt, acc, (char *)out + i0 * es, m);
    }
}

static char *stage(struct comm *c, size_t bytes)
{
    if (bytes > c->stage_bytes) {
        free(c->stage);
        c->stage = malloc(bytes);
        CHECK_MSG(c->stage, "out of host memory for a collective's staging buffer");
        c->stage_bytes = bytes;
    }
    return c->stage;
}

/* One MPI element of `bytes` bytes (MPI counts are ints). */
static MPI_Datatype host_block(size_t bytes)
{
    MPI_Datatype block;
    CHECK_MSG(bytes > 0 && bytes <= INT32_MAX, "host MPI transfer of more than 2 GiB at once");
    MPI_OK(MPI_Type_contiguous((int)bytes, MPI_BYTE, &block));
    MPI_OK(MPI_Type_commit(&block));
    return block;
}

/* Across processes: the ranks of one process are contiguous in global order, so an all-gather of
 * each process's packed shards is the whole gather, and a reduce-scatter is an all-to-all of the
 * slices each process's ranks own followed by the same ordered sum as in one process. One MPI
 * element is one shard. */
static void comm_host_func(void *b[], void *cl_arg)
{
    const struct comm_args *a = cl_arg;
    struct comm *c = a->c;
    int L = c->local, W = c->nproc * L;
    size_t bytes = a->shard * dtype_size(a->dt);
    double t0 = timer_now_s(), t_mpi = 0;
    MPI_Datatype block = c->nproc > 1 ? host_block(bytes) : MPI_DATATYPE_NULL;
    if (a->op == COMM_OP_ALL_REDUCE) {
        /* every rank's vector, in global order: this process's buffers, or all processes' */
        char *all = NULL, **terms = malloc(W * sizeof *terms);
        CHECK(terms);
        if (c->nproc > 1) {
            char *packed = stage(c, (size_t)(L + W) * bytes);
            all = packed + (size_t)L * bytes;
            for (int r = 0; r < L; r++)
                memcpy(packed + r * bytes, RT_PTR(b, r), bytes);
            t_mpi = timer_now_s();
            MPI_OK(MPI_Allgather(packed, L, block, all, L, block, c->mpi_tasks));
            t_mpi = timer_now_s() - t_mpi;
        }
        for (int g = 0; g < W; g++)
            terms[g] = all ? all + (size_t)g * bytes : (char *)RT_PTR(b, g);
        /* in place into buffer 0 is safe: sum_in_order reads each chunk before writing it */
        sum_in_order(a->dt, RT_PTR(b, 0), terms, W, a->shard);
        for (int r = 1; r < L; r++)
            memcpy(RT_PTR(b, r), RT_PTR(b, 0), bytes);
        free(terms);
    } else if (a->op == COMM_OP_ALL_GATHER) {
        char *full0 = RT_PTR(b, L);
        if (c->nproc == 1) {
            for (int g = 0; g < W; g++)
                memcpy(full0 + g * bytes, RT_PTR(b, g), bytes);
        } else {
            char *packed = stage(c, L * bytes);
            for (int r = 0; r < L; r++)
                memcpy(packed + r * bytes, RT_PTR(b, r), bytes);
            t_mpi = timer_now_s();
            MPI_OK(MPI_Allgather(packed, L, block, full0, L, block, c->mpi_tasks));
            t_mpi = timer_now_s() - t_mpi;
        }
        for (int r = 1; r < L; r++)
            memcpy(RT_PTR(b, L + r), full0, W * bytes);
    } else {
        char *recv = NULL, **terms = malloc(W * sizeof *terms);
        CHECK(terms);
        if (c->nproc > 1) {
            char *send = stage(c, 2 * (size_t)W * L * bytes);
            recv = send + (size_t)W * L * bytes;
            for (int p = 0; p < c->nproc; p++)
                for (int r = 0; r < L; r++)
                    memcpy(send + (size_t)(p * L + r) * L * bytes,
                           (char *)RT_PTR(b, L + r) + (size_t)p * L * bytes, L * bytes);
            t_mpi = timer_now_s();
            MPI_OK(MPI_Alltoall(send, L * L, block, recv, L * L, block, c->mpi_tasks));
            t_mpi = timer_now_s() - t_mpi;
        }
        /* terms[g]: global rank g's slice for local rank r, from process g / L's block of recv */
        for (int r = 0; r < L; r++) {
            for (int g = 0; g < W; g++)
                terms[g] = recv ? recv + (size_t)(g * L + r) * bytes
                                : (char *)RT_PTR(b, L + g) + (size_t)r * bytes;
            sum_in_order(a->dt, RT_PTR(b, r), terms, W, a->shard);
        }
        free(terms);
    }
    if (block != MPI_DATATYPE_NULL) MPI_Type_free(&block);
    stats_add(c, a->op, t0, t_mpi);
}

/* ---- NCCL backend ---- */

#if GPT50B_HAVE_NCCL
#define NCCL_OK(x) CHECK_MSG((x) == ncclSuccess, #x)

static ncclDataType_t nccl_type(enum dtype dt)
{
    return dt == DTYPE_FP32 ? ncclFloat32 : dt == DTYPE_FP16 ? ncclFloat16 : ncclBfloat16;
}

/* Runs on any CUDA worker: the buffers sit on their GPUs' nodes (specific_nodes), every GPU's
 * call goes into one group on that GPU's stream, and the task ends when all streams have. */
static void comm_nccl_func(void *b[], void *cl_arg)
{
    const struct comm_args *a = cl_arg;
    struct comm *c = a->c;
    int dev;
    double t0 = timer_now_s();
    CUDA_CHECK(cudaGetDevice(&dev));
    NCCL_OK(ncclGroupStart());
    for (int r = 0; r < c->local; r++) {
        /* all-reduce: buffer r is rank r's vector, reduced in place; full is not used */
        void *shard = RT_PTR(b, r),
             *full = a->op == COMM_OP_ALL_REDUCE ? NULL : RT_PTR(b, c->local + r);
        if (a->op == COMM_OP_ALL_REDUCE)
            NCCL_OK(ncclAllReduce(shard, shard, a->shard, nccl_type(a->dt), ncclSum, c->nccl[r],
                                  c->streams[r]));
        else if (a->op == COMM_OP_ALL_GATHER)
            NCCL_OK(
                ncclAllGather(shard, full, a->shard, nccl_type(a->dt), c->nccl[r], c->streams[r]));
        else
            NCCL_OK(ncclReduceScatter(full, shard, a->shard, nccl_type(a->dt), ncclSum, c->nccl[r],
                                      c->streams[r]));
    }
    NCCL_OK(ncclGroupEnd());
    for (int r = 0; r < c->local; r++)
        CUDA_CHECK(cudaStreamSynchronize(c->streams[r]));
    CUDA_CHECK(cudaSetDevice(dev));
    stats_add(c, a->op, t0, timer_now_s() - t0);
}

/* One NCCL rank and one stream per local GPU; the id comes from process 0. */
static void nccl_start(struct comm *c)
{
    ncclUniqueId id;
    int dev;
    if (c->proc == 0) NCCL_OK(ncclGetUniqueId(&id));
    if (c->nproc > 1) MPI_OK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, c->mpi_host));
    CUDA_CHECK(cudaGetDevice(&dev));
    NCCL_OK(ncclGroupStart());
    for (int r = 0; r < c->local; r++) {
        CUDA_CHECK(cudaSetDevice(starpu_worker_get_devid(c->workers[r])));
        CUDA_CHECK(cudaStreamCreateWithFlags(&c->streams[r], cudaStreamNonBlocking));
        NCCL_OK(ncclCommInitRank(&c->nccl[r], comm_world(c), id, comm_rank(c, r)));
    }
    NCCL_OK(ncclGroupEnd());
    CUDA_CHECK(cudaSetDevice(dev));
}

static void nccl_stop(struct comm *c)
{
    for (int r = 0; r < c->local; r++) {
        NCCL_OK(ncclCommDestroy(c->nccl[r]));
        CUDA_CHECK(cudaStreamDestroy(c->streams[r]));
    }
}
#else
#define comm_nccl_func NULL
static void nccl_start(struct comm *c)
{
    (void)c;
    user_fail("this build has no NCCL: install it and reconfigure, or use the host backend");
}
static void nccl_stop(struct comm *c)
{
    (void)c;
}
#endif

/* ---- the communicator ---- */

/* Fills workers[] and nodes[]: the first `local` CUDA workers, on distinct GPUs. */
static void nccl_workers(struct comm *c, int local)
{
    int ncuda = rt_ncuda();
    if (ncuda == 0) user_fail("the NCCL backend needs GPUs: StarPU found no CUDA worker");
    c->local = local ? local : ncuda;
    if (c->local > ncuda)
        user_fail("%d NCCL ranks asked for, but StarPU has %d CUDA workers", c->local, ncuda);
    for (int r = 0; r < c->local && r < COMM_MAX_LOCAL; r++) {
        c->workers[r] = starpu_worker_get_by_type(STARPU_CUDA_WORKER, r);
        c->nodes[r] = (int)starpu_worker_get_memory_node(c->workers[r]);
        for (int q = 0; q < r; q++)
            if (starpu_worker_get_devid(c->workers[q]) == starpu_worker_get_devid(c->workers[r]))
                user_fail("two CUDA workers on one GPU: set STARPU_NWORKER_PER_CUDA=1 for NCCL");
    }
}

struct comm *comm_create(const struct comm_config *cfg)
{
    struct comm *c = calloc(1, sizeof *c);
    CHECK(c);
    c->backend = cfg->backend;
    c->proc = rt_mpi_rank();
    c->nproc = rt_mpi_size();
    if (cfg->backend == COMM_BACKEND_NCCL) {
        nccl_workers(c, cfg->local);
    } else {
        c->local = cfg->local;
        for (int r = 0; r < COMM_MAX_LOCAL; r++)
            c->workers[r] = -1, c->nodes[r] = STARPU_MAIN_RAM;
    }
    if (c->local < 1 || c->local > COMM_MAX_LOCAL)
        user_fail("%d local ranks: a communicator has 1 to %d per process", c->local,
                  COMM_MAX_LOCAL);
    if (c->nproc > 1) {
        int lo, hi;
        MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi_tasks));
        MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi_host));
        MPI_OK(MPI_Allreduce(&c->local, &lo, 1, MPI_INT, MPI_MIN, c->mpi_host));
        MPI_OK(MPI_Allreduce(&c->local, &hi, 1, MPI_INT, MPI_MAX, c->mpi_host));
        if (lo != hi) user_fail("processes have %d to %d local ranks: give each the same", lo, hi);
        int be = cfg->backend;
        MPI_OK(MPI_Allreduce(&be, &lo, 1, MPI_INT, MPI_MIN, c->mpi_host));
        MPI_OK(MPI_Allreduce(&be, &hi, 1, MPI_INT, MPI_MAX, c->mpi_host));
        if (lo != hi)
            user_fail("some processes have GPUs (NCCL) and some not (host buffers): give each "
                      "process its own GPUs, or none with STARPU_NCUDA=0");
    }
    if (cfg->backend == COMM_BACKEND_NCCL) nccl_start(c);
    c->cl = (struct starpu_codelet){
        .cpu_funcs = {cfg->backend == COMM_BACKEND_HOST ? comm_host_func : NULL},
        .cuda_funcs = {cfg->backend == COMM_BACKEND_NCCL ? comm_nccl_func : NULL},
        .nbuffers = STARPU_VARIABLE_NBUFFERS,
        .specific_nodes = cfg->backend == COMM_BACKEND_NCCL,
        .name = "comm"};
    for (int r = 0; r < c->local; r++)
        c->cl.nodes[r] = c->cl.nodes[c->local + r] = c->nodes[r];
    c->cl.nodes[2 * c->local] = STARPU_SPECIFIC_NODE_LOCAL;
    c->cl_reduce = c->cl;
    c->cl_reduce.nodes[c->local] = STARPU_SPECIFIC_NODE_LOCAL;
    snprintf(c->token.name, sizeof c->token.name, "comm.token");
    starpu_void_data_register(&c->token.handle);
    starpu_data_set_name(c->token.handle, c->token.name);
    return c;
}

void comm_destroy(struct comm *c)
{
    tensor_free(&c->token); /* waits for the tasks that hold it: every collective */
    if (c->backend == COMM_BACKEND_NCCL) nccl_stop(c);
    if (c->nproc > 1) {
        MPI_Comm_free(&c->mpi_tasks);
        MPI_Comm_free(&c->mpi_host);
    }
    free(c->stage);
    free(c);
}

int comm_world(const struct comm *c)
{
    return c->nproc * c->local;
}
int comm_local(const struct comm *c)
{
    return c->local;
}
int comm_rank(const struct comm *c, int local_rank)
{
    return c->proc * c->local + local_rank;
}
int comm_worker(const struct comm *c, int local_rank)
{
    return c->workers[local_rank];
}
int comm_node(const struct comm *c, int local_rank)
{
    return c->nodes[local_rank];
}
struct ncclComm *comm_nccl(const struct comm *c, int local_rank)
{
    return c->nccl[local_rank];
}

size_t comm_shard_elems(size_t n, int world, size_t align_bytes, size_t elem_bytes)
{
    size_t a = align_bytes, e = elem_bytes;
    CHECK_MSG(n > 0 && world > 0 && elem_bytes > 0, "comm_shard_elems: empty tensor or world");
    while (e) { /* gcd(align_bytes, elem_bytes) */
        size_t t = a % e;
        a = e;
        e = t;
    }
    size_t grain = align_bytes > 1 ? align_bytes / a : 1; /* elements of a whole aligned step */
    size_t s = (n + world - 1) / world;
    return (s + grain - 1) / grain * grain;
}

static void submit(struct comm *c, enum comm_op op, struct tensor **shard, struct tensor **full,
                   size_t shard_elems)
{
    int L = c->local, W = comm_world(c);
    struct rt_buf bufs[2 * COMM_MAX_LOCAL + 1];
    enum dtype dt = (enum dtype)shard[0]->type;
    for (int r = 0; r < L; r++) {
        CHECK_MSG(shard[r]->type == shard[0]->type && full[r]->type == shard[0]->type &&
                      shard[0]->type != TENSOR_TYPE_I32,
                  "collective over tensors of different or integer types");
        CHECK_MSG(shard[r]->n >= shard_elems && full[r]->n >= W * shard_elems,
                  "collective over tensors smaller than the shard size says");
        bufs[r] = (struct rt_buf){shard[r], op == COMM_OP_ALL_GATHER ? RT_R : RT_W};
        bufs[L + r] = (struct rt_buf){full[r], op == COMM_OP_ALL_GATHER ? RT_W : RT_R};
    }
    bufs[2 * L] = (struct rt_buf){&c->token, RT_RW};
    struct comm_args a = {c, op, shard_elems, dt};
    rt_submit(&c->cl, op == COMM_OP_ALL_GATHER ? "all_gather" : "reduce_scatter", bufs, 2 * L + 1,
              &a, sizeof a, 0, RT_PRIO_HIGH,
              c->backend == COMM_BACKEND_NCCL ? RT_WHERE_COMPUTE : RT_WHERE_CPU);
}

void comm_all_gather(struct comm *c, struct tensor **shard, struct tensor **full,
                     size_t shard_elems)
{
    submit(c, COMM_OP_ALL_GATHER, shard, full, shard_elems);
}

void comm_reduce_scatter(struct comm *c, struct tensor **full, struct tensor **shard,
                         size_t shard_elems)
{
    submit(c, COMM_OP_REDUCE_SCATTER, shard, full, shard_elems);
}

void comm_all_reduce(struct comm *c, struct tensor **t, size_t n)
{
    int L = c->local;
    struct rt_buf bufs[COMM_MAX_LOCAL + 1];
    for (int r = 0; r < L; r++) {
        CHECK_MSG(t[r]->type == t[0]->type && t[0]->type != TENSOR_TYPE_I32 && t[r]->n >= n,
                  "all-reduce over tensors of different or integer types, or too small");
        bufs[r] = (struct rt_buf){t[r], RT_RW};
    }
    bufs[L] = (struct rt_buf){&c->token, RT_RW};
    struct comm_args a = {c, COMM_OP_ALL_REDUCE, n, (enum dtype)t[0]->type};
    rt_submit(&c->cl_reduce, "all_reduce", bufs, L + 1, &a, sizeof a, 0, RT_PRIO_HIGH,
              c->backend == COMM_BACKEND_NCCL ? RT_WHERE_COMPUTE : RT_WHERE_CPU);
}

struct comm_stats comm_stats(struct comm *c)
{
    struct comm_stats s;
    rt_wait_all(); /* no collective is running: the counts are still */
    s = c->stats;
    return s;
}

int comm_process(const struct comm *c)
{
    return c->proc;
}
int comm_processes(const struct comm *c)
{
    return c->nproc;
}

void comm_bcast_host(struct comm *c, void *buf, size_t bytes)
{
    if (c->nproc == 1) return;
    MPI_Datatype block = host_block(bytes);
    MPI_OK(MPI_Bcast(buf, 1, block, 0, c->mpi_host));
    MPI_Type_free(&block);
}

void comm_gather_host(struct comm *c, void *buf, size_t bytes)
{
    if (c->nproc == 1) return;
    MPI_Datatype block = host_block(bytes);
    if (c->proc == 0)
        MPI_OK(MPI_Gather(MPI_IN_PLACE, 1, block, buf, 1, block, 0, c->mpi_host));
    else
        MPI_OK(MPI_Gather((char *)buf + c->proc * bytes, 1, block, NULL, 1, block, 0, c->mpi_host));
    MPI_Type_free(&block);
}

int comm_same_everywhere(struct comm *c, uint64_t value)
{
    uint64_t lo = value, hi = value;
    if (c->nproc == 1) return 1;
    MPI_OK(MPI_Allreduce(&value, &lo, 1, MPI_UINT64_T, MPI_MIN, c->mpi_host));
    MPI_OK(MPI_Allreduce(&value, &hi, 1, MPI_UINT64_T, MPI_MAX, c->mpi_host));
    return lo == hi;
}

void comm_allreduce_host(struct comm *c, double *vals, int n)
{
    if (c->nproc == 1) return;
    double t0 = timer_now_s();
    /* Not MPI_Allreduce: Open MPI spins in it until the slowest process arrives (the end of its
     * forward), taking the core from this process's own workers; a test every 50 us sleeps. */
    MPI_Request req;
    int done = 0;
    MPI_OK(MPI_Iallreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, c->mpi_host, &req));
    for (;;) {
        MPI_OK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) break;
        nanosleep(&(struct timespec){0, 50000}, NULL);
    }
    c->stats.host_count++;
    c->stats.host_s += timer_now_s() - t0;
}
