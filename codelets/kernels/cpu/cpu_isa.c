/* cpu_isa.c: which vector instruction set the CPU kernels use (see cpu_isa.h).
 *
 * __builtin_cpu_supports also checks that the OS saves the vector registers (XCR0), so a
 * supported ISA is one that can really run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu_isa.h"

const char *cpu_isa_name(enum cpu_isa isa)
{
    static const char *const names[CPU_ISA_COUNT] = {"scalar", "avx2", "avx512"};
    CHECK_MSG(isa >= 0 && isa < CPU_ISA_COUNT, "unknown CPU ISA");
    return names[isa];
}

int cpu_isa_from_name(const char *s)
{
    for (int i = 0; i < CPU_ISA_COUNT; i++)
        if (strcmp(s, cpu_isa_name(i)) == 0) return i;
    return -1;
}

int cpu_isa_supported(enum cpu_isa isa)
{
    switch (isa) {
    case CPU_ISA_SCALAR:
        return 1;
#if defined(__x86_64__)
    case CPU_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
               __builtin_cpu_supports("fma");
    case CPU_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
#endif
    default:
        return 0;
    }
}

static enum cpu_isa isa_from_env(void)
{
    const char *s = getenv("GPT50B_CPU_ISA");
    if (!s || !*s) {
        enum cpu_isa best = CPU_ISA_SCALAR;
        for (int i = 0; i < CPU_ISA_COUNT; i++)
            if (cpu_isa_supported(i)) best = i;
        return best;
    }
    int isa = cpu_isa_from_name(s);
    if (isa >= 0 && cpu_isa_supported(isa)) return isa;
    user_fail("GPT50B_CPU_ISA=%s is not an ISA this CPU runs: use scalar, avx2 or avx512 (one it "
              "supports), or unset it",
              s);
}

enum cpu_isa cpu_isa_selected(void)
{
    /* StarPU's CPU workers may make the first calls concurrently; they all compute the same
     * value, so a relaxed race is harmless. */
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = isa_from_env();
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return isa;
}
