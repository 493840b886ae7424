/* rt.c: StarPU start-up, tensors as StarPU vectors, and the generic task submitter. */
#include "rt.h"

#include <hwloc.h>
#include <limits.h>
#include <mpi.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <starpu_fxt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"
#include "gpu.h"
#include "host.h"
#include "machine.h"
#include "numa.h"
#include "pool.h"
#include "timer.h"

static enum rt_device device = RT_DEVICE_CPU;
/* the scheduler's lowest priority: rt_submit raises those below RT_PRIO_LOW (rt.h) to it where
 * the range stops at 0 (heteroprio) */
static int min_prio = INT_MIN;
static struct host_pool *pool;
static char device_name[128];
static int mpi_on, mpi_rank, mpi_size = 1;
static char cpu_split[160];       /* what mpi_split_cpus did, for the banner; "" when nothing */
static const char *timeline_path; /* GPT50B_CUDA_EVENTS, with CUDA workers; else NULL */

#define RT_MAX_SCRATCH 32
static struct tensor scratch[RT_MAX_SCRATCH];
static size_t scratch_bytes[RT_MAX_SCRATCH];
static int nscratch;

static const struct machine *machine; /* the simulation's, else NULL */
#define RT_MAX_DISKS 64
static struct tensor disks[RT_MAX_DISKS]; /* the simulation's, per node; made on first use */

/* True when the user left CUDA on and a GPU answers. Asked before StarPU starts so that the
 * default policy can depend on it. */
static int cuda_wanted(void)
{
    const char *ncuda = getenv("STARPU_NCUDA");
    if (ncuda && atoi(ncuda) == 0) return 0;
    return gpu_count() > 0;
}

int64_t rt_probe_gpu_bytes(void)
{
    return cuda_wanted() ? gpu_total_bytes(0) : 0;
}

static void cpu_model_name(char *out, size_t len)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, len, "CPU");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, len, "%.100s", colon + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    }
    fclose(f);
}

/* Several processes on one node that may all run on the same CPUs (mpirun --bind-to none, or a
 * taskset around mpirun): StarPU binds each process's workers from the first CPU it may use, so
 * every process's workers would sit on the same cores (measured on 2 cores, 2 processes x 1 CPU
 * rank: both CPU workers on core 0, core 1 idle, every collective waiting about 7 ms for the
 * other process's worker to get the core: 728 ms per iteration, 42 ms with the split). So
 * the node's processes split those CPUs: process i of k on the node takes whole cores [i n / k,
 * (i+1) n / k) of the n it may use (core i mod n when n < k), as mpirun --map-by slot:PE=n/k
 * --bind-to core would. The main thread's binding is set before StarPU starts, so StarPU's
 * workers, OpenMP's, NCCL's and the I/O engine's threads inherit it and StarPU binds within it
 * (STARPU_WORKERS_GETBIND, its default). Left alone when the processes were given different CPUs
 * (the launcher bound them) or when the user binds StarPU's workers himself
 * (STARPU_WORKERS_CPUID, STARPU_WORKERS_COREID, STARPU_WORKERS_NOBIND, STARPU_WORKERS_GETBIND=0)
 * or sets GPT50B_CPU_SPLIT=0. */
