/* collectives.c: ZeRO-3's collectives (all-gather, reduce-scatter, all-reduce) as StarPU tasks
 * over a communicator's transport (runtime/comm.h).
 *
 * The pattern: one task per collective and process, whose buffers are all local ranks' tensors,
 * plus the communicator's token accessed RW: shard[0..L-1], full[0..L-1], token for all-gather
 * and reduce-scatter whatever the direction, t[0..L-1], token for all-reduce. For NCCL the
 * codelet asks for specific memory nodes, so StarPU puts rank r's buffers on GPU r whichever
 * CUDA worker runs the task; the task issues every GPU's call in one ncclGroupStart/End on
 * per-GPU streams and waits for them.
 *
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
 * The codelets: the host backend's buffers stay in RAM, so one codelet serves every
 * communicator. NCCL's nodes[] depend on the number of local ranks alone (local rank r is always
 * StarPU's r-th CUDA worker, comm.h), so there is one codelet per local rank count and buffer
 * layout, made by the first communicator that needs it.
 *
 * In the simulation (rt_machine()), whose GPUs have NCCL communicators without NCCL, the NCCL
 * codelet's tasks keep their shape and are timed by the machine's ring formula
 * (machine_collective_us); their function never runs. Real runs have no model for them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "machine.h"
#include "timer.h"

struct collective_args {
    struct comm *c;
    enum comm_op op;
    size_t shard; /* elements */
    enum dtype dt;
};

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

/* Across processes: the ranks of one process are contiguous in global order, so an all-gather of
 * each process's packed shards is the whole gather, and a reduce-scatter is an all-to-all of the
 * slices each process's ranks own followed by the same ordered sum as in one process. One MPI
 * element is one shard. */
