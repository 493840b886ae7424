/* test_dtype.c: fp16 and bf16 conversions, bit for bit.
 *
 * Known values (rounding ties, overflow to inf, subnormals, signed zero, NaN), every fp16 bit
 * pattern round-tripped, and a million random floats against an independent reference that
 * rounds in double with nearbyint() (round to nearest even). */
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dtype.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int fails;

static void expect16(const char *type, float x, uint16_t got, uint16_t want)
{
    if (got != want) {
        printf("FAIL f32 -> %s of %.9g (0x%08x): got 0x%04x want 0x%04x\n", type, x, bits(x), got,
               want);
        fails++;
    }
}

static void expect32(const char *type, uint16_t h, float got, uint32_t want)
{
    if (bits(got) != want) {
        printf("FAIL %s -> f32 of 0x%04x: got 0x%08x want 0x%08x\n", type, h, bits(got), want);
        fails++;
    }
}

/* x rounded to nearest even with `p` significand bits, exponent floor `emin` (subnormals below),
 * overflowing to inf above `maxv`: the reference for both 16-bit types. x finite. */
static double ref_round(double x, int p, int emin, double maxv)
{
    if (x == 0) return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    e -= 1;
    if (e < emin) e = emin;
    double q = ldexp(1.0, e - (p - 1));
    double r = nearbyint(x / q) * q;
    if (fabs(r) > maxv) return copysign(INFINITY, x);
    return r == 0 ? copysign(0.0, x) : r;
}

