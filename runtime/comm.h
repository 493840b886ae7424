/* comm.h: the data-parallel communicator of ZeRO-3 (its ranks) and the transport under its
 * collectives (MPI, NCCL).
 *
 * A communicator has W ranks; this process owns `local` of them, and every process the same
 * number, so W = processes x local and global rank = process rank * local + local rank. Each
 * local rank has its own tensors (shards and full buffers), and a collective names all local
 * ranks' tensors at once. The collectives are tasks of the codelets layer (codelets.h:
 * comm_all_gather, comm_reduce_scatter, comm_all_reduce; codelets/collectives.c says how they
 * stay free of deadlock):
 *
 *     struct comm *c = comm_create(&(struct comm_config){COMM_BACKEND_NCCL, 0});
 *     size_t s = comm_shard_elems(n, comm_world(c), 4096, 2);
 *     // shard[r]: s elements, full[r]: comm_world(c) * s elements, for r < comm_local(c)
 *     comm_all_gather(c, shard, full, s);      // forward: gather the weights
 *     ...tasks reading full[r] on comm_worker(c, r)...
 *     comm_reduce_scatter(c, dfull, dshard, s); // backward: sum the gradients, keep our slice
 *
 * Backends:
 *   COMM_BACKEND_HOST  host buffers, CPU workers. Local ranks are simulated in this process (how
 *                      CI runs a ZeRO-3 graph with several ranks on one machine); across
 *                      processes (rt_options.mpi) the data moves by MPI collectives on a
 *                      duplicate of MPI_COMM_WORLD. Reduce-scatter sums in fp32 in the fixed
 *                      order of global ranks 0, 1, ..., W-1 and rounds once: bit-reproducible,
 *                      the same whatever the split into processes.
 *   COMM_BACKEND_NCCL  one rank per local GPU, local rank r being StarPU's r-th CUDA worker
 *                      (StarPU's default of one worker per GPU); across processes too, the
 *                      ncclUniqueId going out over MPI. NCCL's own summation order applies.
 *
 * Limits: local <= COMM_MAX_LOCAL (a collective task has 2 buffers per local rank and the
 * communicator's token, within STARPU_NMAXBUFS); host collectives across processes send one
 * shard as one MPI element, so a shard is at most 2 GiB. Every process must create and destroy
 * its communicators in the same order. With several processes on one machine, give each its own
 * GPUs (CUDA_VISIBLE_DEVICES or STARPU_WORKERS_CUDAID): NCCL refuses two ranks on one GPU. */
#ifndef GPT50B_COMM_H
#define GPT50B_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "rt.h"

#define COMM_MAX_LOCAL ((STARPU_NMAXBUFS - 1) / 2)

enum comm_backend {
    COMM_BACKEND_HOST,
    COMM_BACKEND_NCCL,
};

struct comm_config {
    enum comm_backend backend;
    int local; /* ranks in this process; NCCL: 0 = one per CUDA worker, else the first `local` */
};

struct comm;

/* After rt_init; collective over all processes (MPI runs). User error for a configuration that
 * cannot be had (no GPU or no NCCL for COMM_BACKEND_NCCL, local out of range or different in two
 * processes, two CUDA workers on one GPU). */
struct comm *comm_create(const struct comm_config *cfg);
/* Waits for the communicator's collectives, then frees it. Before rt_shutdown. */
void comm_destroy(struct comm *c);

int comm_world(const struct comm *c);
int comm_local(const struct comm *c);
/* Global rank of local rank r. */
int comm_rank(const struct comm *c, int local_rank);
/* StarPU worker that should run rank r's compute (its GPU's CUDA worker), or -1: any CPU
 * worker. */
int comm_worker(const struct comm *c, int local_rank);
/* Memory node where rank r's buffers live during collectives. */
int comm_node(const struct comm *c, int local_rank);

/* Elements per rank's shard of an n-element tensor: the smallest s with world * s >= n whose
 * byte size s * elem_bytes is a multiple of align_bytes (0 or 1: no alignment). Full buffers then
 * hold world * s elements; the caller keeps those past n at zero (the last ranks' padding). */
