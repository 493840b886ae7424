/* dtype.c: conversions between fp32 and the two 16-bit storage types.
 *
 * Plain integer bit manipulation, so the results do not depend on the compiler's _Float16 or the
 * FPU's rounding mode: round to nearest even, fp16 overflow to +-inf, subnormals kept, NaN stays
 * a quiet NaN of the same sign. The bulk conversions are the hot path of every fp16/bf16 CPU
 * kernel; they switch on the type once and run over independent elements with OpenMP. */
#include "dtype.h"

#include <string.h>

#include "check.h"

/* Below this many elements a parallel region costs more than it saves. */
#define DTYPE_PARALLEL_MIN 65536

size_t dtype_size(enum dtype dt)
{
    switch (dt) {
    case DTYPE_FP32:
        return 4;
    case DTYPE_FP16:
    case DTYPE_BF16:
        return 2;
    }
    CHECK_MSG(0, "unknown dtype");
    return 0;
}

const char *dtype_name(enum dtype dt)
{
    switch (dt) {
    case DTYPE_FP32:
        return "fp32";
    case DTYPE_FP16:
        return "fp16";
    case DTYPE_BF16:
        return "bf16";
    }
    CHECK_MSG(0, "unknown dtype");
    return NULL;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Drops the low `shift` bits of x rounding to nearest even; 0 < shift < 32. */
static inline uint32_t shift_rne(uint32_t x, int shift)
{
    uint32_t q = x >> shift;
    uint32_t rem = x & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

float dtype_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf, or NaN with its payload kept in the high mantissa bits */
        return bits_f32(sign | 0x7f800000 | (mant << 13));
    if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
    /* zero or subnormal: mant * 2^-24, exact in fp32 */
    float mag = (float)mant * 0x1p-24f;
    return bits_f32(sign | f32_bits(mag));
}

uint16_t dtype_f32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) /* NaN: quiet it and keep what fits of the payload */
        return sign | 0x7e00 | ((ax >> 13) & 0x3ff);
    if (ax >= 0x477ff000) /* >= 65520 rounds past 65504, the largest finite fp16 */
        return sign | 0x7c00;
    if (ax >= 0x38800000) { /* >= 2^-14: normal fp16; a mantissa carry bumps the exponent */
        uint32_t rebias = ax - (112u << 23);
        return sign | (uint16_t)shift_rne(rebias, 13);
    }
    /* fp16 subnormal or zero: round |f| / 2^-24 to an integer. The implicit bit is made explicit;
     * below 2^-25 everything rounds to zero. */
    int exp = (int)(ax >> 23);
    int shift = 126 - exp;
    if (shift > 24) return sign;
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    return sign | (uint16_t)shift_rne(mant, shift);
}

float dtype_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t dtype_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    /* rounding past the largest finite value carries into the exponent and gives inf, as it
     * should */
    return (uint16_t)shift_rne(x, 16);
}

float dtype_load(enum dtype dt, const void *p, size_t i)
{
    switch (dt) {
    case DTYPE_FP32:
        return ((const float *)p)[i];
    case DTYPE_FP16:
        return dtype_fp16_to_f32(((const uint16_t *)p)[i]);
    case DTYPE_BF16:
        return dtype_bf16_to_f32(((const uint16_t *)p)[i]);
    }
    CHECK_MSG(0, "unknown dtype");
    return 0;
}

void dtype_store(enum dtype dt, void *p, size_t i, float x)
{
    switch (dt) {
    case DTYPE_FP32:
        ((float *)p)[i] = x;
        return;
    case DTYPE_FP16:
        ((uint16_t *)p)[i] = dtype_f32_to_fp16(x);
        return;
    case DTYPE_BF16:
        ((uint16_t *)p)[i] = dtype_f32_to_bf16(x);
        return;
    }
    CHECK_MSG(0, "unknown dtype");
}

void dtype_to_f32(enum dtype dt, const void *src, float *dst, size_t n)
{
    const uint16_t *s = src;
    switch (dt) {
    case DTYPE_FP32:
        if ((const void *)dst != src) memcpy(dst, src, n * sizeof(float));
        return;
    case DTYPE_FP16:
#pragma omp parallel for schedule(static) if (n >= DTYPE_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            dst[i] = dtype_fp16_to_f32(s[i]);
        return;
    case DTYPE_BF16:
#pragma omp parallel for schedule(static) if (n >= DTYPE_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            dst[i] = dtype_bf16_to_f32(s[i]);
        return;
    }
    CHECK_MSG(0, "unknown dtype");
}

void dtype_from_f32(enum dtype dt, const float *src, void *dst, size_t n)
{
    uint16_t *d = dst;
    switch (dt) {
    case DTYPE_FP32:
        if (dst != (const void *)src) memcpy(dst, src, n * sizeof(float));
        return;
    case DTYPE_FP16:
#pragma omp parallel for schedule(static) if (n >= DTYPE_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            d[i] = dtype_f32_to_fp16(src[i]);
        return;
    case DTYPE_BF16:
#pragma omp parallel for schedule(static) if (n >= DTYPE_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            d[i] = dtype_f32_to_bf16(src[i]);
        return;
    }
    CHECK_MSG(0, "unknown dtype");
}
