/* test_numa.c: NUMA placement of the NVMe I/O threads (runtime/numa.c, aio_engine_place).
 *
 * The choice for machines this one is not (synthetic topologies: the drive's node first, else the
 * GPU's, else none; one node: none); the drive lookup on real folders (a node or -1, and -1 for
 * tmpfs and a missing path, never a crash); the engine's threads, bound to node 0, end with a
 * CPU set inside node 0's and inside what they were allowed before (a taskset restriction is
 * kept); an unknown node is refused; aio_engine_place keeps its choice and, where it binds,
 * the threads sit on the chosen node. Runs on one-node machines too. */
#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <hwloc/linux.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "aio.h"
#include "../test_expect.h"

#define TMPFS_MAGIC 0x01021994

static void test_choose(void)
{
    static const struct {
        int nnodes, drive, gpu, node;
        enum numa_io_reason why;
    } rows[] = {
        {1, -1, -1, -1, NUMA_IO_ONE_NODE}, {1, 0, 0, -1, NUMA_IO_ONE_NODE},
        {2, 1, 0, 1, NUMA_IO_DRIVE},       {4, 3, -1, 3, NUMA_IO_DRIVE},
        {2, -1, 0, 0, NUMA_IO_GPU},        {8, -1, 5, 5, NUMA_IO_GPU},
        {2, -1, -1, -1, NUMA_IO_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct numa_io_choice c = numa_io_choose(rows[i].nnodes, rows[i].drive, rows[i].gpu);
        EXPECT(c.node == rows[i].node && c.why == rows[i].why,
               "%d nodes, drive on %d, GPU on %d: chose node %d (reason %d), expected %d (%d)",
               rows[i].nnodes, rows[i].drive, rows[i].gpu, c.node, c.why, rows[i].node,
               rows[i].why);
        char text[160];
        numa_io_describe(c, text, sizeof text);
        EXPECT(strlen(text) > 0 && (c.node < 0 || strstr(text, "node")), "description '%s'", text);
    }
}

static void test_path_node(const char *dir, int nnodes)
{
    const char *paths[] = {dir, "/", "."};
    for (int i = 0; i < 3; i++) {
        int node = numa_path_node(paths[i]);
        EXPECT(node >= -1 && node < nnodes, "%s: node %d of %d", paths[i], node, nnodes);
        fprintf(stderr, "note: %s is on the drive of NUMA node %d (-1: unknown)\n", paths[i], node);
    }
    EXPECT(numa_path_node("/nonexistent/gpt50b") == -1, "a missing path has a node");
    struct statfs sf;
    if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC)
        EXPECT(numa_path_node("/dev/shm") == -1, "tmpfs /dev/shm has a node: %d",
               numa_path_node("/dev/shm"));
}

/* Calls check(set, arg) with the CPU binding of every thread of this process named
 * "gpt50b-aio"; returns how many there are. */
static int for_aio_threads(hwloc_topology_t topo, void (*check)(hwloc_const_cpuset_t, void *),
                           void *arg)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *de;
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    while (d && (de = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        if (strncmp(comm, "gpt50b-aio", 10) != 0) continue;
        EXPECT(hwloc_linux_get_tid_cpubind(topo, atoi(de->d_name), set) == 0, "thread %s",
               de->d_name);
        check(set, arg);
        n++;
    }
    if (d) closedir(d);
    hwloc_bitmap_free(set);
    return n;
}

static void expect_inside(hwloc_const_cpuset_t set, void *arg)
{
    char got[128], want[128];
    hwloc_bitmap_list_snprintf(got, sizeof got, set);
    hwloc_bitmap_list_snprintf(want, sizeof want, arg);
    EXPECT(!hwloc_bitmap_iszero(set) && hwloc_bitmap_isincluded(set, arg),
           "an I/O thread runs on CPUs %s, outside %s", got, want);
}

static struct aio_engine *engine(int threads)
{
    char err[AIO_ERR_SIZE];
    struct aio_config c = {.threads = threads};
    struct aio_engine *e = aio_engine_create(&c, err, sizeof err);
    if (!e) {
        fprintf(stderr, "aio_engine_create: %s\n", err);
        exit(1);
    }
    return e;
}

