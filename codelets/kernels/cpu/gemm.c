/* gemm.c: the fixed-order fp32 matrix product of gemm.h.
 *
 * The blocking is GotoBLAS/BLIS's: for each block of NC columns and each block of KC steps of the
 * reduction, B is packed into panels of NR columns (KC x NR, zero-padded), the threads share out
 * work units of MC rows x UNIT_PANELS panels, pack their MC x KC block of A into panels of MR rows,
 * and a microkernel keeps an MR x NR tile of C in registers for KC steps: one fused multiply-add
 * per element and step, k ascending. Why the order is fixed:
 * - threads split output tiles, never a reduction;
 * - the KC blocks run one after the other, each continuing every element's chain from the value
 *   the previous block stored (an fp32 store and load is exact);
 * - a vector lane is one output element, so the width of the vector (16, 8, 1) changes which
 *   elements run together, never the operations of one element; vfmadd and fmaf both round
 *   a*b + c once.
 * Partial tiles go through a scratch tile, so padding never reaches C. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "gemm.h"

#define GEMM_KC 256
#define GEMM_MC 96   /* rows of A per block, at most (plus MR - 1, see row_block) */
#define GEMM_NC 4096 /* a multiple of every microkernel's NR */
/* NR panels of B per work unit: the units are small enough to balance the threads, large enough
 * that packing the unit's A block (MC x KC) is cheap next to its MC x KC x 4 NR products. */
#define GEMM_UNIT_PANELS 4
#define GEMM_MR_MAX      12
#define GEMM_NR_MAX      32

/* C[0..MR) x [0..NR) (rows ldc apart) += A panel (kc x MR, k major) . B panel (kc x NR). */
typedef void (*gemm_kernel)(int kc, const float *a, const float *b, float *c, long ldc);

struct gemm_isa {
    int mr, nr;
    gemm_kernel kernel;
};

/* Scalar: fmaf is the correctly rounded fused multiply-add, as the vector instructions are. */
#define SCALAR_MR 4
#define SCALAR_NR 8
static void kernel_scalar(int kc, const float *a, const float *b, float *c, long ldc)
{
    float acc[SCALAR_MR][SCALAR_NR];
    for (int r = 0; r < SCALAR_MR; r++)
        for (int j = 0; j < SCALAR_NR; j++)
            acc[r][j] = c[r * ldc + j];
    for (int k = 0; k < kc; k++, a += SCALAR_MR, b += SCALAR_NR)
        for (int r = 0; r < SCALAR_MR; r++)
            for (int j = 0; j < SCALAR_NR; j++)
                acc[r][j] = fmaf(a[r], b[j], acc[r][j]);
    for (int r = 0; r < SCALAR_MR; r++)
        for (int j = 0; j < SCALAR_NR; j++)
            c[r * ldc + j] = acc[r][j];
}

#if defined(__x86_64__)
#include <immintrin.h>

/* AVX2: 6 rows x 16 columns, 12 accumulators (Haswell's two FMA ports with latency 5 need 10). */
#define ROW2(r)                                                                                    \
    __m256 c##r##0 = _mm256_loadu_ps(c + (r)*ldc), c##r##1 = _mm256_loadu_ps(c + (r)*ldc + 8)
#define FMA2(r)                                                                                    \
    do {                                                                                           \
        __m256 ar = _mm256_broadcast_ss(a + (r));                                                  \
        c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                                                \
        c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);                                                \
    } while (0)
#define STORE2(r)                                                                                  \
    do {                                                                                           \
        _mm256_storeu_ps(c + (r)*ldc, c##r##0);                                                    \
        _mm256_storeu_ps(c + (r)*ldc + 8, c##r##1);                                                \
    } while (0)

__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *a, const float *b,
                                                            float *c, long ldc)
{
    ROW2(0);
    ROW2(1);
    ROW2(2);
    ROW2(3);
    ROW2(4);
    ROW2(5);
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        FMA2(0);
        FMA2(1);
        FMA2(2);
        FMA2(3);
        FMA2(4);
        FMA2(5);
    }
    STORE2(0);
    STORE2(1);
    STORE2(2);
    STORE2(3);
    STORE2(4);
    STORE2(5);
}

/* AVX-512: 12 rows x 32 columns, 24 accumulators; 14 loads per 24 fused multiply-adds keep the
 * two load ports below the two FMA ports. */
#define ROW5(r)                                                                                    \
    __m512 c##r##0 = _mm512_loadu_ps(c + (r)*ldc), c##r##1 = _mm512_loadu_ps(c + (r)*ldc + 16)