static void collective_host_func(void *b[], void *cl_arg)
{
    const struct collective_args *a = cl_arg;
    struct comm *c = a->c;
    int L = comm_local(c), P = comm_processes(c), W = P * L;
    size_t bytes = a->shard * dtype_size(a->dt);
    double t0 = timer_now_s(), t_mpi = 0;
    if (a->op == COMM_OP_ALL_REDUCE) {
        /* every rank's vector, in global order: this process's buffers, or all processes' */
        char *all = NULL, **terms = malloc(W * sizeof *terms);
        CHECK(terms);
        if (P > 1) {
            char *packed = comm_stage(c, (size_t)(L + W) * bytes);
            all = packed + (size_t)L * bytes;
            for (int r = 0; r < L; r++)
                memcpy(packed + r * bytes, RT_PTR(b, r), bytes);
            t_mpi = comm_mpi_all_gather(c, packed, all, bytes, L);
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
        if (P == 1) {
            for (int g = 0; g < W; g++)
                memcpy(full0 + g * bytes, RT_PTR(b, g), bytes);
        } else {
            char *packed = comm_stage(c, L * bytes);
            for (int r = 0; r < L; r++)
                memcpy(packed + r * bytes, RT_PTR(b, r), bytes);
            t_mpi = comm_mpi_all_gather(c, packed, full0, bytes, L);
        }
        for (int r = 1; r < L; r++)
            memcpy(RT_PTR(b, L + r), full0, W * bytes);
    } else {
        char *recv = NULL, **terms = malloc(W * sizeof *terms);
        CHECK(terms);
        if (P > 1) {
            char *send = comm_stage(c, 2 * (size_t)W * L * bytes);
            recv = send + (size_t)W * L * bytes;
            for (int p = 0; p < P; p++)
                for (int r = 0; r < L; r++)
                    memcpy(send + (size_t)(p * L + r) * L * bytes,
                           (char *)RT_PTR(b, L + r) + (size_t)p * L * bytes, L * bytes);
            t_mpi = comm_mpi_all_to_all(c, send, recv, bytes, L * L);
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
    comm_stats_add(c, a->op, timer_now_s() - t0, t_mpi);
}

static struct starpu_codelet host_cl = {
    .cpu_funcs = {collective_host_func},
    .nbuffers = STARPU_VARIABLE_NBUFFERS,
    .name = "comm",
};

/* ---- NCCL backend ---- */

/* Runs on any CUDA worker: the buffers sit on their GPUs' nodes (specific_nodes), every GPU's
 * call goes into one group on that GPU's stream, and the task ends when all streams have. */
static void collective_nccl_func(void *b[], void *cl_arg)
{
    const struct collective_args *a = cl_arg;
    struct comm *c = a->c;
    int L = comm_local(c);
    void *shard[COMM_MAX_LOCAL], *full[COMM_MAX_LOCAL];
    double t0 = timer_now_s();
    for (int r = 0; r < L; r++) {
        /* all-reduce: buffer r is rank r's vector, reduced in place; full is not used */
        shard[r] = RT_PTR(b, r);
        full[r] = a->op == COMM_OP_ALL_REDUCE ? NULL : RT_PTR(b, L + r);
    }
    comm_nccl_issue(c, a->op, shard, full, a->shard, a->dt);
    comm_nccl_wait(c);
    double s = timer_now_s() - t0;
    comm_stats_add(c, a->op, s, s);
}

/* The simulation's duration of a collective task over all of the communicator's ranks, us. */
static double collective_us(const struct collective_args *a)
{
    int W = comm_world(a->c);
    double vector = (double)a->shard * dtype_size(a->dt); /* a shard, or the all-reduced vector */
    return machine_collective_us(rt_machine(), W, vector * (a->op == COMM_OP_ALL_REDUCE ? 2 : W));
}
static double collective_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,
                              unsigned nimpl)
{
    return collective_us(t->cl_arg);
}
static struct starpu_perfmodel collective_machine_model = {.type = STARPU_PER_ARCH,
                                                           .arch_cost_function = collective_cost,
                                                           .symbol = "gpt50b_comm_machine"};

/* [local rank count][0: all-gather and reduce-scatter, 1: all-reduce] */
static struct starpu_codelet nccl_cl[COMM_MAX_LOCAL + 1][2];
static pthread_mutex_t nccl_cl_lock = PTHREAD_MUTEX_INITIALIZER;

/* The NCCL codelet for c's buffers: rank r's on its GPU's node, the token on the node of the
 * worker that runs the task. */
static struct starpu_codelet *nccl_codelet(struct comm *c, int all_reduce)
{
    int L = comm_local(c), token = all_reduce ? L : 2 * L;
    struct starpu_codelet *cl = &nccl_cl[L][all_reduce];
    CHECK(pthread_mutex_lock(&nccl_cl_lock) == 0);
    if (!cl->name) {
        *cl = (struct starpu_codelet){.cuda_funcs = {collective_nccl_func},
                                      .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                      .specific_nodes = 1,
                                      .model = rt_machine() ? &collective_machine_model : NULL};
        for (int r = 0; r < L; r++)
            cl->nodes[r] = cl->nodes[L + r] = comm_node(c, r);
        cl->nodes[token] = STARPU_SPECIFIC_NODE_LOCAL;
        cl->name = "comm";
    }
    for (int r = 0; r < L; r++) /* in every communicator, local rank r is the r-th CUDA worker */
        CHECK(cl->nodes[r] == comm_node(c, r));
    CHECK(pthread_mutex_unlock(&nccl_cl_lock) == 0);
    return cl;
}

/* ---- the submitters ---- */

static struct starpu_codelet *codelet(struct comm *c, int all_reduce)
{
    return comm_backend(c) == COMM_BACKEND_NCCL ? nccl_codelet(c, all_reduce) : &host_cl;
}

static enum rt_where where(const struct comm *c)
{
    return comm_backend(c) == COMM_BACKEND_NCCL ? RT_WHERE_COMPUTE : RT_WHERE_CPU;
}

/* Submits the collective task; the simulation's never runs, so comm_stats counts it here, with
 * the duration it is simulated to take. */
static void submit_task(struct comm *c, const struct collective_args *a, struct rt_buf *bufs,
                        int nbufs, const char *name)
{
    rt_submit(codelet(c, a->op == COMM_OP_ALL_REDUCE), name, bufs, nbufs, a, sizeof *a, 0,
              RT_PRIO_HIGH, where(c));
    if (rt_machine()) comm_stats_add(c, a->op, collective_us(a) * 1e-6, collective_us(a) * 1e-6);
}

static void submit(struct comm *c, enum comm_op op, struct tensor **shard, struct tensor **full,
                   size_t shard_elems)
{
    int L = comm_local(c), W = comm_world(c);
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
    bufs[2 * L] = (struct rt_buf){comm_token(c), RT_RW};
    struct collective_args a = {c, op, shard_elems, dt};
    submit_task(c, &a, bufs, 2 * L + 1, op == COMM_OP_ALL_GATHER ? "all_gather" : "reduce_scatter");
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
    int L = comm_local(c);
    struct rt_buf bufs[COMM_MAX_LOCAL + 1];
    for (int r = 0; r < L; r++) {
        CHECK_MSG(t[r]->type == t[0]->type && t[0]->type != TENSOR_TYPE_I32 && t[r]->n >= n,
                  "all-reduce over tensors of different or integer types, or too small");
        bufs[r] = (struct rt_buf){t[r], RT_RW};
    }
    bufs[L] = (struct rt_buf){comm_token(c), RT_RW};
    struct collective_args a = {c, COMM_OP_ALL_REDUCE, n, (enum dtype)t[0]->type};
    submit_task(c, &a, bufs, L + 1, "all_reduce");
}
