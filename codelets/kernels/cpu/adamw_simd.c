/* adamw_simd.c: the AdamW step on AVX-512 and AVX2, bit-identical to the scalar reference.
 *
 * One fused pass per block: load the gradient (widened from fp16 with F16C, from bf16 by a
 * shift), update master, m and v in registers, store them and the 16-bit parameter copy. Each
 * kernel is compiled for its ISA with a target attribute; adamw.c calls one only after checking
 * the CPU runs it, and owns the OpenMP loop, the factors and the skip.
 *
 * Bit identity with adamw.c's scalar loop holds because every vector operation is the same
 * IEEE-754 fp32 operation as its scalar counterpart (mul, add, sub, div, sqrt are all correctly
 * rounded) applied in the same order, e.g. v = beta2*v + ((1-beta2)*g)*g. A fused multiply-add
 * would round once where the reference rounds twice, so contraction is turned off for this file
 * (GCC contracts the intrinsics' vector operators otherwise in GNU C modes). The 16-bit roundings
 * match runtime/base/dtype.c: F16C's round-to-nearest-even with overflow to inf and NaN quieted
 * keeping the high payload, and bf16 as (x + 0x7fff + lsb) >> 16 with NaN -> (x >> 16) | 0x40.
 *
 * The 16-bit parameter copy is only written, never read: where its block is aligned to the
 * vector's store width, streaming (non-temporal) stores write it without first reading its cache
 * lines (a plain store's read for ownership), 28 instead of 30 bytes of memory traffic per bf16
 * parameter; an sfence ends the block, so the stores are visible before the task ends. Same
 * values either way: only how they reach memory differs. */
#pragma GCC optimize("fp-contract=off")

#include <stdint.h>

#include "adamw_simd.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TARGET_AVX2   __attribute__((target("avx2,f16c")))
#define INLINE        static inline __attribute__((always_inline))

/* AVX-512: 16 lanes; lanes off the mask are neither loaded nor stored. */

TARGET_AVX512 INLINE __m512 load16(enum dtype dt, const void *p, __mmask16 k)
{
    if (dt == DTYPE_FP32) return _mm512_maskz_loadu_ps(k, p);
    __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if (dt == DTYPE_FP16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

TARGET_AVX512 INLINE __m256i bf16_round16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
    __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

TARGET_AVX512 INLINE __m256i to16(enum dtype dt, __m512 x)
{
    return dt == DTYPE_FP16 ? _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT) : bf16_round16(x);
}

/* The parameter copy's 16 lanes under mask k; stream: all 16, at a 32-byte aligned p. */
TARGET_AVX512 INLINE void store16(enum dtype dt, void *p, __mmask16 k, __m512 x, int stream)
{
    if (dt == DTYPE_FP32)
        _mm512_mask_storeu_ps(p, k, x);
    else if (stream)
        _mm256_stream_si256(p, to16(dt, x));
    else
        _mm256_mask_storeu_epi16(p, k, to16(dt, x));
}

struct factors16 {
    __m512 gscale, beta1, beta2, eps, omb1, omb2, decay, step_size, bc2_sqrt;
};

/* Elements [i, i+16) under mask k, in the reference's order of operations. */
TARGET_AVX512 INLINE void step16(const struct factors16 *c, void *param, float *w, float *m,
                                 float *v, const void *grad, size_t i, __mmask16 k, enum dtype dt,
                                 int stream)
{
    size_t es = dt == DTYPE_FP32 ? 4 : 2;
    __m512 g = _mm512_mul_ps(load16(dt, (const char *)grad + i * es, k), c->gscale);
    __m512 wi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + i), c->decay);
    __m512 mi = _mm512_add_ps(_mm512_mul_ps(c->beta1, _mm512_maskz_loadu_ps(k, m + i)),
                              _mm512_mul_ps(c->omb1, g));
    __m512 vi = _mm512_add_ps(_mm512_mul_ps(c->beta2, _mm512_maskz_loadu_ps(k, v + i)),
                              _mm512_mul_ps(_mm512_mul_ps(c->omb2, g), g));
    __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), c->bc2_sqrt), c->eps);
    wi = _mm512_sub_ps(wi, _mm512_div_ps(_mm512_mul_ps(c->step_size, mi), denom));
    _mm512_mask_storeu_ps(w + i, k, wi);
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    if (param) store16(dt, (char *)param + i * es, k, wi, stream);
}

TARGET_AVX512 INLINE void run16(const struct adamw_factors *f, void *param, float *w, float *m,
                                float *v, const void *grad, size_t len, enum dtype dt, int stream)
{
    const struct factors16 c = {
        _mm512_set1_ps(f->gscale),          _mm512_set1_ps(f->beta1),
        _mm512_set1_ps(f->beta2),           _mm512_set1_ps(f->eps),
        _mm512_set1_ps(f->one_minus_beta1), _mm512_set1_ps(f->one_minus_beta2),
        _mm512_set1_ps(f->decay),           _mm512_set1_ps(f->step_size),
        _mm512_set1_ps(f->bc2_sqrt),
    };
    size_t i = 0;
    for (; i + 16 <= len; i += 16)
        step16(&c, param, w, m, v, grad, i, 0xffff, dt, stream);
    if (i < len) step16(&c, param, w, m, v, grad, i, (__mmask16)((1u << (len - i)) - 1), dt, 0);
    if (stream) _mm_sfence();
}

