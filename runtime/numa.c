/* numa.c: NUMA facts from sysfs and hwloc, the I/O threads' placement and binding (see numa.h). */
#include "numa.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "gpu.h"

#define SYSFS_DEVICES "/sys/devices"

struct numa_io_choice numa_io_choose(int nnodes, int drive_node, int gpu_node)
{
    if (nnodes <= 1) return (struct numa_io_choice){-1, NUMA_IO_ONE_NODE};
    if (drive_node >= 0) return (struct numa_io_choice){drive_node, NUMA_IO_DRIVE};
    if (gpu_node >= 0) return (struct numa_io_choice){gpu_node, NUMA_IO_GPU};
    return (struct numa_io_choice){-1, NUMA_IO_UNKNOWN};
}

int numa_gpu_node(hwloc_topology_t topo)
{
    int node = -1;
    if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE) < 2) return -1;
    hwloc_cpuset_t cpus = hwloc_bitmap_alloc();
    hwloc_nodeset_t nodes = hwloc_bitmap_alloc();
    if (gpu_cpuset(topo, 0, cpus) == 0) {
        hwloc_cpuset_to_nodeset(topo, cpus, nodes);
        if (hwloc_bitmap_weight(nodes) == 1) node = hwloc_bitmap_first(nodes);
    }
    hwloc_bitmap_free(cpus);
    hwloc_bitmap_free(nodes);
    return node;
}

int numa_cores_first(const unsigned *core_cpu, const int *core_node, int ncores, int node,
                     unsigned *out, int max)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ncores && n < max; i++)
            if ((core_node[i] == node) == (pass == 0)) out[n++] = core_cpu[i];
    return n;
}

void numa_io_describe(struct numa_io_choice c, char *buf, size_t len)
{
    /* every text takes the node, used or not (extra printf arguments are ignored) */
    static const char *const text[] = {
        [NUMA_IO_DRIVE] = "bound to NUMA node %d (the swap drive's)",
        [NUMA_IO_GPU] = "bound to NUMA node %d (the pinned pool's; the swap drive's is unknown)",
        [NUMA_IO_ONE_NODE] = "unbound (one NUMA node)",
        [NUMA_IO_UNKNOWN] = "unbound (several NUMA nodes; neither the swap drive's nor a GPU's "
                            "known)",
        [NUMA_IO_REFUSED] = "unbound (binding to NUMA node %d failed: outside this process's "
                            "CPUs?)",
        [NUMA_IO_UNPLACED] = "unbound (not placed)",
    };
    snprintf(buf, len, text[c.why], c.node);
}

/* The numa_node file of sysfs folder dir: 0 with *node set (-1 when the platform does not say),
 * or -1 when dir has no such file. */
static int read_numa_node(const char *dir, int *node)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/numa_node", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (fscanf(f, "%d", node) != 1) *node = -1;
    fclose(f);
    return 0;
}

/* The node of the block device whose sysfs folder is dir: the numa_node of its nearest ancestor
 * that has one (an NVMe controller, a PCI function), else the node that every device below it
 * (slaves/: a dm or md device's members) shares. depth bounds dm over md over ... */
static int block_node(const char *dir, int depth)
{
    char real[PATH_MAX], walk[PATH_MAX];
    if (depth > 4 || !realpath(dir, real) ||
        strncmp(real, SYSFS_DEVICES "/", sizeof SYSFS_DEVICES) != 0)
        return -1;
    snprintf(walk, sizeof walk, "%s", real);
    while (strlen(walk) > sizeof SYSFS_DEVICES - 1) {
        int node;
        if (read_numa_node(walk, &node) == 0) return node >= 0 ? node : -1;
        *strrchr(walk, '/') = '\0';
    }
    snprintf(walk, sizeof walk, "%s/slaves", real);
    DIR *d = opendir(walk);
    if (!d) return -1;
    int node = -1;
    bool first = true;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char member[PATH_MAX];
        snprintf(member, sizeof member, "%s/%s", walk, de->d_name);
        int k = block_node(member, depth + 1);
        if (k < 0 || (!first && k != node)) {
            node = -1;
            break;
        }
        node = k;
        first = false;
    }
    closedir(d);
    return node;
}

int numa_path_node(const char *path)
{
    struct stat st;
    char dir[64];
    if (stat(path, &st) < 0) return -1;
    snprintf(dir, sizeof dir, "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
    return block_node(dir, 0);
}

static int topology_open(hwloc_topology_t *topo)
{
    if (hwloc_topology_init(topo) != 0) return -1;
    if (hwloc_topology_load(*topo) == 0) return 0;
    hwloc_topology_destroy(*topo);
    return -1;
}

int numa_node_count(void)
{
    hwloc_topology_t topo;
    if (topology_open(&topo) < 0) return 1;
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    hwloc_topology_destroy(topo);
    return n > 1 ? n : 1;
}

int numa_bind_threads(const pthread_t *t, int n, int node)
{
    hwloc_topology_t topo;
    if (node < 0) return -EINVAL;
    if (topology_open(&topo) < 0) return -ENOSYS;
    hwloc_obj_t obj = hwloc_get_numanode_obj_by_os_index(topo, (unsigned)node);
    int rc = obj ? 0 : -EINVAL;
    hwloc_cpuset_t set = hwloc_bitmap_alloc();
    for (int i = 0; i < n && rc == 0; i++) {
        if (hwloc_get_thread_cpubind(topo, t[i], set, HWLOC_CPUBIND_THREAD) != 0) {
            rc = -errno;
            break;
        }
        hwloc_bitmap_and(set, set, obj->cpuset);
        if (hwloc_bitmap_iszero(set))
            rc = -EPERM;
        else if (hwloc_set_thread_cpubind(topo, t[i], set, HWLOC_CPUBIND_THREAD) != 0)
            rc = -errno;
    }
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
    return rc;
}

void numa_nodes_of_cpus(hwloc_const_cpuset_t cpus, char *buf, size_t len)
{
    hwloc_topology_t topo;
    hwloc_nodeset_t nodes = hwloc_bitmap_alloc();
    if (topology_open(&topo) == 0) {
        hwloc_cpuset_to_nodeset(topo, cpus, nodes);
        hwloc_topology_destroy(topo);
    }
    hwloc_bitmap_list_snprintf(buf, len, nodes);
    hwloc_bitmap_free(nodes);
}
