/* gpu_arch.c: which built GPU code runs on which card (gpu.h), and the line that says when none
 * does. Pure: no CUDA, so the CPU-only build compiles and tests it too. */
#include "gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char gpu_arch_built[] = GPT50B_GPU_ARCH;

int gpu_arch_runs(const char *built, int major, int minor)
{
    if (strcmp(built, "native") == 0) return 1;
    int cc = major * 10 + minor;
    for (const char *p = built; *p;) {
        size_t n = strcspn(p, ",");
        int arch;
        if (sscanf(p, "sm_%d", &arch) == 1 && arch / 10 == major && arch <= cc) return 1;
        if (sscanf(p, "compute_%d", &arch) == 1 && arch <= cc) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

void gpu_arch_message(char *out, size_t len, int dev, const char *name, int major, int minor,
                      const char *built)
{
    snprintf(out, len,
             "GPU %d (%s, compute capability %d.%d) has no code in this build (built for %s): "
             "rebuild with meson configure build -Dgpu_arch=%d%d (or -Dgpu_arch=native) and "
             "ninja -C build",
             dev, name, major, minor, built[0] ? built : "no GPU", major, minor);
}
