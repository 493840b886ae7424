/* cpu_isa.h: the x86-64 instruction sets the vector CPU kernels (AdamW, cross-entropy) run on.
 *
 * Each kernel with vector versions picks one at run time: the fastest this CPU supports, or the
 * one named by GPT50B_CPU_ISA=scalar|avx2|avx512 (for tests and benchmarks). The choice is made
 * once, here, and shared by every kernel so that one variable steers them all. Private to
 * codelets/kernels/cpu/ and its tests. */
#ifndef GPT50B_CPU_ISA_H
#define GPT50B_CPU_ISA_H

/* Slowest first: cpu_isa_selected() returns the last one supported. */
enum cpu_isa {
    CPU_ISA_SCALAR,
    CPU_ISA_AVX2,   /* AVX2 + F16C + FMA: 8 lanes */
    CPU_ISA_AVX512, /* AVX-512 F, BW and VL: 16 lanes, masked tails */
    CPU_ISA_COUNT,
};

/* "scalar", "avx2", "avx512" */
const char *cpu_isa_name(enum cpu_isa isa);
/* The ISA named s (cpu_isa_name's spelling), or -1. */
int cpu_isa_from_name(const char *s);
/* 1 when this CPU (and OS) can run isa. */
int cpu_isa_supported(enum cpu_isa isa);
/* The ISA the kernels use: GPT50B_CPU_ISA if set, else the best supported. Decided at the first
 * call and cached; a bad GPT50B_CPU_ISA ends the program with a one-line error (exit 2). */
enum cpu_isa cpu_isa_selected(void);

#endif