/* Whether a block's 16-bit parameter copy takes streaming stores of `width` bytes. */
static int streams(const void *param, enum dtype dt, uintptr_t width)
{
    return param && dt != DTYPE_FP32 && ((uintptr_t)param & (width - 1)) == 0;
}

TARGET_AVX512 size_t adamw_block_avx512(const struct adamw_factors *f, void *param, float *master,
                                        float *m, float *v, const void *grad, size_t len,
                                        enum dtype dt)
{
    /* one instance per dtype, so the conversions are decided at compile time */
    int stream = streams(param, dt, 32);
    switch (dt) {
    case DTYPE_FP32:
        run16(f, param, master, m, v, grad, len, DTYPE_FP32, 0);
        break;
    case DTYPE_FP16:
        if (stream)
            run16(f, param, master, m, v, grad, len, DTYPE_FP16, 1);
        else
            run16(f, param, master, m, v, grad, len, DTYPE_FP16, 0);
        break;
    case DTYPE_BF16:
        if (stream)
            run16(f, param, master, m, v, grad, len, DTYPE_BF16, 1);
        else
            run16(f, param, master, m, v, grad, len, DTYPE_BF16, 0);
        break;
    }
    return len;
}

/* AVX2: 8 lanes, whole vectors only; the scalar code does the last len % 8 elements. */

TARGET_AVX2 INLINE __m256 load8(enum dtype dt, const void *p)
{
    if (dt == DTYPE_FP32) return _mm256_loadu_ps(p);
    __m128i h = _mm_loadu_si128(p);
    if (dt == DTYPE_FP16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

TARGET_AVX2 INLINE __m128i bf16_round8(__m256 x)
{
    __m256i u = _mm256_castps_si256(x), hi = _mm256_srli_epi32(u, 16);
    __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
    r = _mm256_srli_epi32(r, 16);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
    /* every lane is below 0x10000, so the saturating pack is exact; it packs within 128-bit
     * halves, and the permute brings the two halves' results together */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
}

/* The parameter copy's 8 lanes; stream: at a 16-byte aligned p. */
TARGET_AVX2 INLINE void store8(enum dtype dt, void *p, __m256 x, int stream)
{
    if (dt == DTYPE_FP32) {
        _mm256_storeu_ps(p, x);
        return;
    }
    __m128i h = dt == DTYPE_FP16 ? _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT) : bf16_round8(x);
    if (stream)
        _mm_stream_si128(p, h);
    else
        _mm_storeu_si128(p, h);
}

TARGET_AVX2 INLINE size_t run8(const struct adamw_factors *f, void *param, float *w, float *m,
                               float *v, const void *grad, size_t len, enum dtype dt, int stream)
{
    const __m256 gscale = _mm256_set1_ps(f->gscale), beta1 = _mm256_set1_ps(f->beta1);
    const __m256 beta2 = _mm256_set1_ps(f->beta2), eps = _mm256_set1_ps(f->eps);
    const __m256 omb1 = _mm256_set1_ps(f->one_minus_beta1);
    const __m256 omb2 = _mm256_set1_ps(f->one_minus_beta2);
    const __m256 decay = _mm256_set1_ps(f->decay), step_size = _mm256_set1_ps(f->step_size);
    const __m256 bc2_sqrt = _mm256_set1_ps(f->bc2_sqrt);
    size_t es = dt == DTYPE_FP32 ? 4 : 2, end = len & ~(size_t)7;
    for (size_t i = 0; i < end; i += 8) {
        __m256 g = _mm256_mul_ps(load8(dt, (const char *)grad + i * es), gscale);
        __m256 wi = _mm256_mul_ps(_mm256_loadu_ps(w + i), decay);
        __m256 mi =
            _mm256_add_ps(_mm256_mul_ps(beta1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(omb1, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(beta2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(omb2, g), g));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2_sqrt), eps);
        wi = _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(step_size, mi), denom));
        _mm256_storeu_ps(w + i, wi);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        if (param) store8(dt, (char *)param + i * es, wi, stream);
    }
    if (stream) _mm_sfence();
    return end;
}

TARGET_AVX2 size_t adamw_block_avx2(const struct adamw_factors *f, void *param, float *master,
                                    float *m, float *v, const void *grad, size_t len, enum dtype dt)
{
    int stream = streams(param, dt, 16);
    switch (dt) {
    case DTYPE_FP32:
        return run8(f, param, master, m, v, grad, len, DTYPE_FP32, 0);
    case DTYPE_FP16:
        return stream ? run8(f, param, master, m, v, grad, len, DTYPE_FP16, 1)
                      : run8(f, param, master, m, v, grad, len, DTYPE_FP16, 0);
    case DTYPE_BF16:
        return stream ? run8(f, param, master, m, v, grad, len, DTYPE_BF16, 1)
                      : run8(f, param, master, m, v, grad, len, DTYPE_BF16, 0);
    }
    return 0;
}

#else /* no x86-64 vector kernels: cpu_isa_supported() says so and these never run */

size_t adamw_block_avx512(const struct adamw_factors *f, void *param, float *master, float *m,
                          float *v, const void *grad, size_t len, enum dtype dt)
{
    return 0;
}

size_t adamw_block_avx2(const struct adamw_factors *f, void *param, float *master, float *m,
                        float *v, const void *grad, size_t len, enum dtype dt)
{
    return 0;
}

#endif