size_t comm_shard_elems(size_t n, int world, size_t align_bytes, size_t elem_bytes);

/* The collectives, also the index of comm_stats' arrays. */
enum comm_op {
    COMM_OP_ALL_GATHER,
    COMM_OP_REDUCE_SCATTER,
    COMM_OP_ALL_REDUCE,
    COMM_NOPS,
};

/* What this process's collective tasks took so far, per operation: how many ran, the seconds
 * inside the tasks, and of those the seconds in MPI's collective call (host backend across
 * processes; 0 in one process) or in NCCL's calls and the wait for their streams, which hold the
 * wait for the other processes to reach the same collective; and the submitting thread's
 * comm_allreduce_host calls. Waits for every submitted task first. In the simulation, whose
 * collective tasks never run, they count when submitted, with their simulated durations. */
struct comm_stats {
    int64_t count[COMM_NOPS];
    double task_s[COMM_NOPS], wire_s[COMM_NOPS];
    int64_t host_count; /* comm_allreduce_host calls (the logged loss), and their seconds */
    double host_s;
};
struct comm_stats comm_stats(struct comm *c);

enum comm_backend comm_backend(const struct comm *c);
/* This process's index and the number of processes (0 and 1 without MPI). */
int comm_process(const struct comm *c);
int comm_processes(const struct comm *c);

/* Host-memory transfers between processes, for checkpoints and checks. They block; call them
 * from the submitting thread, in the same order in every process (one process: no MPI). */

/* vals[i] = the sum of vals[i] over processes (one process: unchanged). For logging (losses,
 * norms). */
void comm_allreduce_host(struct comm *c, double *vals, int n);
/* buf (bytes, at most 2 GiB) = process 0's buf, in every process. */
void comm_bcast_host(struct comm *c, void *buf, size_t bytes);
/* In place: process p's part is buf[p * bytes, (p+1) * bytes) (at most 2 GiB); process 0
 * receives every other process's part at its place, the others' buf is only read. */
void comm_gather_host(struct comm *c, void *buf, size_t bytes);
/* 1 when `value` is the same in every process (e.g. a hash of the command line), else 0; the
 * same answer in every process. */
int comm_same_everywhere(struct comm *c, uint64_t value);

/* The transport, for the collective tasks (codelets/collectives.c). The task running these holds
 * the communicator's token, so they run one at a time per communicator, in the order in which
 * the collectives were submitted, the same in every process. */

/* The void tensor that orders the communicator's collectives: every collective task accesses it
 * read-write. */
struct tensor *comm_token(struct comm *c);
/* The communicator's host buffer of at least `bytes`, to pack MPI messages in; valid until the
 * next call. */
void *comm_stage(struct comm *c, size_t bytes);
/* Host backend, several processes, on the tasks' own duplicate of MPI_COMM_WORLD, in blocks of
 * `block_bytes` (at most 2 GiB, one MPI element). All-gather: recv = every process's `count`
 * blocks of send, in process order. All-to-all: send holds `count` blocks for each process and
 * recv receives `count` blocks from each, both in process order. They block until every process
 * has called them, and return the seconds spent in the MPI call. */
double comm_mpi_all_gather(struct comm *c, const void *send, void *recv, size_t block_bytes,
                           int count);
double comm_mpi_all_to_all(struct comm *c, const void *send, void *recv, size_t block_bytes,
                           int count);
/* NCCL backend: for every local rank r, `op` on rank r's device buffers (all-gather: shard[r] into
 * full[r]; reduce-scatter: full[r] summed into shard[r]; all-reduce: shard[r] in place, full
 * unused), shard_elems elements of dt per shard, issued in one NCCL group on rank r's own stream.
 * Returns without waiting for the streams: comm_nccl_wait does. */
void comm_nccl_issue(struct comm *c, enum comm_op op, void *const *shard, void *const *full,
                     size_t shard_elems, enum dtype dt);
void comm_nccl_wait(struct comm *c);
/* Counts one collective task of `op` in comm_stats: its seconds, and of those the seconds in MPI
 * or NCCL. */
void comm_stats_add(struct comm *c, enum comm_op op, double task_s, double wire_s);

#endif