static void mpi_split_cpus(void)
{
    const char *getbind = getenv("STARPU_WORKERS_GETBIND"), *split = getenv("GPT50B_CPU_SPLIT");
    MPI_Comm node;
    int i, k;
    cpu_set_t mine;
    CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
          MPI_SUCCESS);
    MPI_Comm_rank(node, &i);
    MPI_Comm_size(node, &k);
    CPU_ZERO(&mine);
    CHECK(sched_getaffinity(0, sizeof mine, &mine) == 0);
    cpu_set_t *all = malloc(k * sizeof *all);
    CHECK(all);
    CHECK(MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, node) ==
          MPI_SUCCESS);
    MPI_Comm_free(&node);
    int same = 1, user = getenv("STARPU_WORKERS_CPUID") || getenv("STARPU_WORKERS_COREID") ||
                         getenv("STARPU_WORKERS_NOBIND") || (getbind && atoi(getbind) == 0) ||
                         (split && atoi(split) == 0);
    for (int p = 0; p < k; p++)
        same &= CPU_EQUAL(&all[p], &mine);
    free(all);
    if (k < 2 || !same || user) return;

    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return;
    }
    hwloc_cpuset_t allowed = hwloc_bitmap_alloc(), set = hwloc_bitmap_alloc();
    hwloc_obj_t cores[CPU_SETSIZE];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &mine)) hwloc_bitmap_set(allowed, (unsigned)c);
    for (hwloc_obj_t core = NULL;
         n < CPU_SETSIZE && (core = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_CORE, core));)
        if (hwloc_bitmap_intersects(core->cpuset, allowed)) cores[n++] = core;
    int lo = n >= k ? i * n / k : i % n, hi = n >= k ? (i + 1) * n / k : i % n + 1;
    for (int c = lo; c < hi; c++)
        hwloc_bitmap_or(set, set, cores[c]->cpuset);
    hwloc_bitmap_and(set, set, allowed);
    if (n > 0 && !hwloc_bitmap_iszero(set) &&
        hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD) == 0) {
        char list[64];
        hwloc_bitmap_list_snprintf(list, sizeof list, set);
        snprintf(cpu_split, sizeof cpu_split,
                 "> CPUs: %d processes on this node share %d cores; process 0 binds to CPUs %s "
                 "(GPT50B_CPU_SPLIT=0: no split)",
                 k, n, list);
    }
    hwloc_bitmap_free(set);
    hwloc_bitmap_free(allowed);
    hwloc_topology_destroy(topo);
}

/* MPI first, with MPI_THREAD_MULTIPLE (collectives run on worker threads), then StarPU alone:
 * every transfer between processes is our MPI or NCCL calls, none is StarPU-MPI's, whose start
 * would only reserve a core (one CPU worker fewer per process) for a progression thread that
 * has nothing to do. */
static void mpi_start(void)
{
    int provided;
    CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS);
    if (provided < MPI_THREAD_MULTIPLE)
        user_fail("this MPI lacks MPI_THREAD_MULTIPLE: use an MPI built with thread support");
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
    mpi_on = 1;
    mpi_split_cpus();
}

/* On a machine of several NUMA nodes with a GPU, unless the user binds StarPU's workers
 * (STARPU_WORKERS_CPUID, STARPU_WORKERS_COREID, STARPU_WORKERS_NOBIND), binds them to the cores
 * this thread may run on (after any split between processes) with the GPU's node first
 * (numa_cores_first), through starpu_conf so that no StarPU variable is set. One node, no GPU or
 * no answer from hwloc: StarPU's own binding. Writes a line for the banner into note. */
static void numa_order_workers(struct starpu_conf *conf, int with_cuda, char *note, size_t len)
{
    hwloc_topology_t topo;
    note[0] = 0;
    if (!with_cuda || getenv("STARPU_WORKERS_CPUID") || getenv("STARPU_WORKERS_COREID") ||
        getenv("STARPU_WORKERS_NOBIND") || hwloc_topology_init(&topo) != 0)
        return;
    hwloc_cpuset_t allowed = hwloc_bitmap_alloc(), mine = hwloc_bitmap_alloc();
    int gnode = hwloc_topology_load(topo) == 0 ? numa_gpu_node(topo) : -1;
    if (gnode >= 0 && hwloc_get_cpubind(topo, allowed, HWLOC_CPUBIND_THREAD) == 0) {
        int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE), n = 0, local = 0;
        unsigned *cpu = calloc(ncores + 1, sizeof *cpu);
        int *node = calloc(ncores + 1, sizeof *node);
        CHECK(cpu && node);
        for (hwloc_obj_t core = NULL;
             (core = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_CORE, core)) && n < ncores;) {
            hwloc_bitmap_and(mine, core->cpuset, allowed);
            hwloc_obj_t pu =
                hwloc_get_next_obj_inside_cpuset_by_type(topo, mine, HWLOC_OBJ_PU, NULL);
            if (!pu) continue;
            cpu[n] = pu->logical_index;
            node[n] = hwloc_bitmap_first(core->nodeset);
            local += node[n++] == gnode;
        }
        if (local > 0) {
            numa_cores_first(cpu, node, n, gnode, conf->workers_bindid, STARPU_NMAXWORKERS);
            conf->use_explicit_workers_bindid = 1;
            snprintf(note, len,
                     "> NUMA: StarPU's workers bound to the %d cores of the GPU's node %d first, "
                     "then the %d others (STARPU_WORKERS_CPUID overrides)",
                     local, gnode, n - local);
        }
        free(cpu);
        free(node);
    }
    hwloc_bitmap_free(mine);
    hwloc_bitmap_free(allowed);
    hwloc_topology_destroy(topo);
}

