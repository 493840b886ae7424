/* comm.h: data-parallel collectives (all-gather, reduce-scatter) as StarPU tasks, for ZeRO-3.
 *
 * A communicator has W ranks; this process owns `local` of them, and every process the same
 * number, so W = processes x local and global rank = process rank * local + local rank. Each
 * local rank has its own tensors (shards and full buffers), and a collective names all local
 * ranks' tensors at once:
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
 * The pattern: one task per collective and process, whose buffers are all local ranks' tensors,
 * plus a per-communicator token accessed RW. For NCCL the codelet asks for specific memory
 * nodes, so StarPU puts rank r's buffers on GPU r whichever CUDA worker runs the task; the task
 * issues every GPU's call in one ncclGroupStart/End on per-GPU streams and waits for them.
 * Why not one launcher task per GPU: NCCL needs the W calls of a collective to be issued
 * together (one thread: one group; several threads: all of them at the same time), and per-GPU
 * tasks blocking their workers until their peers arrive deadlock as soon as the scheduler runs
 * two GPUs' launchers of different collectives in different orders, or delays one behind work
 * that waits for the other. Deadlock freedom here: (1) the token makes a process execute its
 * collectives one at a time in submission order, so a process that submits the same sequence
 * of collectives as its peers (SPMD code) also calls NCCL/MPI in that order; (2) a running
 * collective waits only for the same collective in other processes, which starts once its
 * inputs are ready there; those inputs need only that process's own tasks and its earlier
 * collectives, which finish by induction, and blocking one worker per process never stops
 * another process. The cost: a collective holds one worker (a CPU worker, or for NCCL one CUDA
 * worker's thread, not its GPU) until it ends, and collectives of one communicator never
 * overlap each other; make a second communicator for a second stream of collectives.
 *
 * All-reduce (comm_all_reduce) is the same pattern over one buffer per local rank and the token.
 *
 * Limits: local <= COMM_MAX_LOCAL (2 buffers per local rank and the token in STARPU_NMAXBUFS);
 * host collectives across processes send one shard as one MPI element, so a shard is at most
 * 2 GiB. Every process must create and destroy its communicators in the same order. With several
 * processes on one machine, give each its own GPUs (CUDA_VISIBLE_DEVICES or
 * STARPU_WORKERS_CUDAID): NCCL refuses two ranks on one GPU. */
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
struct ncclComm;

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
/* Rank r's NCCL communicator (ncclComm_t), NULL for the host backend; for benchmarks. */
struct ncclComm *comm_nccl(const struct comm *c, int local_rank);

/* Elements per rank's shard of an n-element tensor: the smallest s with world * s >= n whose
 * byte size s * elem_bytes is a multiple of align_bytes (0 or 1: no alignment). Full buffers then
 * hold world * s elements; the caller keeps those past n at zero (the last ranks' padding). */
size_t comm_shard_elems(size_t n, int world, size_t align_bytes, size_t elem_bytes);

/* For every local rank r: full[r] (world * shard_elems elements) = the concatenation of all
 * ranks' shard[] (shard_elems each) in global-rank order. shard[] read, full[] written; all
 * tensors of one dtype (fp32, fp16 or bf16). One task; returns once submitted. */
void comm_all_gather(struct comm *c, struct tensor **shard, struct tensor **full,
                     size_t shard_elems);
/* For every local rank r: shard[r] = the sum over all ranks g of full_g's slice
 * [comm_rank(c, r) * shard_elems, +shard_elems). full[] read, shard[] written; dtypes as above.
 * One task; returns once submitted. */
void comm_reduce_scatter(struct comm *c, struct tensor **full, struct tensor **shard,
                         size_t shard_elems);

/* For every local rank r: t[r][0..n) = the sum over all ranks g of t_g[0..n) (host backend: in
 * fp32 in global-rank order, rounded once, so every rank gets the same bits whatever the split
 * into processes). t[] read and written. One task; returns once submitted. For the global
 * gradient norm that every rank's optimizer step reads. */
void comm_all_reduce(struct comm *c, struct tensor **t, size_t n);

/* What this process's collective tasks took so far, per operation (0 all-gather, 1
 * reduce-scatter, 2 all-reduce): how many ran, the seconds inside the tasks, and of those the
 * seconds in MPI's collective call (host backend across processes; 0 in one process) or in
 * NCCL's calls and the wait for their streams, which hold the wait for the other processes to
 * reach the same collective; and the submitting thread's comm_allreduce_host calls. Waits for every
 * submitted task first. */
enum { COMM_NOPS = 3 };
struct comm_stats {
    int64_t count[COMM_NOPS];
    double task_s[COMM_NOPS], wire_s[COMM_NOPS];
    int64_t host_count; /* comm_allreduce_host calls (the logged loss), and their seconds */
    double host_s;
};
struct comm_stats comm_stats(struct comm *c);

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

#endif
