/* crossentropy_simd.c: the cross-entropy row kernels (max, sum of exp, exp) on AVX-512 and AVX2.
 *
 * The row's cost is one exp per logit, so the exp is a vector polynomial (Cephes expf): x = n ln2
 * + r with |r| <= ln2/2, the reduction in two steps (Cody-Waite: n*C1 is exact, C1 + C2 = ln2),
 * e^r by a degree-6 polynomial, 2^n built in the exponent bits. With fused multiply-adds it is
 * within about 1 ulp of the true value, so within 2e-7 relative of libm's expf (tests check
 * it). Inputs are l - max <= 0; those below ln(FLT_MIN) give 0 instead of a subnormal (they add
 * less than 1e-38 to a sum of at least 1), NaN stays NaN.
 *
 * Every ISA gives the same bits (crossentropy.c's scalar code is the same computation with fmaf):
 * the exp is the same sequence of correctly rounded operations in each lane, and a row's sum is
 * 16 partial sums (lane j adds the elements j, j+16, j+32, ... in row order; AVX-512 holds them in
 * one register, AVX2 in two) folded in the fixed tree of ce_fold16. Tails are masked (lanes past
 * V read as -inf, whose exp is +0, which leaves a partial sum unchanged). */
#include <math.h>

#include "crossentropy_simd.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TARGET_AVX2   __attribute__((target("avx2,fma")))
#define TARGET_AVX    __attribute__((target("avx")))
#define INLINE        static inline __attribute__((always_inline))

/* ce_fold16 on the partial sums of lanes [0, 8) in lo and [8, 16) in hi */
TARGET_AVX INLINE float fold16(__m256 lo, __m256 hi)
{
    __m256 v = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* AVX-512: 16 lanes */

TARGET_AVX512 INLINE float fold512(__m512 acc)
{
    return fold16(_mm512_castps512_ps256(acc),
                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
}

TARGET_AVX512 INLINE __m512 exp16(__m512 x)
{
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CE_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(CE_EXP_C1), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(CE_EXP_C2), r);
    __m512 p = _mm512_set1_ps(CE_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CE_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CE_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CE_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CE_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CE_EXP_P5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    /* fx is in [-126, 0] wherever the result is kept, so 2^fx is a normal number */
    __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    __m512 v = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CE_EXP_LOMIN), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(under, v, _mm512_setzero_ps());
}

TARGET_AVX512 INLINE __mmask16 tail16(int n)
{
    return (__mmask16)((1u << n) - 1u);
}

TARGET_AVX512 static float max_avx512(const float *l, int V)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    /* MAXPS returns its second operand when either is NaN: NaNs never enter m */
    for (; i + 16 <= V; i += 16)
        m = _mm512_max_ps(_mm512_loadu_ps(l + i), m);
    if (i < V)
        m = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(V - i), l + i), m);
    return _mm512_reduce_max_ps(m);
}

TARGET_AVX512 static float sumexp_avx512(const float *l, int V, float maxv)
{
    __m512 mx = _mm512_set1_ps(maxv), acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= V; i += 16)
        acc = _mm512_add_ps(acc, exp16(_mm512_sub_ps(_mm512_loadu_ps(l + i), mx)));
    if (i < V) {
        __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(V - i), l + i);
        acc = _mm512_add_ps(acc, exp16(_mm512_sub_ps(x, mx)));
    }
    return fold512(acc);
}

TARGET_AVX512 static float exp_avx512(float *d, const float *l, int V, float maxv)
{
    __m512 mx = _mm512_set1_ps(maxv), acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= V; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(l + i), mx));
        _mm512_storeu_ps(d + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < V) {
        __mmask16 k = tail16(V - i);
        __m512 e =
            exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, l + i), mx));
        _mm512_mask_storeu_ps(d + i, k, e);
        acc = _mm512_add_ps(acc, e);
    }
    return fold512(acc);
}

/* AVX2: 8 lanes */

TARGET_AVX2 INLINE __m256 exp8(__m256 x)
{
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(CE_EXP_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(CE_EXP_C1), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(CE_EXP_C2), r);
    __m256 p = _mm256_set1_ps(CE_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CE_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CE_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CE_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CE_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CE_EXP_P5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    __m256 v = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(CE_EXP_LOMIN), _CMP_LT_OQ);
    return _mm256_andnot_ps(under, v);
}

/* lanes [0, n) set, n in [1, 8) */
TARGET_AVX2 INLINE __m256i tail8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* l[i:i+n) with -inf in the lanes past it */
TARGET_AVX2 INLINE __m256 load_tail8(const float *p, __m256i k)
{
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, k),
                            _mm256_castsi256_ps(k));
}

TARGET_AVX2 static float max_avx2(const float *l, int V)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= V; i += 8)
        m = _mm256_max_ps(_mm256_loadu_ps(l + i), m);
    if (i < V) m = _mm256_max_ps(load_tail8(l + i, tail8(V - i)), m);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* l[i:i+8) - mx with the lanes from n on (n <= 0: all) read as -inf */
TARGET_AVX2 INLINE __m256 shifted8(const float *p, int n, __m256 mx)
{
    __m256 x = n >= 8   ? _mm256_loadu_ps(p)
               : n <= 0 ? _mm256_set1_ps(-INFINITY)
                        : load_tail8(p, tail8(n));
    return _mm256_sub_ps(x, mx);
}

TARGET_AVX2 static float sumexp_avx2(const float *l, int V, float maxv)
{
    __m256 mx = _mm256_set1_ps(maxv), lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int i = 0; i < V; i += 16) {
        lo = _mm256_add_ps(lo, exp8(shifted8(l + i, V - i, mx)));
        hi = _mm256_add_ps(hi, exp8(shifted8(l + i + 8, V - i - 8, mx)));
    }
    return fold16(lo, hi);
}

/* exp8 of l[i:i+8) - mx into d[i:i+8), the lanes from n on neither read nor stored (+0) */
TARGET_AVX2 INLINE __m256 exp_store8(float *d, const float *l, int n, __m256 mx)
{
    if (n <= 0) return _mm256_setzero_ps();
    __m256 e = exp8(shifted8(l, n, mx));
    if (n >= 8)
        _mm256_storeu_ps(d, e);
    else
        _mm256_maskstore_ps(d, tail8(n), e);
    return e;
}

TARGET_AVX2 static float exp_avx2(float *d, const float *l, int V, float maxv)
{
    __m256 mx = _mm256_set1_ps(maxv), lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int i = 0; i < V; i += 16) {
        lo = _mm256_add_ps(lo, exp_store8(d + i, l + i, V - i, mx));
        hi = _mm256_add_ps(hi, exp_store8(d + i + 8, l + i + 8, V - i - 8, mx));
    }
    return fold16(lo, hi);
}

const struct ce_row_ops ce_row_avx512 = {max_avx512, sumexp_avx512, exp_avx512};
const struct ce_row_ops ce_row_avx2 = {max_avx2, sumexp_avx2, exp_avx2};

#else /* no x86-64 vector kernels: cpu_isa_supported() says so and these never run */

const struct ce_row_ops ce_row_avx512 = {0}, ce_row_avx2 = {0};

#endif