int main(void)
{
    fesetround(FE_TONEAREST);

    /* fp16, f32 -> fp16 */
    struct {
        float x;
        uint16_t h;
    } f16[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},
        {65519.996f, 0x7bff},
        {65520.0f, 0x7c00}, /* the tie above the largest finite value goes to inf */
        {-65520.0f, 0xfc00},
        {1e10f, 0x7c00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {1.0f / 3.0f, 0x3555},
        {0.1f, 0x2e66},
        {1.0f + 0x1p-11f, 0x3c00},     /* tie, even stays */
        {1.0f + 3 * 0x1p-11f, 0x3c02}, /* tie, odd rounds up */
        {0x1p-14f, 0x0400},            /* smallest normal */
        {0x1p-24f, 0x0001},            /* smallest subnormal */
        {1023 * 0x1p-24f, 0x03ff},     /* largest subnormal */
        {1023.5f * 0x1p-24f, 0x0400},  /* tie into the normals */
        {0x1p-25f, 0x0000},            /* half the smallest subnormal: tie to even 0 */
        {1.5f * 0x1p-25f, 0x0001},
        {3 * 0x1p-25f, 0x0002}, /* 1.5 quanta: tie to even 2 */
        {-0x1p-26f, 0x8000},
        {0x1p-149f, 0x0000}, /* fp32 subnormal */
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
    };
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
        expect16("fp16", f16[i].x, dtype_f32_to_fp16(f16[i].x), f16[i].h);
    uint16_t hn = dtype_f32_to_fp16(NAN);
    if ((hn & 0x7c00) != 0x7c00 || (hn & 0x3ff) == 0) {
        printf("FAIL f32 -> fp16 of NaN: got 0x%04x, not a NaN\n", hn);
        fails++;
    }
    hn = dtype_f32_to_fp16(from_bits(0xff800001)); /* signalling NaN with a low payload */
    if ((hn & 0xfc00) != 0xfc00 || (hn & 0x3ff) == 0) {
        printf("FAIL f32 -> fp16 of -sNaN: got 0x%04x, not a negative NaN\n", hn);
        fails++;
    }

    /* fp16 -> f32 */
    expect32("fp16", 0x3c00, dtype_fp16_to_f32(0x3c00), 0x3f800000);
    expect32("fp16", 0x0001, dtype_fp16_to_f32(0x0001), 0x33800000);
    expect32("fp16", 0x03ff, dtype_fp16_to_f32(0x03ff), bits(1023 * 0x1p-24f));
    expect32("fp16", 0x7bff, dtype_fp16_to_f32(0x7bff), bits(65504.0f));
    expect32("fp16", 0x7c00, dtype_fp16_to_f32(0x7c00), 0x7f800000);
    expect32("fp16", 0xfc00, dtype_fp16_to_f32(0xfc00), 0xff800000);
    expect32("fp16", 0x8000, dtype_fp16_to_f32(0x8000), 0x80000000);
    if (!isnan(dtype_fp16_to_f32(0x7e00)) || !isnan(dtype_fp16_to_f32(0xfc01))) {
        printf("FAIL fp16 -> f32 of a NaN is not NaN\n");
        fails++;
    }

    /* every fp16 pattern survives the round trip (NaNs stay NaN) */
    int rt_fail = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dtype_fp16_to_f32((uint16_t)h);
        uint16_t back = dtype_f32_to_fp16(f);
        int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan ? !isnan(dtype_fp16_to_f32(back)) : back != h) {
            if (!rt_fail++) printf("FAIL fp16 round trip of 0x%04x gave 0x%04x\n", h, back);
        }
    }
    fails += rt_fail != 0;

    /* bf16 */
    struct {
        float x;
        uint16_t h;
    } b16[] = {
        {1.0f, 0x3f80},
        {-1.5f, 0xbfc0},
        {1.0f / 3.0f, 0x3eab},
        {from_bits(0x3f808000), 0x3f80}, /* tie, even stays */
        {from_bits(0x3f818000), 0x3f82}, /* tie, odd rounds up */
        {from_bits(0x3f808001), 0x3f81},
        {from_bits(0x7f7fffff), 0x7f80}, /* FLT_MAX rounds to inf */
        {from_bits(0x7f7f7fff), 0x7f7f},
        {INFINITY, 0x7f80},
        {-INFINITY, 0xff80},
        {from_bits(0x00008000), 0x0000}, /* subnormal tie to even 0 */
        {from_bits(0x00018000), 0x0002},
        {from_bits(0x00010001), 0x0001},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
    };
    for (size_t i = 0; i < sizeof b16 / sizeof b16[0]; i++)
        expect16("bf16", b16[i].x, dtype_f32_to_bf16(b16[i].x), b16[i].h);
    uint16_t bn = dtype_f32_to_bf16(from_bits(0x7f800001)); /* payload only in the low bits */
    if ((bn & 0x7f80) != 0x7f80 || (bn & 0x7f) == 0) {
        printf("FAIL f32 -> bf16 of a low-payload NaN: got 0x%04x, not a NaN\n", bn);
        fails++;
    }
    expect32("bf16", 0x3f80, dtype_bf16_to_f32(0x3f80), 0x3f800000);
    expect32("bf16", 0x0001, dtype_bf16_to_f32(0x0001), 0x00010000);
    expect32("bf16", 0xff80, dtype_bf16_to_f32(0xff80), 0xff800000);

    /* random finite floats over the whole exponent range against the double reference */
    int rnd_fail = 0;
    uint32_t u = 2463534242u;
    for (int i = 0; i < 1000000; i++) {
        u ^= u << 13; /* xorshift32 over raw float bit patterns */
        u ^= u >> 17;
        u ^= u << 5;
        float x = from_bits(u);
        if (i % 4 == 0) /* a quarter around the fp16 range, subnormals included */
            x = from_bits((u & 0x807fffff) | ((100 + (u >> 23) % 45) << 23));
        if (!isfinite(x)) continue;
        double r16 = ref_round(x, 11, -14, 65504.0);
        double rb16 = ref_round(x, 8, -126, 0x1.fep127);
        float g16 = dtype_fp16_to_f32(dtype_f32_to_fp16(x));
        float gb16 = dtype_bf16_to_f32(dtype_f32_to_bf16(x));
        if (bits(g16) != bits((float)r16) || bits(gb16) != bits((float)rb16)) {
            if (rnd_fail++ < 5)
                printf("FAIL rounding of 0x%08x (%.9g): fp16 %.9g want %.9g, bf16 %.9g want "
                       "%.9g\n",
                       bits(x), x, g16, r16, gb16, rb16);
        }
    }
    fails += rnd_fail != 0;

    /* bulk conversions agree with the scalar ones and load/store */
    float src[5] = {1.0f, -0.0f, 65520.0f, 1.0f / 3.0f, 0x1p-24f};
    uint16_t h[5];
    float back[5];
    dtype_from_f32(DTYPE_FP16, src, h, 5);
    dtype_to_f32(DTYPE_FP16, h, back, 5);
    for (int i = 0; i < 5; i++) {
        if (h[i] != dtype_f32_to_fp16(src[i]) ||
            bits(back[i]) != bits(dtype_load(DTYPE_FP16, h, i))) {
            printf("FAIL bulk fp16 conversion of element %d\n", i);
            fails++;
        }
        dtype_store(DTYPE_BF16, h, i, src[i]);
        if (h[i] != dtype_f32_to_bf16(src[i])) {
            printf("FAIL dtype_store bf16 of element %d\n", i);
            fails++;
        }
    }
    if (dtype_size(DTYPE_FP32) != 4 || dtype_size(DTYPE_FP16) != 2 || dtype_size(DTYPE_BF16) != 2 ||
        strcmp(dtype_name(DTYPE_BF16), "bf16") != 0) {
        printf("FAIL dtype_size / dtype_name\n");
        fails++;
    }

    printf("%s: %d failure(s)\n", fails ? "FAIL" : "ok", fails);
    return fails ? 1 : 0;
}
