/* cpu_test.h: helpers shared by the CPU kernel tests: a seeded generator, dtype buffers and the
 * tolerance check that reports the worst element.
 *
 * Header-only (static functions) so each test stays one self-contained program. */
#ifndef GPT50B_CPU_TEST_H
#define GPT50B_CPU_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_isa.h"
#include "dtype.h"

static uint64_t test_rng_state = 0x9e3779b97f4a7c15ull;

/* The suite runs the tests whose bits could depend on the instruction set once per ISA cap
 * (GPT50B_CPU_ISA=scalar|avx2|avx512): a cap this CPU cannot run is a skip (exit 77), not an
 * error. Call first in main. */
static inline void test_skip_unsupported_isa(void)
{
    const char *s = getenv("GPT50B_CPU_ISA");
    int isa = s && *s ? cpu_isa_from_name(s) : -1;
    if (isa >= 0 && !cpu_isa_supported(isa)) {
        printf("skip: this CPU does not run GPT50B_CPU_ISA=%s\n", s);
        exit(77);
    }
}

static inline void test_seed(uint64_t seed)
{
    test_rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

/* xorshift64*: uniform in [-1, 1) */
static inline float test_uniform(void)
{
    test_rng_state ^= test_rng_state >> 12;
    test_rng_state ^= test_rng_state << 25;
    test_rng_state ^= test_rng_state >> 27;
    uint64_t r = test_rng_state * 0x2545f4914f6cdd1dull;
    return (float)((double)(r >> 11) * 0x1p-52 - 1.0);
}

static inline float *test_alloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    CHECK(p != NULL);
    return p;
}

/* n values uniform in [-scale, scale) */
static inline float *test_rand(size_t n, float scale)
{
    float *p = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * test_uniform();
    return p;
}

static inline float *test_dup(const float *x, size_t n)
{
    float *p = test_alloc(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* A dt-typed copy of x (x may be NULL: zeros). Free with free(). */
static inline void *test_to_dt(enum dtype dt, const float *x, size_t n)
{
    void *p = calloc(n ? n : 1, dtype_size(dt));
    CHECK(p != NULL);
    if (x) dtype_from_f32(dt, x, p, n);
    return p;
}

/* A dt buffer of n NaNs, for outputs a kernel must overwrite entirely. */
static inline void *test_nan_dt(enum dtype dt, size_t n)
{
    void *p = malloc((n ? n : 1) * dtype_size(dt));
    CHECK(p != NULL);
    for (size_t i = 0; i < n; i++)
        dtype_store(dt, p, i, NAN);
    return p;
}

/* Rounds x in place to values representable in dt. */
static inline void test_round(enum dtype dt, float *x, size_t n)
{
    void *p = test_to_dt(dt, x, n);
    dtype_to_f32(dt, p, x, n);
    free(p);
}

/* |got-ref| <= atol + rtol*|ref| for every element; on failure prints the worst one. 0 ok. */
static inline int test_close(const char *what, const float *got, const float *ref, size_t n,
                             double atol, double rtol)
{
    size_t worst = 0;
    double worst_excess = -INFINITY, max_err = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        double excess = err - (atol + rtol * fabs((double)ref[i]));
        if (isnan(err)) excess = INFINITY;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
        if (err > max_err) max_err = err;
    }
    if (n && worst_excess > 0) {
        printf("FAIL %s: element %zu got %.9g ref %.9g (atol %g rtol %g)\n", what, worst,
               got[worst], ref[worst], atol, rtol);
        return 1;
    }
    printf("ok   %s (%zu elements, max abs err %.3g)\n", what, n, max_err);
    return 0;
}

/* Bit-for-bit equality of two byte buffers; on failure prints the first differing byte. */
static inline int test_same_bits(const char *what, const void *got, const void *ref, size_t bytes)
{
    const unsigned char *a = got, *b = ref;
    for (size_t i = 0; i < bytes; i++)
        if (a[i] != b[i]) {
            printf("FAIL %s: byte %zu differs (%02x vs %02x)\n", what, i, a[i], b[i]);
            return 1;
        }
    printf("ok   %s (%zu bytes identical)\n", what, bytes);
    return 0;
}

#endif