#define FMA5(r)                                                                                    \
    do {                                                                                           \
        __m512 ar = _mm512_set1_ps(a[r]);                                                          \
        c##r##0 = _mm512_fmadd_ps(ar, b0, c##r##0);                                                \
        c##r##1 = _mm512_fmadd_ps(ar, b1, c##r##1);                                                \
    } while (0)
#define STORE5(r)                                                                                  \
    do {                                                                                           \
        _mm512_storeu_ps(c + (r)*ldc, c##r##0);                                                    \
        _mm512_storeu_ps(c + (r)*ldc + 16, c##r##1);                                               \
    } while (0)

__attribute__((target("avx512f"))) static void kernel_avx512(int kc, const float *a, const float *b,
                                                             float *c, long ldc)
{
    ROW5(0);
    ROW5(1);
    ROW5(2);
    ROW5(3);
    ROW5(4);
    ROW5(5);
    ROW5(6);
    ROW5(7);
    ROW5(8);
    ROW5(9);
    ROW5(10);
    ROW5(11);
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++, a += 12, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        FMA5(0);
        FMA5(1);
        FMA5(2);
        FMA5(3);
        FMA5(4);
        FMA5(5);
        FMA5(6);
        FMA5(7);
        FMA5(8);
        FMA5(9);
        FMA5(10);
        FMA5(11);
    }
    STORE5(0);
    STORE5(1);
    STORE5(2);
    STORE5(3);
    STORE5(4);
    STORE5(5);
    STORE5(6);
    STORE5(7);
    STORE5(8);
    STORE5(9);
    STORE5(10);
    STORE5(11);
}

/* Transposes rows r[0..8) of 8 floats: out[m] = (r[0][m], ..., r[7][m]). */
__attribute__((target("avx2"))) static inline void transpose8(__m256 r[8], __m256 out[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Packs w rows of a k-contiguous matrix, row j at src + j*ld, for kc steps into panels of width
 * w: dst[k*w + j] = src[j*ld + k]. Used for B^T (w = NR) and for A (w = MR). 8 x 8 blocks are
 * transposed in registers (rows past w read as zeros and their lanes not stored), the last kc % 8
 * steps go one by one. A copy: no arithmetic, so no effect on the bits of the product. */
__attribute__((target("avx2"))) static void pack_t_avx2(float *dst, const float *src, long ld,
                                                        int kc, int w)
{
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int h = 0; h < w; h += 8) {
            int n = w - h < 8 ? w - h : 8;
            __m256 r[8], t[8];
            for (int j = 0; j < 8; j++)
                r[j] =
                    j < n ? _mm256_loadu_ps(src + (size_t)(h + j) * ld + k) : _mm256_setzero_ps();
            transpose8(r, t);
            for (int m = 0; m < 8; m++) {
                float *d = dst + (size_t)(k + m) * w + h;
                if (n == 8) {
                    _mm256_storeu_ps(d, t[m]);
                } else { /* no masked store: VMASKMOVPS is microcoded and slow on AMD */
                    float lanes[8];
                    _mm256_storeu_ps(lanes, t[m]);
                    for (int j = 0; j < n; j++)
                        d[j] = lanes[j];
                }
            }
        }
    for (; k < kc; k++)
        for (int j = 0; j < w; j++)
            dst[(size_t)k * w + j] = src[(size_t)j * ld + k];
}
#endif

static const struct gemm_isa gemm_isas[CPU_ISA_COUNT] = {
    [CPU_ISA_SCALAR] = {SCALAR_MR, SCALAR_NR, kernel_scalar},
#if defined(__x86_64__)
    [CPU_ISA_AVX2] = {6, 16, kernel_avx2},
    [CPU_ISA_AVX512] = {12, 32, kernel_avx512},
#endif
};

/* Panel p of B^T's block (trans_b: B's rows are the product's columns): kc rows of nr values,
 * zeros past column nc, dst[k*nr + j] = B[(jc + p*nr + j)*ldb + pc + k]. */
static void pack_bt_panel(float *dst, const float *B, long ldb, int pc, int kc, int jc, int nc,
                          int p, int nr, enum cpu_isa isa)
{
    int j0 = p * nr, w = nc - j0 < nr ? nc - j0 : nr;
    const float *src = B + (size_t)(jc + j0) * ldb + pc;
#if defined(__x86_64__)
    if (w == nr && isa != CPU_ISA_SCALAR) {
        pack_t_avx2(dst, src, ldb, kc, nr);
        return;
    }
#endif
    for (int k = 0; k < kc; k++, dst += nr)
        for (int j = 0; j < nr; j++)
            dst[j] = j < w ? src[(size_t)j * ldb + k] : 0.0f;
}

/* Row k of B's block [pc, pc+kc) x [jc, jc+nc) into every panel (row k of panel p at
 * bp + p*kc*nr + k*nr), zeros past column nc: one sequential read of the row. */
static void pack_b_row(float *bp, const float *B, long ldb, int pc, int kc, int jc, int nc, int k,
                       int nr)
{
    const float *row = B + (size_t)(pc + k) * ldb + jc;
    for (int j0 = 0; j0 < nc; j0 += nr) {
        float *d = bp + (size_t)(j0 / nr) * kc * nr + (size_t)k * nr;
        int w = nc - j0 < nr ? nc - j0 : nr;
        for (int j = 0; j < nr; j++)
            d[j] = j < w ? row[j0 + j] : 0.0f;
    }
}

/* A's block [i0, i0+mc) x [pc, pc+kc) as panels of mr rows (panel q/mr at dst + q*kc, kc x mr,
 * k major), zeros past row mc. Reads A's rows (or, trans_a, its columns) sequentially. */
static void pack_a(float *dst, int trans_a, const float *A, long lda, int i0, int mc, int pc,
                   int kc, int mr, enum cpu_isa isa)
{
    if (trans_a) { /* op(A)'s column k is A's row pc + k */
        for (int k = 0; k < kc; k++) {
            const float *row = A + (size_t)(pc + k) * lda + i0;
            for (int q = 0; q < mc; q += mr) {
                float *d = dst + (size_t)q * kc + (size_t)k * mr;
                for (int r = 0; r < mr; r++)
                    d[r] = q + r < mc ? row[q + r] : 0.0f;
            }
        }
        return;
    }
    for (int q = 0; q < mc; q += mr) {
        int h = mc - q < mr ? mc - q : mr;
        const float *src = A + (size_t)(i0 + q) * lda + pc;
        float *d = dst + (size_t)q * kc;
#if defined(__x86_64__)
        if (h == mr && isa != CPU_ISA_SCALAR) {
            pack_t_avx2(d, src, lda, kc, mr);
            continue;
        }
#endif
        for (int k = 0; k < kc; k++, d += mr)
            for (int r = 0; r < mr; r++)
                d[r] = r < h ? src[(size_t)r * lda + k] : 0.0f;
    }
}

/* One MR x NR tile of C at (i, j) with h x w valid elements. */
static void tile(const struct gemm_isa *g, int kc, const float *a, const float *b, float *C,
                 long ldc, int h, int w)
{
    if (h == g->mr && w == g->nr) {
        g->kernel(kc, a, b, C, ldc);
        return;
    }
    float t[GEMM_MR_MAX * GEMM_NR_MAX];
    for (int r = 0; r < h; r++)
        for (int j = 0; j < w; j++)
            t[r * g->nr + j] = C[r * ldc + j];
    g->kernel(kc, a, b, t, g->nr);
    for (int r = 0; r < h; r++)
        for (int j = 0; j < w; j++)
            C[r * ldc + j] = t[r * g->nr + j];
}

/* Scratch buffers, 64-byte aligned, kept by each thread for its next products: a fresh
 * allocation of this size is an mmap whose page faults cost as much as a small product. */
enum gemm_scratch_slot {
    GEMM_SCRATCH_B0, /* packed B, even steps (the caller's, shared by the threads) */
    GEMM_SCRATCH_B1, /* packed B, odd steps */
    GEMM_SCRATCH_A,  /* packed A (each thread's own) */
    GEMM_SCRATCH_COUNT,
};

/* n floats of this thread's scratch buffer `slot` */
static float *gemm_scratch(enum gemm_scratch_slot slot, size_t n)
{
    static _Thread_local float *buf[GEMM_SCRATCH_COUNT];
    static _Thread_local size_t cap[GEMM_SCRATCH_COUNT];
    if (n > cap[slot]) {
        free(buf[slot]);
        cap[slot] = (n + 15) / 16 * 16;
        buf[slot] = aligned_alloc(64, cap[slot] * sizeof(float));
        CHECK_MSG(buf[slot] != NULL, "out of host memory for the matrix product's packed blocks");
    }
    return buf[slot];
}

/* First row of row block b of nblocks: the blocks split M evenly (so that the threads, which take
 * runs of consecutive blocks, get the same number of rows) with boundaries on multiples of mr, so
 * that only the last block can end in a partial panel. */
static int row_block(int b, int nblocks, int M, int mr)
{
    return b == nblocks ? M : (int)((long)b * M / nblocks / mr * mr);
}

void gemm_f32_isa(enum cpu_isa isa, int trans_a, int trans_b, int M, int N, int K, const float *A,
                  long lda, const float *B, long ldb, float *C, long ldc)
{
    CHECK_MSG(cpu_isa_supported(isa), "gemm_f32_isa: this CPU does not run that ISA");
    if (M <= 0 || N <= 0 || K <= 0) return;
    const struct gemm_isa *g = &gemm_isas[isa];
    int ncmax = N < GEMM_NC ? N : GEMM_NC, kcmax = K < GEMM_KC ? K : GEMM_KC;
    size_t bsize = (size_t)kcmax * ((ncmax + g->nr - 1) / g->nr) * g->nr;
    float *bps[2] = {gemm_scratch(GEMM_SCRATCH_B0, bsize), gemm_scratch(GEMM_SCRATCH_B1, bsize)};
    int nblocks = (M + GEMM_MC - 1) / GEMM_MC;
    /* One parallel region, one barrier per step (block of B): packing step s's B waits for no
     * one, since step s-2, the last user of its buffer, ended before step s-1's barrier. Units
     * map to threads the same way at every step (static schedule, same count), so each tile of
     * C has one thread, which runs its steps in order. */
#pragma omp parallel
    {
        float *ap = gemm_scratch(GEMM_SCRATCH_A, (size_t)(GEMM_MC + GEMM_MR_MAX) * kcmax);
        int step = 0;
        for (int jc = 0; jc < N; jc += GEMM_NC) {
            int nc = N - jc < GEMM_NC ? N - jc : GEMM_NC, npanels = (nc + g->nr - 1) / g->nr;
            int ngroups = (npanels + GEMM_UNIT_PANELS - 1) / GEMM_UNIT_PANELS;
            int nunits = nblocks * ngroups;
            for (int pc = 0; pc < K; pc += GEMM_KC, step++) {
                int kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
                float *bp = bps[step % 2];
                if (trans_b) {
#pragma omp for schedule(static)
                    for (int p = 0; p < npanels; p++)
                        pack_bt_panel(bp + (size_t)p * kc * g->nr, B, ldb, pc, kc, jc, nc, p, g->nr,
                                      isa);
                } else {
#pragma omp for schedule(static)
                    for (int k = 0; k < kc; k++)
                        pack_b_row(bp, B, ldb, pc, kc, jc, nc, k, g->nr);
                }
                int packed = -1; /* the row block ap holds: a thread's units are consecutive */
#pragma omp for schedule(static) nowait
                for (int u = 0; u < nunits; u++) {
                    int b = u / ngroups, i0 = row_block(b, nblocks, M, g->mr);
                    int mc = row_block(b + 1, nblocks, M, g->mr) - i0;
                    if (packed != i0) {
                        pack_a(ap, trans_a, A, lda, i0, mc, pc, kc, g->mr, isa);
                        packed = i0;
                    }
                    int p0 = u % ngroups * GEMM_UNIT_PANELS;
                    int p1 = p0 + GEMM_UNIT_PANELS < npanels ? p0 + GEMM_UNIT_PANELS : npanels;
                    for (int p = p0; p < p1; p++) {
                        int j = jc + p * g->nr, w = N - j < g->nr ? N - j : g->nr;
                        for (int q = 0; q < mc; q += g->mr) {
                            /* the next tile's rows of C, while this one computes */
                            for (int r = q + g->mr; r < q + 2 * g->mr && r < mc; r++) {
                                __builtin_prefetch(C + (size_t)(i0 + r) * ldc + j, 1);
                                __builtin_prefetch(C + (size_t)(i0 + r) * ldc + j + w - 1, 1);
                            }
                            tile(g, kc, ap + (size_t)q * kc, bp + (size_t)p * kc * g->nr,
                                 C + (size_t)(i0 + q) * ldc + j, ldc,
                                 mc - q < g->mr ? mc - q : g->mr, w);
                        }
                    }
                }
            }
        }
    }
}

void gemm_f32(int trans_a, int trans_b, int M, int N, int K, const float *A, long lda,
              const float *B, long ldb, float *C, long ldc)
{
    gemm_f32_isa(cpu_isa_selected(), trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
}
