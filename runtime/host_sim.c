/* host_sim.c: host.h in the simulation build. Host buffers are StarPU's folded allocations: no
 * kernel runs, so their contents are never read, except the few the main thread writes and reads
 * itself (the batch, the losses), whose values the simulation does not depend on (graph/gpt.c's
 * stand-ins). STARPU_MALLOC_SIMULATION_FOLD (MiB, default 1) sets the fold: each fold is one
 * mapping, and the kernel allows vm.max_map_count of them (65530 by default, about 1 TB at 16
 * MiB); each allocation must also fit the kernel's overcommit heuristic on its own (RAM + swap),
 * which is why the pool is allocated piece by piece (pool_sim.c). */
#include "host.h"

#include <starpu.h>
#include <stdio.h>

#include "rt.h"

int rt_simulated(void)
{
    return 1;
}

void *host_alloc(size_t bytes)
{
    void *p;
    return starpu_malloc_flags(&p, bytes, STARPU_MALLOC_SIMULATION_FOLDED) == 0 ? p : NULL;
}

void host_free(void *p, size_t bytes)
{
    starpu_free_flags(p, bytes, STARPU_MALLOC_SIMULATION_FOLDED);
}

void host_touch(void *p, size_t bytes)
{
    (void)p;
    (void)bytes;
}

/* StarPU's own default (pinned, counted), folded: the simulated pinning still costs its
 * simulated time, the memory is not had. */
void host_started(void)
{
    starpu_malloc_on_node_set_default_flags(STARPU_MAIN_RAM, STARPU_MALLOC_PINNED |
                                                                 STARPU_MALLOC_COUNT |
                                                                 STARPU_MALLOC_SIMULATION_FOLDED);
}

/* Simulated CPU workers are hosts of the platform file: no NUMA node. */
void rt_cpu_worker_nodes(char *buf, size_t len)
{
    snprintf(buf, len, "- (simulated)");
}
