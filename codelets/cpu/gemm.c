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
#define GEMM_MC 96   /* a multiple of every microkernel's MR */
#define GEMM_NC 1024 /* a multiple of every microkernel's NR */
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
#endif

static const struct gemm_isa gemm_isas[CPU_ISA_COUNT] = {
    [CPU_ISA_SCALAR] = {SCALAR_MR, SCALAR_NR, kernel_scalar},
#if defined(__x86_64__)
    [CPU_ISA_AVX2] = {6, 16, kernel_avx2},
    [CPU_ISA_AVX512] = {12, 32, kernel_avx512},
#endif
};

/* Panel p of B's block [pc, pc+kc) x [jc, jc+nc): kc rows of nr values, zeros past column nc. */
static void pack_b(float *dst, int trans_b, const float *B, long ldb, int pc, int kc, int jc,
                   int nc, int p, int nr)
{
    int j0 = p * nr, w = nc - j0 < nr ? nc - j0 : nr;
    for (int k = 0; k < kc; k++)
        for (int j = w; j < nr; j++)
            dst[(size_t)k * nr + j] = 0.0f;
    if (trans_b)
        for (int j = 0; j < w; j++) {
            const float *src = B + (size_t)(jc + j0 + j) * ldb + pc;
            for (int k = 0; k < kc; k++)
                dst[(size_t)k * nr + j] = src[k];
        }
    else
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(pc + k) * ldb + jc + j0;
            for (int j = 0; j < w; j++)
                dst[(size_t)k * nr + j] = src[j];
        }
}

/* A's block [i0, i0+mc) x [pc, pc+kc) as panels of mr rows (kc x mr each), zeros past row mc. */
static void pack_a(float *dst, int trans_a, const float *A, long lda, int i0, int mc, int pc,
                   int kc, int mr)
{
    for (int q = 0; q < mc; q += mr, dst += (size_t)kc * mr) {
        int h = mc - q < mr ? mc - q : mr;
        for (int k = 0; k < kc; k++)
            for (int r = h; r < mr; r++)
                dst[(size_t)k * mr + r] = 0.0f;
        if (trans_a)
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(pc + k) * lda + i0 + q;
                for (int r = 0; r < h; r++)
                    dst[(size_t)k * mr + r] = src[r];
            }
        else
            for (int r = 0; r < h; r++) {
                const float *src = A + (size_t)(i0 + q + r) * lda + pc;
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * mr + r] = src[k];
            }
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

static float *gemm_alloc(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    CHECK_MSG(p != NULL, "out of host memory for the matrix product's packed blocks");
    return p;
}

void gemm_f32_isa(enum cpu_isa isa, int trans_a, int trans_b, int M, int N, int K, const float *A,
                  long lda, const float *B, long ldb, float *C, long ldc)
{
    CHECK_MSG(cpu_isa_supported(isa), "gemm_f32_isa: this CPU does not run that ISA");
    if (M <= 0 || N <= 0 || K <= 0) return;
    const struct gemm_isa *g = &gemm_isas[isa];
    int ncmax = N < GEMM_NC ? N : GEMM_NC, kcmax = K < GEMM_KC ? K : GEMM_KC;
    float *bp = gemm_alloc((size_t)kcmax * ((ncmax + g->nr - 1) / g->nr) * g->nr);
    for (int jc = 0; jc < N; jc += GEMM_NC) {
        int nc = N - jc < GEMM_NC ? N - jc : GEMM_NC, npanels = (nc + g->nr - 1) / g->nr;
        int ngroups = (npanels + GEMM_UNIT_PANELS - 1) / GEMM_UNIT_PANELS;
        int nunits = (M + GEMM_MC - 1) / GEMM_MC * ngroups;
        for (int pc = 0; pc < K; pc += GEMM_KC) {
            int kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
#pragma omp parallel
            {
#pragma omp for schedule(static)
                for (int p = 0; p < npanels; p++)
                    pack_b(bp + (size_t)p * kc * g->nr, trans_b, B, ldb, pc, kc, jc, nc, p, g->nr);
                /* the implicit barrier: B's block is packed before any unit reads it */
                float *ap = gemm_alloc((size_t)GEMM_MC * kc);
                int packed = -1; /* the row block ap holds: a thread's units are consecutive */
#pragma omp for schedule(static)
                for (int u = 0; u < nunits; u++) {
                    int i0 = u / ngroups * GEMM_MC, mc = M - i0 < GEMM_MC ? M - i0 : GEMM_MC;
                    if (packed != i0) {
                        pack_a(ap, trans_a, A, lda, i0, mc, pc, kc, g->mr);
                        packed = i0;
                    }
                    int p0 = u % ngroups * GEMM_UNIT_PANELS;
                    int p1 = p0 + GEMM_UNIT_PANELS < npanels ? p0 + GEMM_UNIT_PANELS : npanels;
                    for (int p = p0; p < p1; p++) {
                        int j = jc + p * g->nr, w = N - j < g->nr ? N - j : g->nr;
                        for (int q = 0; q < mc; q += g->mr)
                            tile(g, kc, ap + (size_t)q * kc, bp + (size_t)p * kc * g->nr,
                                 C + (size_t)(i0 + q) * ldc + j, ldc,
                                 mc - q < g->mr ? mc - q : g->mr, w);
                    }
                }
                free(ap);
            }
        }
    }
    free(bp);
}

void gemm_f32(int trans_a, int trans_b, int M, int N, int K, const float *A, long lda,
              const float *B, long ldb, float *C, long ldc)
{
    gemm_f32_isa(cpu_isa_selected(), trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
}
