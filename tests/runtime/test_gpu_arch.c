/* test_gpu_arch: which built GPU code runs on which card (runtime/gpu.h's gpu_arch_runs), and
 * the line that says when none does. Pure: runs in both build variants, no GPU needed. */
#include "gpu.h"
#include "../test_expect.h"

#define DEFAULT "sm_75,sm_80,sm_86,sm_89,sm_90,compute_90"

static void test_runs(void)
{
    static const struct {
        const char *built;
        int major, minor, runs;
        const char *why;
    } cases[] = {
        {DEFAULT, 7, 5, 1, "T4, RTX 2080: its own SASS"},
        {DEFAULT, 8, 0, 1, "A100"},
        {DEFAULT, 8, 6, 1, "RTX A6000"},
        {DEFAULT, 8, 9, 1, "L40S, RTX 4090"},
        {DEFAULT, 9, 0, 1, "H100"},
        {DEFAULT, 10, 0, 1, "B200: JITs the compute_90 PTX"},
        {DEFAULT, 12, 0, 1, "RTX 5090: JITs the PTX"},
        {DEFAULT, 7, 0, 0, "V100: older than every build target"},
        {"sm_80", 8, 6, 1, "sm_80 SASS runs on 8.6 (same major, newer minor)"},
        {"sm_80", 8, 9, 1, "and on 8.9"},
        {"sm_86", 8, 0, 0, "but not on an older minor"},
        {"sm_80", 9, 0, 0, "SASS never crosses a major: the GPU-host check's case"},
        {"sm_90", 7, 5, 0, "nor runs on an older card"},
        {"sm_80,compute_80", 9, 0, 1, "PTX runs on newer majors"},
        {"compute_90", 8, 9, 0, "PTX never on older cards"},
        {"native", 8, 0, 1, "native: the runtime decides"},
        {"", 9, 0, 0, "CPU-only build: nothing runs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        EXPECT(gpu_arch_runs(cases[i].built, cases[i].major, cases[i].minor) == cases[i].runs,
               "'%s' on %d.%d: expected %d (%s)", cases[i].built, cases[i].major, cases[i].minor,
               cases[i].runs, cases[i].why);
}

static void test_message(void)
{
    char line[512];
    gpu_arch_message(line, sizeof line, 0, "NVIDIA H100 80GB HBM3", 9, 0, "sm_80");
    EXPECT(strcmp(line, "GPU 0 (NVIDIA H100 80GB HBM3, compute capability 9.0) has no code in "
                        "this build (built for sm_80): rebuild with meson configure build "
                        "-Dgpu_arch=90 (or -Dgpu_arch=native) and ninja -C build") == 0,
           "got '%s'", line);
}

int main(void)
{
    test_runs();
    test_message();
    return test_finish("test_gpu_arch");
}