/* The first of the environment variables names that is set, as an int; else fallback. */
static int env_int(const char *const *names, int fallback)
{
    for (; *names; names++)
        if (getenv(*names)) return atoi(getenv(*names));
    return fallback;
}

struct rt_launch rt_mpi_launch(void)
{
    static const char *const size[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL},
                             *const rank[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL},
                             *const local_rank[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                                    "SLURM_LOCALID", NULL},
                             *const local_size[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                                    NULL};
    struct rt_launch l = {env_int(size, 1), env_int(rank, 0), env_int(local_rank, -1),
                          env_int(local_size, -1)};
    if (l.size < 1) l.size = 1;
    return l;
}

void rt_mpi_pick_gpus(const struct rt_launch *l, int per_process)
{
    char ids[256] = "";
    size_t len = 0;
    if (l->size < 2 || l->local_rank < 0 || getenv("CUDA_VISIBLE_DEVICES") ||
        getenv("STARPU_WORKERS_CUDAID"))
        return;
    for (int d = 0; d < per_process && len < sizeof ids; d++)
        len += snprintf(ids + len, sizeof ids - len, "%s%d", d ? "," : "",
                        l->local_rank * per_process + d);
    setenv("CUDA_VISIBLE_DEVICES", ids, 1);
}

void rt_init(const struct rt_options *opt)
{
    struct starpu_conf conf;
    CHECK_MSG(!opt->machine == !rt_simulated(),
              "the simulation build runs over a described machine, a real build over this one");
    if (opt->mpi && rt_simulated())
        user_fail("the simulation build runs as one process, which simulates every GPU of the "
                  "machine: run it without mpirun");
    machine = opt->machine;
    int with_cuda = cuda_wanted();
    starpu_conf_init(&conf);
    /* conf fields yield to STARPU_SCHED and STARPU_NCPU when the user set them. Without a GPU,
     * peager runs each task fork-join over all CPU workers. With one:
     * - host-side tasks (offloaded optimizer: AdamW and swap I/O on CPU workers): StarPU's CPU
     *   workers and lws. Measured on an H100 host (3.6B model, parameters and optimizer
     *   offloaded, docs/tuning.md): median iteration 1032 ms under lws, 1055 eager, 1143
     *   heteroprio, 1202 modular-heft, 1474 dmda, 1552 dmdas.
     * - every task on the GPU: StarPU's CPU workers too, under prio. lws (StarPU 1.4's
     *   ws_push_task, built with blocking drivers) wakes every worker of the context on every
     *   push; the thread that pushes a finished GPU task's successors is the CUDA worker's, so
     *   each GPU task paid a wake-up of each idle CPU worker, which then tried to steal from the
     *   CUDA worker's queue under its lock (issue 16, on an H100: 2 layers of width 2048, 20 ms
     *   per iteration with 15 CPU workers, 15 ms without). prio wakes only workers that can run
     *   the pushed task: on an H200 the 1.3B bf16 benchmark took 95.1 ms per iteration with 15
     *   CPU workers under prio and 95.3 ms with none (docs/tuning.md). */
    if (!with_cuda)
        conf.sched_policy_name = "peager";
    else if (opt->cpu_workers)
        conf.sched_policy_name = "lws";
    else
        conf.sched_policy_name = "prio";
    if (opt->trace_later) starpu_fxt_autostart_profiling(0);
    char numa_note[160];
    if (opt->mpi) mpi_start();
    numa_order_workers(&conf, with_cuda, numa_note, sizeof numa_note);
    int ret = starpu_initialize(&conf, NULL, NULL);
    if (ret == -ENODEV) user_fail("StarPU found no worker: check STARPU_NCPU and STARPU_NCUDA");
    CHECK_MSG(ret == 0, "starpu_initialize failed");
    host_started();
    min_prio = starpu_sched_get_min_priority();
    device = starpu_cuda_worker_get_count() > 0 ? RT_DEVICE_CUDA : RT_DEVICE_CPU;
    if (device == RT_DEVICE_CUDA) {
        for (int i = 0; i < rt_ncuda(); i++)
            gpu_check_code(
                starpu_worker_get_devid(starpu_worker_get_by_type(STARPU_CUDA_WORKER, i)));
        gpu_blas_init();
        gpu_name(starpu_worker_get_devid(starpu_worker_get_by_type(STARPU_CUDA_WORKER, 0)),
                 device_name, sizeof device_name);
    } else {
        cpu_model_name(device_name, sizeof device_name);
    }
    /* stdout, with the rest of the log: an error found later is then the only line on stderr */
    if (!opt->quiet && mpi_rank == 0)
        fprintf(stdout,
                "> StarPU %d.%d.%d, scheduler %s, %d CPU workers, %d CUDA workers, device %s\n",
                STARPU_MAJOR_VERSION, STARPU_MINOR_VERSION, STARPU_RELEASE_VERSION,
                starpu_sched_get_sched_policy()->policy_name, rt_ncpu(), rt_ncuda(), device_name);
    if (device == RT_DEVICE_CUDA && getenv("GPT50B_CUDA_EVENTS") && *getenv("GPT50B_CUDA_EVENTS"))
        timeline_path = getenv("GPT50B_CUDA_EVENTS");
    if (!opt->quiet && machine)
        printf("> simulation of %s (%s): %d x %d GPUs; times are simulated (StarPU on SimGrid)\n",
               machine->name, machine->path, machine->nodes, machine->gpus_per_node);
    if (!opt->quiet && mpi_rank == 0 && cpu_split[0]) printf("%s\n", cpu_split);
    if (!opt->quiet && mpi_rank == 0 && numa_note[0]) printf("%s\n", numa_note);
}

