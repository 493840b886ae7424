/* comm.c: the communicator and the transport under its collectives (comm.h): MPI communicators,
 * NCCL communicators and streams, the staging buffer and the statistics. The collective tasks
 * themselves are codelets/collectives.c. */
#include "comm.h"

#include <mpi.h>
#include <stdlib.h>
#include <time.h>
#if GPT50B_HAVE_NCCL
#include <nccl.h>
#endif

#include "check.h"
#if GPT50B_HAVE_NCCL
#include "cuda_check.h"
#endif
#include "timer.h"

struct comm {
    enum comm_backend backend;
    int local, proc, nproc; /* world = nproc * local */
    int workers[COMM_MAX_LOCAL], nodes[COMM_MAX_LOCAL];
    struct tensor token;          /* a void handle: orders the collectives, carries no data */
    MPI_Comm mpi_tasks, mpi_host; /* duplicates of MPI_COMM_WORLD (nproc > 1): collective tasks
                                     use the first, comm_allreduce_host the second */
    char *stage;                  /* host MPI staging, used by one task at a time (the token) */
    size_t stage_bytes;
    struct ncclComm *nccl[COMM_MAX_LOCAL];
    struct CUstream_st *streams[COMM_MAX_LOCAL]; /* cudaStream_t, NCCL only */
    struct comm_stats stats; /* written by the running collective only (the token), or in the
                                simulation, where none runs, by the submitter */
};

#define MPI_OK(x) CHECK_MSG((x) == MPI_SUCCESS, #x)

/* ---- host backend: staging and MPI ---- */

void *comm_stage(struct comm *c, size_t bytes)
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

double comm_mpi_all_gather(struct comm *c, const void *send, void *recv, size_t block_bytes,
                           int count)
{
    MPI_Datatype block = host_block(block_bytes);
    double t0 = timer_now_s();
    MPI_OK(MPI_Allgather(send, count, block, recv, count, block, c->mpi_tasks));
    double s = timer_now_s() - t0;
    MPI_Type_free(&block);
    return s;
}

double comm_mpi_all_to_all(struct comm *c, const void *send, void *recv, size_t block_bytes,
                           int count)
{
    MPI_Datatype block = host_block(block_bytes);
    double t0 = timer_now_s();
    MPI_OK(MPI_Alltoall(send, count, block, recv, count, block, c->mpi_tasks));
    double s = timer_now_s() - t0;
    MPI_Type_free(&block);
    return s;
}

/* ---- NCCL backend ---- */

#if GPT50B_HAVE_NCCL
#define NCCL_OK(x) CHECK_MSG((x) == ncclSuccess, #x)

static ncclDataType_t nccl_type(enum dtype dt)
{
    return dt == DTYPE_FP32 ? ncclFloat32 : dt == DTYPE_FP16 ? ncclFloat16 : ncclBfloat16;
}

void comm_nccl_issue(struct comm *c, enum comm_op op, void *const *shard, void *const *full,
                     size_t shard_elems, enum dtype dt)
{
    int dev;
    CUDA_CHECK(cudaGetDevice(&dev));
    NCCL_OK(ncclGroupStart());
    for (int r = 0; r < c->local; r++) {
        if (op == COMM_OP_ALL_REDUCE)
            NCCL_OK(ncclAllReduce(shard[r], shard[r], shard_elems, nccl_type(dt), ncclSum,
                                  c->nccl[r], c->streams[r]));
        else if (op == COMM_OP_ALL_GATHER)
            NCCL_OK(ncclAllGather(shard[r], full[r], shard_elems, nccl_type(dt), c->nccl[r],
                                  c->streams[r]));
        else
            NCCL_OK(ncclReduceScatter(full[r], shard[r], shard_elems, nccl_type(dt), ncclSum,
                                      c->nccl[r], c->streams[r]));
    }
    NCCL_OK(ncclGroupEnd());
    CUDA_CHECK(cudaSetDevice(dev));
}

void comm_nccl_wait(struct comm *c)
{
    for (int r = 0; r < c->local; r++)
        CUDA_CHECK(cudaStreamSynchronize(c->streams[r]));
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
/* Without NCCL, only the simulation build has NCCL communicators: their collectives are tasks of
 * the NCCL codelet's shape that StarPU times and never runs. */
static void nccl_start(struct comm *c)
{
    (void)c;
    if (!rt_simulated())
        user_fail("this build has no NCCL: install it and reconfigure, or use the host backend");
}
static void nccl_stop(struct comm *c)
{
    (void)c;
}
/* Never called: without NCCL no communicator has the NCCL backend (nccl_start refuses), and the
 * simulation's collective tasks are timed, not run. */
void comm_nccl_issue(struct comm *c, enum comm_op op, void *const *shard, void *const *full,
                     size_t shard_elems, enum dtype dt)
{
    CHECK_MSG(0, "this build has no NCCL");
}
void comm_nccl_wait(struct comm *c)
{
    CHECK_MSG(0, "this build has no NCCL");
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
struct tensor *comm_token(struct comm *c)
{
    return &c->token;
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

struct comm_stats comm_stats(struct comm *c)
{
    struct comm_stats s;
    rt_wait_all(); /* no collective is running: the counts are still */
    s = c->stats;
    return s;
}

void comm_stats_add(struct comm *c, enum comm_op op, double task_s, double wire_s)
{
    c->stats.count[op]++;
    c->stats.task_s[op] += task_s;
    c->stats.wire_s[op] += wire_s;
}

enum comm_backend comm_backend(const struct comm *c)
{
    return c->backend;
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
