/* gpu.h: what the runtime asks of the CUDA runtime, behind one small API.
 *
 * Three implementations, one per build variant (runtime/meson.build picks): gpu_cuda.c asks the
 * CUDA runtime; gpu_none.c is the CPU-only build's, which has no GPU and refuses a request for
 * one (STARPU_NCUDA > 0) with one line; gpu_sim.c is the simulation build's, whose GPUs are the
 * simulated machine's (rt_machine()). gpu_arch.c holds the pure rule of which built code runs on
 * which card, shared by both and unit-tested without a GPU (tests/runtime/test_gpu_arch.c). */
#ifndef GPT50B_GPU_H
#define GPT50B_GPU_H

#include <hwloc.h>
#include <stddef.h>
#include <stdint.h>

/* The GPU code in this build, as meson wrote it: "sm_75,sm_80,sm_86,sm_89,sm_90,compute_90"
 * (SASS per card generation, PTX last), "native" (nvcc -arch=native: the building machine's
 * card), or "" (CPU-only build). */
extern const char gpu_arch_built[];

/* Devices the CUDA runtime sees (0 when it sees none). CPU-only build: 0, but a user asking for
 * CUDA workers (STARPU_NCUDA > 0) gets one line saying the build has no CUDA and exit 2. */
int gpu_count(void);

/* Memory of device dev in bytes, 0 when it cannot be read. */
int64_t gpu_total_bytes(int dev);

/* Writes device dev's name into out ("" when unknown). */
void gpu_name(int dev, char *out, size_t len);

/* Sets `cpus` to the CPUs next to device dev in a loaded topology; returns 0, or -1 when
 * unknown. */
int gpu_cpuset(hwloc_topology_t topo, int dev, hwloc_cpuset_t cpus);

/* For StarPU's CUDA workers: the per-worker cuBLAS handles, after starpu_initialize. */
void gpu_blas_init(void);
void gpu_blas_shutdown(void);

/* The CUDA task timeline, for profiles (GPT50B_CUDA_EVENTS=FILE, rt.h): a pair of timing events
 * recorded on the worker's stream around each CUDA task, so that the GPU's own clock says when
 * each task's kernels ran and how long the stream sat idle between two tasks. begin and end run on
 * the CUDA worker's thread, on its local stream (each worker fills its own list, no lock); write
 * runs once every task is
 * done and writes one CSV line per task: worker, device, task name, start and end in ms from the
 * worker's first event. Costs two cudaEventRecord calls (a few microseconds of host time) per
 * task while on. Returns -errno from write when the file cannot be written. */
void gpu_timeline_begin(void);
void gpu_timeline_end(const char *name);
int gpu_timeline_write(const char *path);

/* Ends the run with one line and exit 2 when device dev has no code in this build (a card older
 * or newer than every built architecture, without PTX it can JIT): the line names the card, its
 * compute capability and the meson option to rebuild with. Call for each device StarPU uses. */
void gpu_check_code(int dev);

/* Whether code built for `built` (gpu_arch_built's format) runs on a card of compute capability
 * major.minor: SASS sm_XY runs on X.Y' with Y' >= Y (same major), PTX compute_XY on any card of
 * capability X.Y or newer (the driver JITs it). "native" says yes: only the runtime can tell.
 * Pure. */
int gpu_arch_runs(const char *built, int major, int minor);

/* The line gpu_check_code prints (without "gpt50b: error: "), for device dev named `name`. */
void gpu_arch_message(char *out, size_t len, int dev, const char *name, int major, int minor,
                      const char *built);

#endif