void rt_pool_init(size_t bytes)
{
    char err[256];
    CHECK_MSG(!pool, "rt_pool_init called twice");
    pool = host_pool_create(bytes, err, sizeof err);
    if (!pool) user_fail("%s", err);
}

void rt_pool_release(void)
{
    host_pool_destroy(pool);
    pool = NULL;
}

struct host_pool_info rt_pool_info(void)
{
    return pool ? host_pool_info(pool) : (struct host_pool_info){0, 0, 0, -1};
}

void rt_shutdown(void)
{
    if (timeline_path) {
        rt_wait_all();
        int err = gpu_timeline_write(timeline_path);
        if (err) user_fail("GPT50B_CUDA_EVENTS=%s: %s", timeline_path, strerror(-err));
        timeline_path = NULL;
    }
    rt_pool_release();
    for (int i = 0; i < nscratch; i++)
        tensor_free(&scratch[i]);
    nscratch = 0;
    for (int i = 0; i < RT_MAX_DISKS; i++)
        tensor_free(&disks[i]);
    if (device == RT_DEVICE_CUDA) gpu_blas_shutdown();
    if (!mpi_on) {
        starpu_shutdown();
        return;
    }
    starpu_shutdown();
    MPI_Finalize();
    mpi_on = 0;
}

int rt_mpi_rank(void)
{
    return mpi_rank;
}
int rt_mpi_size(void)
{
    return mpi_size;
}

enum rt_device rt_device(void)
{
    return device;
}
const char *rt_device_name(void)
{
    return device_name;
}
int rt_ncuda(void)
{
    return (int)starpu_cuda_worker_get_count();
}
int rt_ncpu(void)
{
    return (int)starpu_cpu_worker_get_count();
}

const struct machine *rt_machine(void)
{
    return machine;
}

static size_t type_size(enum tensor_type type)
{
    return type == TENSOR_TYPE_I32 ? sizeof(int32_t) : dtype_size((enum dtype)type);
}

size_t tensor_bytes(const struct tensor *t)
{
    return t->n * type_size(t->type);
}

