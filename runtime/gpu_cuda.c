/* gpu_cuda.c: gpu.h for the CUDA build, over the CUDA runtime and StarPU's cuBLAS helpers. */
#include "gpu.h"

#include <cuda_runtime_api.h>
#include <hwloc/cudart.h>
#include <starpu.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

/* One CUDA worker's timeline: events are created on its thread (its device current) in blocks
 * and kept until the end, so that a run's tasks cost no event creation once warm. */
struct timeline_task {
    cudaEvent_t start, end;
    const char *name; /* the task's STARPU_NAME, a string literal of the submitter */
};
struct timeline {
    struct timeline_task *tasks;
    size_t n, cap;
    int device;
};
static struct timeline timelines[STARPU_NMAXWORKERS];

void gpu_timeline_begin(void)
{
    struct timeline *tl = &timelines[starpu_worker_get_id()];
    if (tl->n == tl->cap) {
        size_t cap = tl->cap ? 2 * tl->cap : 4096;
        tl->tasks = realloc(tl->tasks, cap * sizeof *tl->tasks);
        CHECK(tl->tasks);
        for (size_t i = tl->cap; i < cap; i++) {
            CHECK(cudaEventCreate(&tl->tasks[i].start) == cudaSuccess);
            CHECK(cudaEventCreate(&tl->tasks[i].end) == cudaSuccess);
        }
        tl->cap = cap;
        CHECK(cudaGetDevice(&tl->device) == cudaSuccess);
    }
    CHECK(cudaEventRecord(tl->tasks[tl->n].start, starpu_cuda_get_local_stream()) == cudaSuccess);
}

void gpu_timeline_end(const char *name)
{
    struct timeline *tl = &timelines[starpu_worker_get_id()];
    CHECK(cudaEventRecord(tl->tasks[tl->n].end, starpu_cuda_get_local_stream()) == cudaSuccess);
    tl->tasks[tl->n++].name = name;
}

int gpu_timeline_write(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    fprintf(f, "worker,device,name,start_ms,end_ms\n");
    for (int w = 0; w < STARPU_NMAXWORKERS; w++) {
        struct timeline *tl = &timelines[w];
        for (size_t i = 0; i < tl->n; i++) {
            float a, b;
            CHECK(cudaEventElapsedTime(&a, tl->tasks[0].start, tl->tasks[i].start) == cudaSuccess);
            CHECK(cudaEventElapsedTime(&b, tl->tasks[0].start, tl->tasks[i].end) == cudaSuccess);
            fprintf(f, "%d,%d,%s,%.4f,%.4f\n", w, tl->device,
                    tl->tasks[i].name ? tl->tasks[i].name : "?", a, b);
        }
        for (size_t i = 0; i < tl->cap; i++) {
            cudaEventDestroy(tl->tasks[i].start);
            cudaEventDestroy(tl->tasks[i].end);
        }
        free(tl->tasks);
        *tl = (struct timeline){0};
    }
    return fclose(f) == 0 ? 0 : -errno;
}
