/* host.c: host.h on this machine: anonymous mappings, StarPU's own RAM flags left as they are,
 * and the CPU workers' NUMA nodes from hwloc. */
#include "host.h"

#include <hwloc.h>
#include <starpu.h>
#include <sys/mman.h>

#include "numa.h"
#include "rt.h"

int rt_simulated(void)
{
    return 0;
}

/* Zero pages until whoever fills them first touches them (in parallel, for weights), instead of
 * a memset here by one thread. */
void *host_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    /* 2 MiB pages where the kernel allows them: the first touch of the optimizer state by every
     * CPU worker at once took 512 times more page faults with 4 KiB pages (10 s of a 3.6B
     * model's first AdamW on a 16-core host) */
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void host_free(void *p, size_t bytes)
{
    munmap(p, bytes);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void host_touch(void *p, size_t bytes)
{
    if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return;
    /* older kernels: write each page's first byte, which zero pages already hold */
    volatile char *c = p;
    for (size_t off = 0; off < bytes; off += 4096)
        c[off] = c[off];
}

void host_started(void) {}

void rt_cpu_worker_nodes(char *buf, size_t len)
{
    hwloc_cpuset_t cpus = hwloc_bitmap_alloc();
    for (unsigned w = 0; w < starpu_worker_get_count(); w++) {
        if (starpu_worker_get_type((int)w) != STARPU_CPU_WORKER) continue;
        hwloc_cpuset_t set = starpu_worker_get_hwloc_cpuset((int)w);
        hwloc_bitmap_or(cpus, cpus, set);
        hwloc_bitmap_free(set);
    }
    numa_nodes_of_cpus(cpus, buf, len);
    hwloc_bitmap_free(cpus);
}
