/* rt.h: the one place that owns StarPU.
 *
 * Everything above this layer (codelets' submitters excepted) speaks of `struct tensor`, never of
 * StarPU handles. A tensor is a named, typed, 1-D buffer registered as a StarPU vector; its host
 * copy may be absent (home node -1) for buffers that only ever live on workers, such as
 * activations and scratch space. Submission goes through rt_submit(), which turns a list of
 * (tensor, access mode) pairs into a task: dependencies come from the access modes alone.
 *
 * Environment: StarPU's own variables keep their documented meaning (STARPU_SCHED, STARPU_NCPU,
 * STARPU_NCUDA, STARPU_LIMIT_*, STARPU_FXT_*, STARPU_CALIBRATE, ...). rt_init() only fills in
 * defaults for what the user left unset. */
#ifndef GPT50B_RT_H
#define GPT50B_RT_H

#include <stddef.h>
#include <stdint.h>

#include <starpu.h>

#include "dtype.h"
#include "pool.h"

struct machine;

/* Element types of tensors: the model's dtypes plus int32 for token ids. */
enum tensor_type {
    TENSOR_TYPE_FP32 = DTYPE_FP32,
    TENSOR_TYPE_FP16 = DTYPE_FP16,
    TENSOR_TYPE_BF16 = DTYPE_BF16,
    TENSOR_TYPE_I32,
};

/* Where a tensor's host copy lives. Pinned memory is a scarce resource (containers cap it, and
 * every pinned byte is unswappable): only small, often-copied tensors ask for it. */
enum tensor_host {
    TENSOR_HOST_NONE,     /* no host copy: the buffer is created where first written */
    TENSOR_HOST_PAGEABLE, /* zeroed host copy */
    TENSOR_HOST_PINNED,   /* the same, a piece of the run's pinned pool (rt_pool_init); pageable
                             when there is no pool */
};

struct tensor {
    char name[96];
    enum tensor_type type;
    size_t n;   /* elements */
    void *host; /* host copy, NULL when the tensor has none */
    enum tensor_host host_kind;
    starpu_data_handle_t handle;
    size_t offset;        /* a tile: its first element within the whole tensor, else 0 */
    int ntiles;           /* a whole tensor split by tensor_tiles: the tile count, else 0 */
    int compute_tiles;    /* kernels run one task per tile (memory-centric tiling); else the
                             split serves the optimizer's tasks only */
    struct tensor *tiles; /* [ntiles] */
    starpu_data_handle_t *tile_handles; /* [ntiles] */
};

/* Where compute tasks run: GPUs when StarPU found any, else CPUs. */
enum rt_device {
    RT_DEVICE_CPU,
    RT_DEVICE_CUDA,
};

struct rt_options {
    int quiet;       /* no banner */
    int cpu_workers; /* host-side tasks will run on CPU workers (offloaded optimizer): with a GPU,
                        lws; otherwise prio, whose pushes of GPU tasks leave idle CPU workers
                        asleep (StarPU's CPU workers start either way; STARPU_NCPU decides) */
    int trace_later; /* FxT records only between rt_trace_start and rt_trace_stop */
    int mpi;         /* a run of several processes (mpirun): rt_init initialises MPI with
                        MPI_THREAD_MULTIPLE (collectives run on worker threads), splits
                        the node's CPUs between its processes, then starts StarPU */
    /* The simulation build's machine (machine.h; it must outlive the runtime): its GPUs are the
     * simulated CUDA workers' (gpu_sim.c), its figures time the tasks that have no calibrated
     * history (codelets/). NULL in real builds, required in the simulation build. */
    const struct machine *machine;
};

/* 1 in the simulation build (-Dsimulation=true: StarPU on SimGrid runs the task graph over a
 * described machine, docs/simulation.md; no kernel runs, no data moves, times are simulated), 0
 * in the real builds. Known before rt_init. */
int rt_simulated(void);
/* The simulated machine once rt_init ran in the simulation build; NULL in a real run. */
const struct machine *rt_machine(void);

/* FxT recording of a window (STARPU_FXT_TRACE on). Both wait for every submitted task first, so
 * the window holds whole tasks only (the iteration before it loses its overlap with the window's
 * first one). */
void rt_trace_start(void);
void rt_trace_stop(void);

/* Memory of the first GPU StarPU would use, in bytes, asked before StarPU starts (for the
 * memory plan); 0 without a GPU or with STARPU_NCUDA=0. */
int64_t rt_probe_gpu_bytes(void);

/* An MPI launch as the launcher's environment tells it, before MPI starts: Open MPI's mpirun
 * (OMPI_COMM_WORLD_*), or a PMI launcher such as MPICH's Hydra or srun --mpi=pmi2 (PMI_SIZE,
 * PMI_RANK, MPI_LOCALRANKID or SLURM_LOCALID). size 1 and rank 0 when the program was not
 * launched so; local_rank and local_size -1 when the launcher does not say. */
