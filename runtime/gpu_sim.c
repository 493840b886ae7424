/* gpu_sim.c: gpu.h in the simulation build: the simulated machine's GPUs (rt_machine(), read from
 * its machine file), no CUDA runtime. StarPU simulates a CUDA worker per GPU of the platform file
 * that scripts/sim_platform.py writes from the same machine file, and its memory (the platform's
 * memsize, of which StarPU takes 90% as on a real card); these answers are the plan's and the
 * logs'. Every GPU runs every kernel: there is no code to check. */
#include "gpu.h"

#include <stdio.h>

#include "check.h"
#include "machine.h"
#include "rt.h"

static const struct machine *machine(void)
{
    const struct machine *m = rt_machine();
    CHECK_MSG(m, "the simulation build asked for its GPUs before rt_init had the machine");
    return m;
}

int gpu_count(void)
{
    return machine_gpus(machine());
}

int64_t gpu_total_bytes(int dev)
{
    return machine()->gpu_memory_bytes;
}

void gpu_name(int dev, char *out, size_t len)
{
    snprintf(out, len, "%s", machine()->gpu_model);
}
