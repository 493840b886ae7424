/* gpu_none.c: gpu.h for the CPU-only build (no CUDA toolkit, StarPU without CUDA): no device,
 * and a request for one ends the run with a line that says why. */
#include "gpu.h"

#include <stdlib.h>

#include "check.h"

int gpu_count(void)
{
    const char *ncuda = getenv("STARPU_NCUDA");
    if (ncuda && atoi(ncuda) > 0)
        user_fail("STARPU_NCUDA=%s asks for GPUs, but this build has no CUDA: unset it, or build "
                  "the CUDA variant on a machine with the CUDA toolkit (scripts/setup.sh)",
                  ncuda);
    return 0;
}

int64_t gpu_total_bytes(int dev)
{
    return 0;
}

void gpu_name(int dev, char *out, size_t len)
{
    if (len) out[0] = 0;
}
