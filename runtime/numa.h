/* numa.h: NUMA placement of the NVMe I/O threads: which node the drive under a folder hangs off,
 * which node the threads should run on, and binding threads there with hwloc.
 *
 * On a machine of several NUMA nodes the I/O threads submit and reap the drive's requests and
 * checksum every block they move, so they belong on the node whose PCIe root holds the drive
 * (its interrupts and DMA land there); when the drive's node is unknown, next to the pinned pool
 * (which pool.c binds to the first GPU's node), because that is the memory they read and write.
 * On one node there is nothing to choose and nothing is bound. The choice is a pure function of
 * those facts (numa_io_choose), so that tests decide for machines they are not running on.
 *
 * The drive is found through sysfs rather than hwloc's I/O objects: stat's st_dev names the
 * block device (/sys/dev/block/MAJ:MIN), a partition or namespace sits below its controller and
 * PCI function, whose numa_node file tells the node; a device-mapper or md device (LVM, RAID 0
 * over several NVMe drives) has no PCI parent, and takes the node its member drives share (its
 * slaves/). hwloc lists whole disks only (no partition, no dm), so it could not answer those. */
#ifndef GPT50B_NUMA_H
#define GPT50B_NUMA_H

#include <hwloc.h>
#include <pthread.h>

enum numa_io_reason {
    NUMA_IO_DRIVE,    /* bound to the node of the drive that holds the swap folder */
    NUMA_IO_GPU,      /* the drive's node is unknown: bound to the pinned pool's (GPU's) node */
    NUMA_IO_ONE_NODE, /* one NUMA node: unbound, nothing to choose */
    NUMA_IO_UNKNOWN,  /* several nodes, neither the drive's nor the GPU's known: unbound */
    NUMA_IO_REFUSED,  /* a node was chosen but the threads could not be bound there */
    NUMA_IO_UNPLACED, /* nobody asked: unbound */
};

struct numa_io_choice {
    int node; /* OS index of the node chosen, -1 when none; the threads are bound to it unless
                 why is NUMA_IO_REFUSED */
    enum numa_io_reason why;
};

/* The choice from the facts: nnodes NUMA nodes in the machine, drive_node and gpu_node the
 * nodes of the swap drive and of the pinned pool (-1: unknown). Pure, O(1). */
struct numa_io_choice numa_io_choose(int nnodes, int drive_node, int gpu_node);
/* The order in which StarPU binds its workers (CUDA workers first, then CPU workers, each on the
 * next CPU of the list) on a machine of several nodes: the cores of `node` (the GPU's) first, in
 * their order, then the others. core_cpu[i] is core i's CPU to bind to (a logical PU index) and
 * core_node[i] its node. Writes at most max CPUs into out and returns their count. Pure: the CUDA
 * worker and the first CPU workers, which run most of the AdamW tasks over the pinned pool
 * (bound to that node), land next to the GPU. */
int numa_cores_first(const unsigned *core_cpu, const int *core_node, int ncores, int node,
                     unsigned *out, int max);
/* One phrase for the start log, e.g. "bound to NUMA node 1 (the swap drive's)". */
void numa_io_describe(struct numa_io_choice c, char *buf, size_t len);

/* The NUMA node (OS index) of the block device that holds path, or -1: no such path, not on a
 * block device (tmpfs, overlay, NFS), a platform that does not say (numa_node -1, as on
 * one-socket machines and most VMs), or a dm/md device whose members sit on different nodes.
 * Reads a few sysfs files; never fails otherwise. */
int numa_path_node(const char *path);
/* The NUMA node (OS index) of CUDA device 0 in a loaded topology of several nodes, or -1: one
 * node, no such device, or a device whose CPUs span several nodes. */
int numa_gpu_node(hwloc_topology_t topo);
/* NUMA nodes of this machine (1 when hwloc cannot tell). Loads an hwloc topology: ~10 ms. */
int numa_node_count(void);
/* Binds threads t[0..n) to the CPUs of NUMA node `node` that each may already run on (a run
 * started under numactl or taskset keeps its restriction). Returns 0, -EINVAL for a node that
 * does not exist, -EPERM when a thread may run on none of the node's CPUs, -ENOSYS when hwloc
 * cannot load the topology, or the -errno of the binding; stops at the first thread it cannot
 * bind, which keeps its binding. Loads an hwloc topology. */
int numa_bind_threads(const pthread_t *t, int n, int node);
/* The NUMA nodes (OS indexes, as a list like "0" or "0-1") of the CPUs in cpus, "" for none. */
void numa_nodes_of_cpus(hwloc_const_cpuset_t cpus, char *buf, size_t len);

#endif
