/* bench_cuda.c: the CUDA kernel benchmarks' start (see bench_cuda.h). */
#include "bench_cuda.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_check.h"

void bench_cuda_start(struct bench_cuda *b, const char *prog, int argc, char **argv)
{
    const char *out_path = NULL;
    check_set_program(prog);
    b->iters = 20;
    b->warmup = 3;
    b->json = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            b->iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            b->warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else
            user_fail("unknown argument %s: use --iters N --warmup N --out FILE", argv[i]);
    }
    if (b->iters < 1 || b->warmup < 0)
        user_fail("--iters must be positive and --warmup not negative");
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0)
        user_fail("no GPU: %s measures CUDA kernels", prog);
    CUDA_CHECK(cudaGetDeviceProperties(&b->prop, 0));
    CUDA_CHECK(cudaStreamCreate(&b->stream));
    CUBLAS_CHECK(cublasCreate(&b->blas));
    CUBLAS_CHECK(cublasSetStream(b->blas, b->stream));
    if (out_path && !(b->json = fopen(out_path, "w")))
        user_fail("--out %s: cannot write", out_path);
}