void tensor_init(struct tensor *t, const char *name, enum tensor_type type, size_t n,
                 enum tensor_host host)
{
    size_t elem = type_size(type);
    /* StarPU vectors count elements in 32 bits. */
    CHECK_MSG(n > 0 && n <= UINT32_MAX, "tensor larger than 2^32 elements: split it");
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n = n;
    if (host == TENSOR_HOST_NONE) {
        starpu_vector_data_register(&t->handle, -1, 0, (uint32_t)n, elem);
    } else {
        /* Pinned copies are pieces of the run's pool (rt_pool_init); without one, and for
         * pageable copies, host_alloc's zero pages, sized against MemAvailable by the plan
         * (StarPU's own default RAM budget follows hwloc, which can be far below the RAM). */
        t->host = host == TENSOR_HOST_PINNED && pool ? host_pool_alloc(pool, n * elem) : NULL;
        CHECK_MSG(!(host == TENSOR_HOST_PINNED && pool) || t->host,
                  "the pinned pool is smaller than its plan");
        t->host_kind = t->host ? TENSOR_HOST_PINNED : TENSOR_HOST_PAGEABLE;
        /* Pool pieces are zero (the pool is zeroed once, pieces are never reused). */
        if (!t->host && !(t->host = host_alloc(n * elem)))
            user_fail("cannot allocate %zu bytes of host memory for %s: lower the model size",
                      n * elem, name);
        starpu_vector_data_register(&t->handle, STARPU_MAIN_RAM, (uintptr_t)t->host, (uint32_t)n,
                                    elem);
    }
    starpu_data_set_name(t->handle, t->name);
}

void tensor_touch_host(struct tensor *t, size_t first, size_t bytes)
{
    if (t->host_kind != TENSOR_HOST_PAGEABLE || !t->host || first >= tensor_bytes(t)) return;
    if (bytes > tensor_bytes(t) - first) bytes = tensor_bytes(t) - first;
    host_touch((char *)t->host + first, bytes);
}

int tensor_compute_tiles(const struct tensor *t)
{
    return t->compute_tiles ? t->ntiles : 0;
}

void tensor_wont_use(struct tensor *t)
{
    starpu_data_wont_use(t->handle);
}

void tensor_evict_from_gpus(struct tensor *t)
{
    /* StarPU writes a copy back before evicting it when the home has none valid: on the caller's
     * thread, synchronously. Such a tensor keeps its copies (so does a partitioned one, whose
     * data is its tiles' while the partition stands). */
    if (!starpu_data_is_on_node(t->handle, STARPU_MAIN_RAM)) return;
    for (unsigned node = 0; node < starpu_memory_nodes_get_count(); node++)
        if (starpu_node_get_kind(node) == STARPU_CUDA_RAM)
            starpu_data_evict_from_node(t->handle, node);
}

int64_t rt_peak_rss_bytes(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return (int64_t)ru.ru_maxrss * 1024; /* Linux: kilobytes */
}

int64_t rt_starpu_bytes_used(int cuda_index)
{
    if (cuda_index < 0) return (int64_t)starpu_memory_get_used(STARPU_MAIN_RAM);
    int worker = starpu_worker_get_by_type(STARPU_CUDA_WORKER, cuda_index);
    return worker < 0 ? 0 : (int64_t)starpu_memory_get_used(starpu_worker_get_memory_node(worker));
}

struct tensor *tensor_tiles(struct tensor *t, int ntiles, size_t row)
{
    size_t rows = t->n / row;
    CHECK_MSG(ntiles > 0 && row > 0 && rows * row == t->n && (size_t)ntiles <= rows,
              "tensor_tiles: the tensor is not ntiles or more whole rows");
    /* StarPU switches between a tensor and its tiles on the home node, where the tiles must be
     * views of the tensor's buffer: without a host copy they would be separate memory. */
    CHECK_MSG(t->host, "tensor_tiles needs a tensor with a host copy");
    if (t->ntiles) {
        CHECK_MSG(t->ntiles == ntiles, "tensor_tiles: one tensor split two ways");
        return t->tiles;
    }
    uint32_t *len = malloc(ntiles * sizeof *len);
    t->tiles = calloc(ntiles, sizeof *t->tiles);
    t->tile_handles = calloc(ntiles, sizeof *t->tile_handles);
    CHECK(len && t->tiles && t->tile_handles);
    for (int i = 0; i < ntiles; i++) {
        struct tensor *s = &t->tiles[i];
        size_t r0 = i * rows / ntiles, r1 = (i + 1) * rows / ntiles;
        len[i] = (uint32_t)((r1 - r0) * row);
        snprintf(s->name, sizeof s->name, "%.80s.tile%d", t->name, i);
        s->type = t->type;
        s->n = len[i];
        s->offset = r0 * row;
        s->host = (char *)t->host + s->offset * type_size(t->type);
    }
    struct starpu_data_filter f = {
        .filter_func = starpu_vector_filter_list, .nchildren = ntiles, .filter_arg_ptr = len};
    starpu_data_partition_plan(t->handle, &f, t->tile_handles);
    free(len);
    for (int i = 0; i < ntiles; i++) {
        t->tiles[i].handle = t->tile_handles[i];
        starpu_data_set_name(t->tile_handles[i], t->tiles[i].name);
    }
    t->ntiles = ntiles;
    return t->tiles;
}

