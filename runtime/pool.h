/* pool.h: the bounded pool of pinned host memory.
 *
 * One allocation per run, page-locked once (starpu_memory_pin: cudaHostRegister when StarPU has
 * CUDA workers), placed on the NUMA node next to the first GPU when the machine has several
 * nodes (hwloc), and carved into AIO_ALIGN-aligned pieces for the tensors that need fast,
 * asynchronous copies: swap buffers, the compute copies that the CPU AdamW writes, the batch.
 * Pieces are never freed one by one; the pool lives as long as the run. Never one pinned
 * allocation per tensor: DeepSpeed's users report host out-of-memory from exactly that. The
 * caller sizes the pool from its plan; a request beyond the capacity returns NULL. The
 * simulation build's pool (pool_sim.c) keeps this contract with StarPU's folded allocations, one
 * per piece, none touched or pinned for real. */
#ifndef GPT50B_POOL_H
#define GPT50B_POOL_H

#include <stddef.h>

#include "aio.h"
#include "align.h"

struct host_pool;

/* Allocates (and, where useful, places and pins) capacity bytes. NULL and one line in err when
 * the memory cannot be had. Call after StarPU started (pinning goes through it). */
struct host_pool *host_pool_create(size_t capacity, char *err, size_t errlen);
/* Releases the whole pool; every piece becomes invalid. */
void host_pool_destroy(struct host_pool *p);
/* A zeroed piece of at least bytes, AIO_ALIGN-aligned, or NULL when the pool is full. O(1). */
void *host_pool_alloc(struct host_pool *p, size_t bytes);
/* What a request of bytes takes from the pool (its rounding), for sizing it. */
static inline size_t host_pool_piece_bytes(size_t bytes)
{
    return round_up(bytes, AIO_ALIGN);
}

struct host_pool_info {
    size_t capacity, used;
    int pinned;    /* page-locked for the GPU's DMA */
    int numa_node; /* the node it is bound to, -1 when not bound (one node, or no GPU) */
};
struct host_pool_info host_pool_info(const struct host_pool *p);

#endif
