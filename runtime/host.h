/* host.h: the machine under the runtime, in what rt.c and the pinned pool ask of it: large host
 * allocations and StarPU's own RAM allocations, and where the CPU workers sit.
 *
 * Two implementations, one per build (meson picks, as for gpu.h): host.c is this machine's
 * memory (anonymous mappings, hwloc's NUMA nodes); host_sim.c is the simulation build's, where
 * host buffers are StarPU's folded allocations (STARPU_MALLOC_SIMULATION_FOLDED: the same small
 * file mapped over and over, so that a simulated terabyte costs no memory) because no kernel ever
 * reads them, and the CPU workers are simulated hosts with no NUMA node. The pinned pool's
 * implementations (pool.c, pool_sim.c) follow the same split. rt.h's rt_simulated() and
 * rt_cpu_worker_nodes() are defined here too. */
#ifndef GPT50B_HOST_H
#define GPT50B_HOST_H

#include <stddef.h>

/* bytes of page-aligned host memory whose pages read as zero until written, or NULL when it
 * cannot be had. O(1): nothing is touched. */
void *host_alloc(size_t bytes);
void host_free(void *p, size_t bytes);
/* Faults in [p, p + bytes) of a host_alloc'd buffer for writing, its contents unchanged (zero
 * pages stay zero), so that the first task to write it pays no page faults. Page-aligned p.
 * Nothing in the simulation (its buffers are folded). */
void host_touch(void *p, size_t bytes);

/* After starpu_initialize: the flags of the RAM copies StarPU allocates itself (tensors without
 * a host copy, when it evicts or gathers them there). */
void host_started(void);

#endif
