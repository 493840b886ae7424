/* gpu_cuda.c: gpu.h for the CUDA build, over the CUDA runtime and StarPU's cuBLAS helpers. */
#include "gpu.h"

#include <cuda_runtime_api.h>
#include <hwloc/cudart.h>
#include <starpu.h>
#include <stdio.h>

#include "check.h"
#include "kernels_cuda.h"

int gpu_count(void)
{
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

int64_t gpu_total_bytes(int dev)
{
    struct cudaDeviceProp prop;
    return cudaGetDeviceProperties(&prop, dev) == cudaSuccess ? (int64_t)prop.totalGlobalMem : 0;
}

void gpu_name(int dev, char *out, size_t len)
{
    struct cudaDeviceProp prop;
    snprintf(out, len, "%.100s",
             cudaGetDeviceProperties(&prop, dev) == cudaSuccess ? prop.name : "");
}

int gpu_cpuset(hwloc_topology_t topo, int dev, hwloc_cpuset_t cpus)
{
    return hwloc_cudart_get_device_cpuset(topo, dev, cpus) == 0 ? 0 : -1;
}

void gpu_blas_init(void)
{
    starpu_cublas_init();
}

void gpu_blas_shutdown(void)
{
    starpu_cublas_shutdown();
}

/* The built list decides where it names the card's generation; the runtime's own answer (a
 * kernel's attributes) covers "native" and a driver that cannot JIT the PTX. */
void gpu_check_code(int dev)
{
    struct cudaDeviceProp prop;
    char line[512];
    CHECK(cudaGetDeviceProperties(&prop, dev) == cudaSuccess);
    if (gpu_arch_runs(gpu_arch_built, prop.major, prop.minor) && cuda_has_code(dev)) return;
    gpu_arch_message(line, sizeof line, dev, prop.name, prop.major, prop.minor, gpu_arch_built);
    user_fail("%s", line);
}
