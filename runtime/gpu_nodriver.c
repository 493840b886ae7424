/* gpu_nodriver.c: the part of gpu.h that has nothing to do without a CUDA driver, shared by the
 * CPU-only build (gpu_none.c) and the simulation build (gpu_sim.c): no device to bind near, no
 * cuBLAS, no code to check (the simulation runs no kernel), no task timeline to record. */
#include "gpu.h"

int gpu_cpuset(hwloc_topology_t topo, int dev, hwloc_cpuset_t cpus)
{
    return -1;
}

void gpu_blas_init(void) {}

void gpu_blas_shutdown(void) {}

void gpu_check_code(int dev) {}

void gpu_timeline_begin(void) {}

void gpu_timeline_end(const char *name) {}

int gpu_timeline_write(const char *path)
{
    return 0;
}
