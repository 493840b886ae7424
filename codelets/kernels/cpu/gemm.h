/* gemm.h: the fp32 matrix product of the CPU kernels, with one summation order everywhere.
 *
 * gemm_f32 accumulates C[M,N] += op(A)[M,K] . op(B)[K,N] (row-major; op transposes when asked).
 * Each element of C is one chain of fused multiply-adds in ascending k, starting from the value C
 * holds:
 *
 *     c = fma(a[i][K-1], b[K-1][j], ... fma(a[i][1], b[1][j], fma(a[i][0], b[0][j], c)) ...)
 *
 * on every thread count, every instruction set (AVX-512, AVX2, scalar fmaf), every blocking and
 * every shape around the element. What callers get from that:
 * - the same bits on any x86-64 processor and any number of threads;
 * - a product split along K into consecutive calls (tiles of a layer adding their share of dinp
 *   one after the other) equals the product in one call;
 * - rows or columns computed alone (tiles of output channels, a rank's rows) equal the same
 *   rows or columns of the whole product.
 * Private to codelets/kernels/cpu/ and its tests and benchmarks. */
#ifndef GPT50B_GEMM_H
#define GPT50B_GEMM_H

#include "cpu_isa.h"

/* C += op(A) . op(B) on cpu_isa_selected(). op(A)[i][k] is A[i*lda + k], or A[k*lda + i] when
 * trans_a; op(B)[k][j] is B[k*ldb + j], or B[j*ldb + k] when trans_b. Splits the output tiles
 * over the OpenMP threads of the calling task. O(M*N*K); packs B in two buffers of at most
 * KC x NC floats (4 MiB each) and A in one of (MC + MR) x KC (108 KiB) per thread, kept by each
 * thread for its next products. */
void gemm_f32(int trans_a, int trans_b, int M, int N, int K, const float *A, long lda,
              const float *B, long ldb, float *C, long ldc);
/* The same on a given ISA, which must be supported (checked): for tests and benchmarks. */
void gemm_f32_isa(enum cpu_isa isa, int trans_a, int trans_b, int M, int N, int K, const float *A,
                  long lda, const float *B, long ldb, float *C, long ldc);

#endif