void tensor_free(struct tensor *t)
{
    if (!t->handle) return;
    if (t->ntiles) {
        starpu_data_partition_clean(t->handle, t->ntiles, t->tile_handles);
        free(t->tiles);
        free(t->tile_handles);
    }
    /* The host copy is not brought up to date: whoever needs the data acquires it first. */
    starpu_data_unregister_no_coherency(t->handle);
    if (t->host_kind == TENSOR_HOST_PAGEABLE)
        host_free(t->host, tensor_bytes(t)); /* pool pieces go with the pool */
    memset(t, 0, sizeof *t);
}

static void *tensor_acquire(struct tensor *t, enum starpu_data_access_mode mode)
{
    CHECK(starpu_data_acquire(t->handle, mode) == 0);
    return starpu_data_get_local_ptr(t->handle);
}

void *tensor_acquire_read(struct tensor *t)
{
    return tensor_acquire(t, STARPU_R);
}
void *tensor_acquire_write(struct tensor *t)
{
    return tensor_acquire(t, STARPU_W);
}
void tensor_release(struct tensor *t)
{
    starpu_data_release(t->handle);
}
void *tensor_acquire_on_node(struct tensor *t, int node)
{
    CHECK(starpu_data_acquire_on_node(t->handle, node, STARPU_RW) == 0);
    return starpu_data_handle_to_pointer(t->handle, (unsigned)node);
}
void tensor_release_on_node(struct tensor *t, int node)
{
    starpu_data_release_on_node(t->handle, node);
}

struct tensor *rt_scratch(size_t bytes)
{
    if (bytes == 0 || device != RT_DEVICE_CUDA) return NULL;
    for (int i = 0; i < nscratch; i++)
        if (scratch_bytes[i] == bytes) return &scratch[i];
    CHECK_MSG(nscratch < RT_MAX_SCRATCH, "too many scratch sizes: raise RT_MAX_SCRATCH");
    tensor_init(&scratch[nscratch], "scratch", TENSOR_TYPE_I32, (bytes + 3) / 4, TENSOR_HOST_NONE);
    scratch_bytes[nscratch] = bytes;
    return &scratch[nscratch++];
}

static enum starpu_data_access_mode starpu_mode(enum rt_mode mode)
{
    switch (mode) {
    case RT_R:
        return STARPU_R;
    case RT_W:
        return STARPU_W;
    case RT_RW:
        return STARPU_RW;
    case RT_SCRATCH:
        return STARPU_SCRATCH;
    case RT_RW_COMMUTE:
        return STARPU_RW | STARPU_COMMUTE;
    }
    return STARPU_RW;
}

static _Thread_local int exec_worker = -1;
static int64_t submitted; /* tasks, atomically: rt_submit may be called from several threads */

/* rt_mark_*: whether tasks submitted now are marked, how many marked ones are still to end and
 * when the last ended (the two under mark_lock: StarPU calls mark_task_ended on its workers) */
static int mark_open;
static int64_t mark_pending;
static double mark_end;
static pthread_mutex_t mark_lock = PTHREAD_MUTEX_INITIALIZER;

static void mark_task_ended(void *arg)
{
    (void)arg;
    double now = timer_now_s();
    pthread_mutex_lock(&mark_lock);
    if (now > mark_end) mark_end = now;
    mark_pending--;
    pthread_mutex_unlock(&mark_lock);
}

void rt_mark_begin(void)
{
    pthread_mutex_lock(&mark_lock);
    CHECK_MSG(mark_pending == 0, "rt_mark_begin: the last mark's tasks have not all ended");
    mark_end = timer_now_s();
    pthread_mutex_unlock(&mark_lock);
    __atomic_store_n(&mark_open, 1, __ATOMIC_RELEASE);
}

void rt_mark_end(void)
{
    __atomic_store_n(&mark_open, 0, __ATOMIC_RELEASE);
}

double rt_mark_ended_s(void)
{
    pthread_mutex_lock(&mark_lock);
    CHECK_MSG(mark_pending == 0, "rt_mark_ended_s: a marked task has not ended");
    double t = mark_end;
    pthread_mutex_unlock(&mark_lock);
    return t;
}

