/* test_gemm_cpu.c: the CPU matrix product keeps its promise of one summation order (gemm.h).
 *
 * The promise is checked against its own definition, a naive loop of fmaf in ascending k per
 * element, bit for bit: on every instruction set this CPU runs (scalar, AVX2, AVX-512), with 1,
 * 2 and 3 threads, all four transpose cases, leading dimensions wider than the matrices, and
 * shapes that leave partial tiles and span several blocks of K (KC = 256) and of N (NC = 1024).
 * Then the consequences the callers use: a product split along K into consecutive calls equals
 * the whole, and a block of rows and columns computed alone equals that block of the whole. The
 * definition itself is checked against a double-precision product (within K ulps of sum |a b|),
 * so a wrong index in both could not pass. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu_test.h"
#include "cpu/gemm.h"

struct shape {
    int M, N, K;
};

static const struct shape shapes[] = {
    {1, 1, 1}, {5, 7, 3}, {13, 37, 300}, {100, 1100, 40}, {97, 33, 513}, {30, 64, 256},
};

/* op(X)[r][c] of a row-major matrix with leading dimension ld */
static float at(const float *X, long ld, int trans, int r, int c)
{
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* The definition: every element one fmaf chain in ascending k, from C's value. */
static void gemm_naive(int ta, int tb, int M, int N, int K, const float *A, long lda,
                       const float *B, long ldb, float *C, long ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float c = C[(size_t)i * ldc + j];
            for (int k = 0; k < K; k++)
                c = fmaf(at(A, lda, ta, i, k), at(B, ldb, tb, k, j), c);
            C[(size_t)i * ldc + j] = c;
        }
}

/* The definition against exact arithmetic: |c - exact| <= K * 2^-23 * (|c0| + sum |a b|). */
static int check_definition(const struct shape *s, int ta, int tb, const float *A, long lda,
                            const float *B, long ldb, const float *C0, const float *C, long ldc)
{
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            double exact = C0[(size_t)i * ldc + j], mag = fabs(exact);
            for (int k = 0; k < s->K; k++) {
                double p = (double)at(A, lda, ta, i, k) * at(B, ldb, tb, k, j);
                exact += p;
                mag += fabs(p);
            }
            double err = fabs(C[(size_t)i * ldc + j] - exact);
            if (err > (s->K + 1) * 0x1p-23 * mag) {
                printf("FAIL naive product %dx%dx%d: element (%d,%d) %.9g, exact %.9g\n", s->M,
                       s->N, s->K, i, j, C[(size_t)i * ldc + j], exact);
                return 1;
            }
        }
    return 0;
}

static int test_shape(const struct shape *s, int ta, int tb)
{
    /* leading dimensions 3 wider than each stored matrix's rows */
    long lda = (ta ? s->M : s->K) + 3, ldb = (tb ? s->K : s->N) + 3, ldc = s->N + 3;
    size_t na = (size_t)(ta ? s->K : s->M) * lda, nb = (size_t)(tb ? s->N : s->K) * ldb;
    size_t nc = (size_t)s->M * ldc;
    float *A = test_rand(na, 1), *B = test_rand(nb, 1), *C0 = test_rand(nc, 1);
    float *ref = test_dup(C0, nc);
    int fail = 0;
    char what[128];
    gemm_naive(ta, tb, s->M, s->N, s->K, A, lda, B, ldb, ref, ldc);
    fail |= check_definition(s, ta, tb, A, lda, B, ldb, C0, ref, ldc);

    for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
        if (!cpu_isa_supported(isa)) continue;
        for (int threads = 1; threads <= 3; threads++) {
            omp_set_num_threads(threads);
            float *C = test_dup(C0, nc);
            gemm_f32_isa(isa, ta, tb, s->M, s->N, s->K, A, lda, B, ldb, C, ldc);
            snprintf(what, sizeof what, "%s %d thread(s) %dx%dx%d trans %d%d", cpu_isa_name(isa),
                     threads, s->M, s->N, s->K, ta, tb);
            fail |= test_same_bits(what, C, ref, nc * sizeof(float));
            free(C);
        }
        /* K in two consecutive calls, split off the block boundary */
        int k1 = s->K / 3;
        float *C = test_dup(C0, nc);
        gemm_f32_isa(isa, ta, tb, s->M, s->N, k1, A, lda, B, ldb, C, ldc);
        gemm_f32_isa(isa, ta, tb, s->M, s->N, s->K - k1, ta ? A + (size_t)k1 * lda : A + k1, lda,
                     tb ? B + k1 : B + (size_t)k1 * ldb, ldb, C, ldc);
        snprintf(what, sizeof what, "%s K split at %d, %dx%dx%d trans %d%d", cpu_isa_name(isa), k1,
                 s->M, s->N, s->K, ta, tb);
        fail |= test_same_bits(what, C, ref, nc * sizeof(float));
        /* the block of rows [i0, M) and columns [j0, N) alone */
        int i0 = s->M / 2, j0 = s->N / 2;
        memcpy(C, C0, nc * sizeof(float));
        gemm_f32_isa(isa, ta, tb, s->M - i0, s->N - j0, s->K, ta ? A + i0 : A + (size_t)i0 * lda,
                     lda, tb ? B + (size_t)j0 * ldb : B + j0, ldb, C + (size_t)i0 * ldc + j0, ldc);
        int bad = 0;
        for (int i = 0; i < s->M; i++)
            for (int j = 0; j < s->N; j++) {
                size_t e = (size_t)i * ldc + j;
                float want = i >= i0 && j >= j0 ? ref[e] : C0[e];
                bad |= memcmp(&C[e], &want, sizeof want) != 0;
            }
        printf("%s %s block [%d:, %d:] of %dx%dx%d trans %d%d alone\n", bad ? "FAIL" : "ok  ",
               cpu_isa_name(isa), i0, j0, s->M, s->N, s->K, ta, tb);
        fail |= bad;
        free(C);
    }
    free(A);
    free(B);
    free(C0);
    free(ref);
    return fail;
}

int main(void)
{
    test_seed(7);
    int fail = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++)
            fail |= test_shape(&shapes[i], t >> 1, t & 1);
    printf("%s\n", fail ? "FAIL" : "ok");
    return fail;
}
