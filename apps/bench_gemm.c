/* bench_gemm: the matmul codelet against a direct cuBLAS call on one GPU.
 *
 * Both compute out[M,N] = inp[M,K] . W[N,K]^T in fp16 or bf16 with fp32 accumulation. The codelet
 * path submits StarPU tasks (task creation, dependency tracking, the driver's stream handling and
 * the kernel's cuBLASLt call included); the direct path calls cublasGemmEx on a stream with the
 * data already on the GPU. Both multiply the same random values. Prints a table and writes a
 * JSON result file.
 *
 *     bench_gemm [--size 8192] [--iters 20] [--dtype fp16|bf16] [--out FILE.json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "cuda_check.h"
#include "timer.h"

/* n elements of dt in [-0.5, 0.5) into host memory at dst: the same values for both paths (zeros
 * or constants would run faster than real data). */
static void fill_random(void *dst, size_t n, enum dtype dt)
{
    float *tmp = malloc(n * sizeof *tmp);
    uint64_t s = 42;
    CHECK(tmp);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tmp[i] = (float)((s >> 40) / (double)(1 << 24) - 0.5);
    }
    dtype_from_f32(dt, tmp, dst, n);
    free(tmp);
}

static double bench_codelet(int n, int iters, enum dtype dt)
{
    struct tensor a, w, out;
    tensor_init(&a, "bench.inp", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_PAGEABLE);
    tensor_init(&w, "bench.weight", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_PAGEABLE);
    tensor_init(&out, "bench.out", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_NONE);
    fill_random(a.host, a.n, dt);
    fill_random(w.host, w.n, dt);
    for (int i = 0; i < 3; i++) /* warm-up: transfers, cuBLAS initialisation, perf model */
        matmul_forward_insert(&out, &a, &w, NULL, n, n, n, RT_PRIO_NORMAL);
    rt_wait_all();
    double t0 = timer_now_s();
    for (int i = 0; i < iters; i++)
        matmul_forward_insert(&out, &a, &w, NULL, n, n, n, RT_PRIO_NORMAL);
    rt_wait_all();
    double dt_s = timer_now_s() - t0;
    tensor_free(&a);
    tensor_free(&w);
    tensor_free(&out);
    return 2.0 * n * n * (double)n * iters / dt_s / 1e12;
}

static double bench_cublas(int n, int iters, enum dtype dt)
{
    size_t bytes = (size_t)n * n * dtype_size(dt);
    void *a, *w, *out;
    cublasHandle_t h;
    cudaStream_t stream;
    cudaEvent_t e0, e1;
    cudaDataType_t ty = dt == DTYPE_FP16 ? CUDA_R_16F : CUDA_R_16BF;
    const float alpha = 1, beta = 0;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&w, bytes));
    CUDA_CHECK(cudaMalloc(&out, bytes));
    void *host = malloc(bytes);
    CHECK(host != NULL);
    fill_random(host, (size_t)n * n, dt);
    CUDA_CHECK(cudaMemcpy(a, host, bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(w, host, bytes, cudaMemcpyHostToDevice));
    free(host);
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, stream));
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i <= iters + 3; i++) {
        if (i == 3) CUDA_CHECK(cudaEventRecord(e0, stream));
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, w, ty, n, a, ty, n,
                                  &beta, out, ty, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    CUDA_CHECK(cudaEventRecord(e1, stream));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    /* the loop above ran iters + 1 products after the event */
    double tflops = 2.0 * n * n * (double)n * (iters + 1) / (ms / 1e3) / 1e12;
    cublasDestroy(h);
    cudaStreamDestroy(stream);
    cudaFree(a);
    cudaFree(w);
    cudaFree(out);
    return tflops;
}

int main(int argc, char **argv)
{
    int n = 8192, iters = 20;
    enum dtype dt = DTYPE_FP16;
    const char *out_path = NULL;
    check_set_program("bench_gemm");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc)
            dt = strcmp(argv[++i], "bf16") == 0 ? DTYPE_BF16 : DTYPE_FP16;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else
            user_fail("unknown argument %s: use --size N --iters N --dtype fp16|bf16 --out FILE",
                      argv[i]);
    }
    if (n < 1 || iters < 1) user_fail("--size and --iters must be positive");
    rt_init(&(struct rt_options){.quiet = 1});
    if (rt_device() != RT_DEVICE_CUDA) user_fail("no GPU: bench_gemm measures the CUDA codelet");
    double codelet = bench_codelet(n, iters, dt);
    double direct = bench_cublas(n, iters, dt);
    printf("| GEMM %dx%dx%d %s on %s | TFLOP/s |\n|---|---|\n", n, n, n, dtype_name(dt),
           rt_device_name());
    printf("| matmul codelet (StarPU task, cuBLASLt) | %.1f |\n", codelet);
    printf("| direct cublasGemmEx | %.1f |\n", direct);
    printf("| codelet / direct | %.3f |\n", codelet / direct);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f) user_fail("--out %s: cannot write", out_path);
        fprintf(f,
                "{\"bench\": \"gemm\", \"device\": \"%s\", \"size\": %d, \"dtype\": \"%s\", "
                "\"iters\": %d, \"codelet_tflops\": %.2f, \"cublas_tflops\": %.2f}\n",
                rt_device_name(), n, dtype_name(dt), iters, codelet, direct);
        fclose(f);
    }
    rt_shutdown();
    return 0;
}
