/* machine.h: a described machine (scripts/machines/NAME.json) for the memory plan of --dry-run
 * and for the simulation build, which runs gpt50b's task graph over it (docs/simulation.md).
 *
 * A machine file is one JSON object: "name" and "description" are strings; every other field is
 * a figure {"value": X, "kind": K, "source": S}, K one of measured, derived, vendor, seed,
 * assumed, S a string saying where X comes from, X a number, a string (gpu_model), a list
 * (nvlink_pairs) or null where the figure does not apply (a collective on one GPU). Units are in
 * the field names (docs/simulation.md, section 1: GB = 1e9 bytes, us, bytes). Only the figures
 * this program reads are kept here; the platform's (PCIe, NVLink, latencies) are
 * scripts/sim_platform.py's, which writes StarPU's bus files from the same file.
 *
 * Required: nodes, gpus_per_node, gpu_model, gpu_memory_bytes, ram_bytes, cpu_cores, nvme_bytes,
 * nvme_read_GBps, nvme_write_GBps, cpu_adamw_GBps, cpu_adamw_core_GBps; collective_busbw_GBps and
 * collective_latency_us too when the machine has several GPUs, network_GBps when it has several
 * nodes. Optional: ram_available_bytes (default ram_bytes).
 *
 *     struct machine m;
 *     char err[MACHINE_ERR_SIZE];
 *     if (machine_load(&m, "h100-x1", "scripts/machines", err, sizeof err) != 0)
 *         user_fail("%s", err);          // one line: the file and the field
 *     printf("%s: %d x %s\n", m.name, m.nodes * m.gpus_per_node, m.gpu_model); */
#ifndef GPT50B_MACHINE_H
#define GPT50B_MACHINE_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any message machine_load writes into err (long paths are cut short). */
#define MACHINE_ERR_SIZE 768

struct machine {
    char name[64];                       /* also STARPU_HOSTNAME of its simulation */
    char path[512];                      /* the file it was read from */
    char gpu_model[128];                 /* the device name, as the CUDA runtime gives it */
    int nodes, gpus_per_node, cpu_cores; /* cpu_cores: physical cores per node */
    int64_t gpu_memory_bytes;            /* per GPU, what the CUDA runtime reports as total */
    int64_t ram_bytes;                   /* per node */
    int64_t ram_available_bytes;         /* per node: what programs may use (ram_bytes if absent) */
    int64_t nvme_bytes;                  /* per node: free space for swap files */
    double nvme_read_GBps, nvme_write_GBps; /* per node, at the I/O engine's queue depth */
    /* per node, bytes read and written together per second while the I/O engine has a read and
     * a write of equal size queued at once, on a file written before (nvme_tune's mixed run,
     * the optimizer step's pattern); 0 (absent): not measured */
    double nvme_mixed_GBps;
    double cpu_adamw_GBps;        /* per node, AdamW over all cores, 28 B per parameter */
    double cpu_adamw_core_GBps;   /* the same on one core */
    double gpu_hbm_GBps;          /* device memory bandwidth; required with GPUs */
    double collective_busbw_GBps; /* NCCL ring bus bandwidth within a node; 0: none */
    double collective_latency_us; /* fixed cost of one collective; 0: none */
    double network_GBps;          /* between nodes, each way, per node; 0: one node */
};

/* Reads the machine `arg`: a path (it holds a '/' or ends in ".json"), or the NAME of
 * dir/NAME.json. Returns 0, or -1 with one line in err naming the file and, for a bad figure,
 * the field: a missing file (with the names dir holds), invalid JSON (line and column), a
 * missing required figure, a figure that is not {"value", "kind", "source"}, an unknown kind, a
 * value of the wrong type or not positive. */
int machine_load(struct machine *m, const char *arg, const char *dir, char *err, size_t errlen);

/* GPUs of the whole machine. */
int machine_gpus(const struct machine *m);

/* Durations on the machine of the tasks a simulation times by formula rather than by a calibrated
 * history (docs/simulation.md, section 5), in microseconds. Pure; GB/s x 1e3 = bytes per us. */

/* An NVMe swap task of one node moving `bytes`: bytes at nvme_mixed_GBps when the machine gives
 * it, else at nvme_read_GBps (a swap-in) or nvme_write_GBps (a swap-out). The swap tasks of a
 * node take turns on its disk (rt_disk). The checksums are not counted: the engine computes a
 * write's while the data moves, and verifies a read's on the task's core once the disk has moved
 * on to the next request. */
double machine_swap_us(const struct machine *m, double bytes, int write);
/* A ring collective over `world` ranks, one per GPU (GPU g on node g / gpus_per_node), through
 * which `bytes` pass: collective_latency_us + (world - 1) / world x bytes / bus bandwidth, bytes
 * being the gathered size of an all-gather or a reduce-scatter, and twice the vector of an
 * all-reduce (a reduce-scatter, then an all-gather). The bus bandwidth is collective_busbw_GBps
 * when the ranks fit in one node, else min(that, network_GBps): every ring leaves a node once
 * each way, so together they get the node's network links. One rank: the latency. */
double machine_collective_us(const struct machine *m, int world, double bytes);
/* CPU AdamW over `params` parameters, 28 bytes each as the rates count them, on `cores` cores
 * while `busy` cores of the machine (these included) run AdamW: each core at most at
 * cpu_adamw_core_GBps, and a node's busy cores together at most at cpu_adamw_GBps (its memory
 * bandwidth), shared evenly, the busy cores being spread evenly over the nodes. */
double machine_adamw_us(const struct machine *m, double params, int cores, int busy);
/* A memory-bound pass that reads and writes `bytes` in all (the start-up casts of master weights
 * to compute copies): on a GPU at its memory bandwidth, on `cores` CPU cores at their share of
 * the node's AdamW rate (the same kind of streaming pass). */
double machine_stream_us(const struct machine *m, double bytes, int on_gpu, int cores,
                         int cpu_workers);

#endif