struct rt_launch {
    int size, rank;             /* processes, and this one's index */
    int local_rank, local_size; /* on this node */
};
struct rt_launch rt_mpi_launch(void);
/* Several processes: gives this one GPUs [local_rank * per_process, (local_rank+1) *
 * per_process) by setting CUDA_VISIBLE_DEVICES, as a PyTorch job's torch.cuda.set_device(
 * local_rank) does, unless CUDA_VISIBLE_DEVICES or STARPU_WORKERS_CUDAID is set already (the
 * user's choice wins). Call before anything asks CUDA about devices. */
void rt_mpi_pick_gpus(const struct rt_launch *l, int per_process);

/* Starts StarPU (and cuBLAS on every CUDA worker). Without a GPU and without STARPU_SCHED, the
 * default policy is peager, which runs each CPU task as one fork-join task over all CPU workers:
 * the model's graph is mostly a chain, so parallelism has to come from inside the kernels. */
void rt_init(const struct rt_options *opt);
void rt_shutdown(void);
/* This process's rank and the number of processes; 0 and 1 without rt_options.mpi. */
int rt_mpi_rank(void);
int rt_mpi_size(void);
enum rt_device rt_device(void);
/* "H100 80GB HBM3" or the CPU model; for logs and result files. */
const char *rt_device_name(void);
int rt_ncuda(void);
int rt_ncpu(void);
/* The NUMA nodes that StarPU bound its CPU workers (the CPU AdamW's) to, as a list like "0" or
 * "0-1" into buf; "" without CPU workers. StarPU places them (STARPU_WORKERS_CPUID,
 * STARPU_WORKERS_COREID, STARPU_WORKERS_NOBIND), and this program never overrides that. */
void rt_cpu_worker_nodes(char *buf, size_t len);

/* Creates the bounded pool of pinned host memory (pool.h) from which TENSOR_HOST_PINNED copies
 * are carved; bytes as host_pool_piece_bytes sums them. After rt_init, one pool at a time: the
 * owner of its tensors frees them, then calls rt_pool_release. User error when the memory cannot
 * be had. */
void rt_pool_init(size_t bytes);
void rt_pool_release(void);
struct host_pool_info rt_pool_info(void);

/* Registers a tensor of n elements with the given host copy. */
void tensor_init(struct tensor *t, const char *name, enum tensor_type type, size_t n,
                 enum tensor_host host);
void tensor_free(struct tensor *t);
/* Faults in bytes [first, first + bytes) of t's pageable host copy (first a multiple of 4096),
 * its contents unchanged, so that the tasks that first write it pay no page faults; callable
 * from any thread, before any task uses t. Nothing for other copies (the pinned pool is touched
 * when made) and in the simulation. */
void tensor_touch_host(struct tensor *t, size_t first, size_t bytes);
/* Splits t into ntiles tensors of whole rows (`row` elements each); tile i holds rows
 * [i*rows/ntiles, (i+1)*rows/ntiles) and its `offset` says where it starts. The tiles are
 * separate data (StarPU's asynchronous partitioning): a task on a tile moves only that tile to
 * its worker, and tasks on t and on its tiles may be mixed freely, StarPU switching between the
 * two in t's host copy (so t needs one, and the switch costs a round trip through RAM when t
 * was last written on a GPU). Call before any task uses t. Returns t's tiles, made on the first
 * call; later calls must ask for the same split. Tiles are freed with t, never by tensor_free. */
struct tensor *tensor_tiles(struct tensor *t, int ntiles, size_t row);
size_t tensor_bytes(const struct tensor *t);
/* Tile count that compute kernels must use: t's tiles under memory-centric tiling, else 0. */
int tensor_compute_tiles(const struct tensor *t);
/* A hint that no task will use t for a while: once the tasks submitted so far are done, its copies
 * away from its home are the first StarPU evicts under memory pressure, and a copy newer than the
 * home is written back there when the link is idle (parameter and gradient offload). */
void tensor_wont_use(struct tensor *t);
/* Frees t's copies on the GPUs now, where no task is using them and the home holds the data (or
 * is getting it): a copy in use, or newer than the home, stays. For a tensor that no task will
 * read on a GPU before it is written again elsewhere, whose GPU memory the coming tasks need. */
void tensor_evict_from_gpus(struct tensor *t);
/* Blocks until all submitted tasks writing t are done and makes the host copy current (read), or
 * exclusive (write). Pair with tensor_release. */
void *tensor_acquire_read(struct tensor *t);
void *tensor_acquire_write(struct tensor *t);
void tensor_release(struct tensor *t);
/* The same on memory node `node` (a GPU's: comm_node), read and write: returns t's address there,
 * for benchmarks that hand it to a library directly. Pair with tensor_release_on_node. */
void *tensor_acquire_on_node(struct tensor *t, int node);
void tensor_release_on_node(struct tensor *t, int node);

