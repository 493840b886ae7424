/* pool.c: one pinned, NUMA-placed host allocation carved into aligned pieces (see pool.h). */
#include "pool.h"

#include <hwloc.h>
#include <starpu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa.h"
#include "progress.h"

struct host_pool {
    char *base;
    struct host_pool_info info;
};

/* Binds [p, p + n) to the NUMA node of CUDA device 0 when the machine has several nodes; returns
 * the node, or -1 when there is nothing to choose (one node, no GPU) or hwloc cannot tell. */
static int place_near_gpu(void *p, size_t n)
{
    hwloc_topology_t topo;
    int node = -1;
    if (starpu_cuda_worker_get_count() == 0 || hwloc_topology_init(&topo) != 0) return -1;
    int gpu = hwloc_topology_load(topo) == 0 ? numa_gpu_node(topo) : -1;
    if (gpu >= 0) {
        hwloc_nodeset_t nodes = hwloc_bitmap_alloc();
        hwloc_bitmap_only(nodes, (unsigned)gpu);
        if (hwloc_set_area_membind(topo, p, n, nodes, HWLOC_MEMBIND_BIND,
                                   HWLOC_MEMBIND_BYNODESET) == 0)
            node = gpu;
        hwloc_bitmap_free(nodes);
    }
    hwloc_topology_destroy(topo);
    return node;
}

struct host_pool *host_pool_create(size_t capacity, char *err, size_t errlen)
{
    struct host_pool *p = calloc(1, sizeof *p);
    capacity = host_pool_piece_bytes(capacity ? capacity : 1);
    if (!p || posix_memalign((void **)&p->base, AIO_ALIGN, capacity) != 0) {
        snprintf(err, errlen,
                 "cannot allocate the %zu-byte pinned host pool: lower the model size, the swap "
                 "buffer count or the micro-batch",
                 capacity);
        free(p);
        return NULL;
    }
    p->info.capacity = capacity;
    /* bind before the first touch, so that the pages land on the chosen node */
    p->info.numa_node = place_near_gpu(p->base, capacity);
    /* zeroed by all cores: the pages are touched here first (tensor_init relies on the zeros) */
    const size_t chunk = (size_t)64 << 20;
    struct progress pr;
    progress_begin(&pr, "touching", "touched", "the pinned host pool", (int64_t)capacity);
#pragma omp parallel for schedule(static)
    for (size_t off = 0; off < capacity; off += chunk) {
        size_t len = capacity - off < chunk ? capacity - off : chunk;
        memset(p->base + off, 0, len);
        progress_add(&pr, (int64_t)len);
    }
    progress_end(&pr);
    p->info.pinned =
        starpu_cuda_worker_get_count() > 0 && starpu_memory_pin(p->base, capacity) == 0;
    return p;
}

void host_pool_destroy(struct host_pool *p)
{
    if (!p) return;
    if (p->info.pinned) starpu_memory_unpin(p->base, p->info.capacity);
    free(p->base);
    free(p);
}

void *host_pool_alloc(struct host_pool *p, size_t bytes)
{
    size_t piece = host_pool_piece_bytes(bytes);
    if (piece > p->info.capacity - p->info.used) return NULL;
    void *out = p->base + p->info.used;
    p->info.used += piece;
    return out;
}

struct host_pool_info host_pool_info(const struct host_pool *p)
{
    return p->info;
}
