/* bench_cuda.h: the start shared by the CUDA kernel benchmarks (bench_attention, bench_kernels). */
#ifndef GPT50B_BENCH_CUDA_H
#define GPT50B_BENCH_CUDA_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>

/* The options every kernel benchmark takes and what it runs on. */
struct bench_cuda {
    int iters, warmup; /* --iters N (calls timed, default 20), --warmup N (before them, 3) */
    FILE *json;        /* --out FILE, open for writing; NULL without it */
    struct cudaDeviceProp prop; /* GPU 0, which the benchmark uses */
    cudaStream_t stream;        /* a stream of its own, and a cuBLAS handle on it */
    cublasHandle_t blas;
};

/* Parses argv, checks there is a GPU, makes the stream and the handle and opens --out; a user
 * error (one line, exit 2) for a bad argument, no GPU or an unwritable --out. */
void bench_cuda_start(struct bench_cuda *b, const char *prog, int argc, char **argv);

#endif