void rt_set_worker(int worker)
{
    exec_worker = worker;
}

struct tensor *rt_disk(void)
{
    if (!machine) return NULL;
    int node = exec_worker < 0 ? 0 : starpu_worker_get_devid(exec_worker) / machine->gpus_per_node;
    CHECK_MSG(node < RT_MAX_DISKS, "more simulated nodes than RT_MAX_DISKS");
    struct tensor *t = &disks[node];
    if (!t->handle) {
        snprintf(t->name, sizeof t->name, "disk%d", node);
        starpu_void_data_register(&t->handle);
        starpu_data_set_name(t->handle, t->name);
    }
    return t;
}

void rt_submit(struct starpu_codelet *cl, const char *name, const struct rt_buf *bufs, int nbufs,
               const void *args, size_t args_size, double flops, int prio, enum rt_where where)
{
    /* past STARPU_NMAXBUFS, StarPU keeps a task's handles in memory of its own (dyn_handles) */
    struct starpu_data_descr descr[RT_MAX_BUFS];
    int k = 0;
    for (int i = 0; i < nbufs; i++) {
        if (!bufs[i].t) continue;
        CHECK_MSG(k < RT_MAX_BUFS, "too many buffers for one task: raise RT_MAX_BUFS");
        descr[k].handle = bufs[i].t->handle;
        descr[k].mode = starpu_mode(bufs[i].mode);
        k++;
    }
    void *arg_copy = NULL;
    if (args_size) {
        arg_copy = malloc(args_size);
        CHECK(arg_copy);
        memcpy(arg_copy, args, args_size);
    }
    uint32_t mask =
        where == RT_WHERE_COMPUTE && device == RT_DEVICE_CUDA ? STARPU_CUDA : STARPU_CPU;
    int worker = where == RT_WHERE_COMPUTE ? exec_worker : -1; /* -1: StarPU chooses */
    if (prio < min_prio) prio = min_prio;
    int marked = __atomic_load_n(&mark_open, __ATOMIC_ACQUIRE);
    if (marked) {
        pthread_mutex_lock(&mark_lock);
        mark_pending++;
        pthread_mutex_unlock(&mark_lock);
    }
    int ret = starpu_task_insert(cl, STARPU_DATA_MODE_ARRAY, descr, k, STARPU_CL_ARGS, arg_copy,
                                 args_size, STARPU_PRIORITY, prio, STARPU_NAME, name, STARPU_FLOPS,
                                 flops, STARPU_EXECUTE_WHERE, mask, STARPU_EXECUTE_ON_WORKER,
                                 worker, STARPU_CALLBACK, marked ? mark_task_ended : NULL, 0);
    CHECK_MSG(ret == 0, "starpu_task_insert failed: no worker can run this codelet");
    __atomic_fetch_add(&submitted, 1, __ATOMIC_RELAXED);
}

/* Both ends of the window wait for every submitted task: starpu_fxt_tool 1.4.10 crashes on a
 * task whose start precedes the recording (handle_end_codelet_body finds no ongoing computation),
 * and a task cut at the end would be missing from tasks.rec. */
void rt_trace_start(void)
{
    rt_wait_all();
    starpu_fxt_start_profiling();
}

void rt_trace_stop(void)
{
    rt_wait_all();
    starpu_fxt_stop_profiling();
}

void rt_wait_all(void)
{
    CHECK(starpu_task_wait_for_all() == 0);
}

void rt_cuda_task_begin(void)
{
    if (timeline_path) gpu_timeline_begin();
}

void rt_cuda_task_end(void)
{
    if (timeline_path) gpu_timeline_end(starpu_task_get_current()->name);
}

int64_t rt_tasks_submitted(void)
{
    return __atomic_load_n(&submitted, __ATOMIC_RELAXED);
}

int rt_cpu_task_begin(void)
{
    int n = starpu_combined_worker_get_size();
    omp_set_num_threads(n);
    return n;
}

int rt_task_cores(struct starpu_task *t, struct starpu_perfmodel_arch *arch)
{
    int n = arch->devices[0].ncores;
    if (starpu_task_get_current() == t && starpu_combined_worker_get_size() > n)
        n = starpu_combined_worker_get_size();
    return n;
}