/* Per-task scratch space of at least `bytes`, or NULL when not needed (bytes 0, or no GPU:
 * CPU kernels need none). Tensors are cached by size and freed at rt_shutdown. */
struct tensor *rt_scratch(size_t bytes);
/* The simulation: the disk of the node whose GPU runs the compute submitted now (rt_set_worker's
 * worker; node 0 without one), a void tensor that every NVMe swap task of that node accesses
 * read-write and commutative, so that they take turns on it (SimGrid would otherwise run them at
 * once, each at the full rate) without an order imposed. NULL in a real run, whose disk does
 * its own queueing. Freed at rt_shutdown. */
struct tensor *rt_disk(void);

enum rt_mode {
    RT_R,
    RT_W,
    RT_RW,
    RT_SCRATCH,
    RT_RW_COMMUTE, /* accumulators updated in any order */
};

struct rt_buf {
    struct tensor *t; /* NULL entries are skipped */
    enum rt_mode mode;
};

/* Task priorities: the critical path first. Below RT_PRIO_LOW, any integer orders low tasks
 * among themselves (rt_submit raises it to the scheduler's minimum where that is higher). */
enum rt_prio {
    RT_PRIO_LOW = 0,
    RT_PRIO_NORMAL = 1,
    RT_PRIO_HIGH = 2,
};

/* Which workers may run a task. */
enum rt_where {
    RT_WHERE_COMPUTE, /* the compute device: CUDA workers when there are any, else CPU workers */
    RT_WHERE_CPU,     /* CPU workers (host-side work: offloaded optimizer, I/O) */
};

/* The most buffers of one task (StarPU's STARPU_NMAXBUFS and more). */
#define RT_MAX_BUFS 128

/* Submits one task of codelet cl on buffers bufs (NULL tensors skipped, order kept) with a copy
 * of args (args_size bytes, freed by StarPU; none when 0) as cl_arg. `flops` feeds STARPU_FLOPS (0:
 * none). Asynchronous: returns once submitted. */
void rt_submit(struct starpu_codelet *cl, const char *name, const struct rt_buf *bufs, int nbufs,
               const void *args, size_t args_size, double flops, int prio, enum rt_where where);
/* Tasks submitted from now on for RT_WHERE_COMPUTE run on StarPU worker `worker` (a data-parallel
 * rank's GPU), or on any worker of the compute device with -1 (the default). RT_WHERE_CPU tasks
 * are never pinned. For the submitting thread; graph/ sets it around each rank's tasks. */
void rt_set_worker(int worker);
/* Waits for every submitted task. */
void rt_wait_all(void);
/* Tasks rt_submit submitted since the start. */
int64_t rt_tasks_submitted(void);
/* A mark: the tasks submitted between rt_mark_begin and rt_mark_end (by any thread), and
 * rt_mark_ended_s, once they have all ended (after rt_wait_all, say), the timer_now_s time at
 * which the last of them ended, or rt_mark_begin's when none was submitted. One mark at a time: a
 * new one begins after the last one's tasks have ended. For the clock of work that runs on
 * asynchronously, such as an optimizer step the next iteration overlaps. */
void rt_mark_begin(void);
void rt_mark_end(void);
double rt_mark_ended_s(void);

/* Memory, for logs: the peak resident set of this process in bytes (what the kernel counted: all
 * tensors, StarPU's and the libraries' own), and the bytes that StarPU allocated and holds in RAM
 * (cuda_index -1) or on the GPU of the cuda_index-th CUDA worker (0 without one): the buffers of
 * tensors without a host copy, and on GPUs copies and StarPU's allocation cache, which it
 * empties only under memory pressure (without pressure: the run's high-water mark). */
int64_t rt_peak_rss_bytes(void);
int64_t rt_starpu_bytes_used(int cuda_index);

/* For CPU implementations of codelets: sets the OpenMP thread count to the size of the
 * (combined) worker running the task, and returns it. */
int rt_cpu_task_begin(void);
/* For cost functions (STARPU_PER_ARCH models) of fork-join CPU codelets: the cores task t gets
 * on arch. The schedulers ask with the combined worker's arch; StarPU on SimGrid asks a running
 * task's duration with its master worker's own arch (1 core), so the running worker's size
 * counts then. */
int rt_task_cores(struct starpu_task *t, struct starpu_perfmodel_arch *arch);

/* For CUDA implementations of codelets (codelet_def.h calls them around each one): with
 * GPT50B_CUDA_EVENTS=FILE set, a timing event pair on the worker's stream around the task's
 * kernels, written to FILE as CSV at rt_shutdown (gpu.h's timeline; scripts/cuda_profile.py makes
 * the per-kernel table of an iteration and the GPU's idle gaps between tasks). Otherwise nothing.
 */
void rt_cuda_task_begin(void);
void rt_cuda_task_end(void);

/* Buffer i of a codelet's buffers array as a raw pointer. */
#define RT_PTR(buffers, i) ((void *)STARPU_VECTOR_GET_PTR((buffers)[i]))

#endif