static void test_bind(const char *dir, hwloc_topology_t topo)
{
    hwloc_obj_t node0 = hwloc_get_numanode_obj_by_os_index(topo, 0);
    if (!node0 || hwloc_bitmap_iszero(node0->cpuset)) {
        fprintf(stderr, "note: no NUMA node 0 with CPUs: binding not tested\n");
        return;
    }
    /* Threads inherit their creator's binding: restricted to one CPU of node 0 (as under
     * taskset), they keep that CPU after the binding to the node. */
    hwloc_cpuset_t before = hwloc_bitmap_alloc(), one = hwloc_bitmap_alloc();
    EXPECT(hwloc_get_cpubind(topo, before, HWLOC_CPUBIND_THREAD) == 0, "own binding");
    hwloc_bitmap_and(one, before, node0->cpuset);
    hwloc_bitmap_singlify(one);
    EXPECT(hwloc_set_cpubind(topo, one, HWLOC_CPUBIND_THREAD) == 0, "taskset-like restriction");
    struct aio_engine *e = engine(3);
    EXPECT(hwloc_set_cpubind(topo, before, HWLOC_CPUBIND_THREAD) == 0, "restore own binding");
    EXPECT(aio_engine_bind(e, 0) == 0, "binding to node 0");
    EXPECT(for_aio_threads(topo, expect_inside, one) == 3, "3 threads named gpt50b-aio");
    aio_engine_destroy(e);

    e = engine(2);
    EXPECT(aio_engine_bind(e, 0) == 0, "binding to node 0");
    EXPECT(for_aio_threads(topo, expect_inside, node0->cpuset) == 2, "2 threads");
    EXPECT(aio_engine_bind(e, 4096) == -EINVAL, "a node that does not exist");
    aio_engine_destroy(e);

    e = engine(2);
    struct numa_io_choice none = aio_engine_placement(e);
    EXPECT(none.node == -1 && none.why == NUMA_IO_UNPLACED, "before placement: %d", none.why);
    struct numa_io_choice c = aio_engine_place(e, dir, -1), kept = aio_engine_placement(e);
    EXPECT(c.node == kept.node && c.why == kept.why, "placement not kept");
    int nnodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    EXPECT(nnodes > 1 || (c.node == -1 && c.why == NUMA_IO_ONE_NODE),
           "one node: chose %d (reason %d)", c.node, c.why);
    if (c.node >= 0 && c.why != NUMA_IO_REFUSED)
        for_aio_threads(topo, expect_inside,
                        hwloc_get_numanode_obj_by_os_index(topo, (unsigned)c.node)->cpuset);
    aio_engine_destroy(e);
    hwloc_bitmap_free(before);
    hwloc_bitmap_free(one);
}

/* Worker binding order on a synthetic 2-node machine of 8 cores (CPUs 0-3 on node 0, 4-7 on
 * node 1): the GPU's node's cores first, in order, then the rest; a short out array is filled
 * and no more. */
static void test_cores_first(void)
{
    const unsigned cpu[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const int node[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    unsigned out[8];
    int n = numa_cores_first(cpu, node, 8, 1, out, 8);
    EXPECT(n == 8 && out[0] == 4 && out[3] == 7 && out[4] == 0 && out[7] == 3,
           "GPU on node 1: %d CPUs, %u %u %u %u ...", n, out[0], out[1], out[4], out[7]);
    n = numa_cores_first(cpu, node, 8, 0, out, 8);
    EXPECT(n == 8 && out[0] == 0 && out[4] == 4, "GPU on node 0: the identity order");
    n = numa_cores_first(cpu, node, 8, 1, out, 3);
    EXPECT(n == 3 && out[2] == 6, "a 3-entry array holds the first 3 local cores");
}

int main(void)
{
    char dir[256];
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0) {
        fprintf(stderr, "skip: hwloc cannot load this machine's topology\n");
        return 77;
    }
    test_dir_make(dir, sizeof dir, NULL, "test_numa");
    int nnodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    EXPECT(numa_node_count() == (nnodes > 1 ? nnodes : 1), "node count %d, hwloc says %d",
           numa_node_count(), nnodes);
    test_choose();
    test_cores_first();
    test_path_node(dir, nnodes > 1 ? nnodes : 1);
    test_bind(dir, topo);
    hwloc_topology_destroy(topo);
    test_dir_remove(dir);
    return test_finish("test_numa");
}
