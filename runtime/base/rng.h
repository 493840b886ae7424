/* rng.h: splitmix64, a tiny well-mixed generator for weight initialisation and data shuffling.
 * Deterministic across machines, one independent stream per seed. */
#ifndef GPT50B_RNG_H
#define GPT50B_RNG_H

#include <stdint.h>

/* The state after k draws from seed s0 is s0 + k * RNG_INCREMENT (mod 2^64): a stream can be
 * entered anywhere. */
#define RNG_INCREMENT 0x9E3779B97F4A7C15ull

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += RNG_INCREMENT);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1), never 0 (safe under log). */
static inline double rng_uniform(uint64_t *s)
{
    return ((rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
}

#endif
