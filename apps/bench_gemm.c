/* bench_gemm: the matmul codelet against a direct cuBLAS call on one GPU.
 *
 * Both compute out[M,N] = inp[M,K] . W[N,K]^T in fp16 or bf16 with fp32 accumulation. The codelet
 * path submits StarPU tasks (task creation, dependency tracking, the driver's stream handling and
 * the kernel's cuBLASLt call included) and is timed on the host from the first submission to the
 * end of the last task. Its products write OUTS outputs in turn, so that no task waits for the
 * one before it (as the direct loop's calls do not: a single output would make each task wait for
 * the previous one's end to be seen on the host, a gap the benchmark of the GEMM itself should not
 * count; the training graph's gaps are measured by scripts/cuda_profile.py). The direct path calls
 * cublasGemmEx on a stream with the data already on the GPU and is timed with events. Both multiply
 * the same random values. The two run in turns, `rounds` times `iters` products each, so that the
 * GPU's clock changes fall on both alike; the table gives each path's median round and their ratio.
 * Writes a JSON result file with every round.
 *
 *     bench_gemm [--size 8192] [--iters 20] [--rounds 7] [--dtype fp16|bf16] [--out FILE.json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "cuda_check.h"
#include "timer.h"

#define MAX_ROUNDS 101

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

#define OUTS 3

struct codelet_path {
    struct tensor a, w, out[OUTS];
};

static void codelet_setup(struct codelet_path *p, int n, enum dtype dt)
{
    tensor_init(&p->a, "bench.inp", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_PAGEABLE);
    tensor_init(&p->w, "bench.weight", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_PAGEABLE);
    for (int k = 0; k < OUTS; k++)
        tensor_init(&p->out[k], "bench.out", (enum tensor_type)dt, (size_t)n * n, TENSOR_HOST_NONE);
    fill_random(p->a.host, p->a.n, dt);
    fill_random(p->w.host, p->w.n, dt);
    for (int i = 0; i < 3; i++) /* warm-up: transfers, cuBLAS initialisation, perf model */
        matmul_forward_insert(&p->out[i % OUTS], &p->a, &p->w, NULL, n, n, n, RT_PRIO_NORMAL);
    rt_wait_all();
}

/* TFLOP/s of one round of `iters` tasks. */
static double codelet_round(struct codelet_path *p, int n, int iters)
{
    double t0 = timer_now_s();
    for (int i = 0; i < iters; i++)
        matmul_forward_insert(&p->out[i % OUTS], &p->a, &p->w, NULL, n, n, n, RT_PRIO_NORMAL);
    rt_wait_all();
    return 2.0 * n * n * (double)n * iters / (timer_now_s() - t0) / 1e12;
}

static void codelet_teardown(struct codelet_path *p)
{
    tensor_free(&p->a);
    tensor_free(&p->w);
    for (int k = 0; k < OUTS; k++)
        tensor_free(&p->out[k]);
}

struct cublas_path {
    void *a, *w, *out;
    cublasHandle_t h;
    cudaStream_t stream;
    cudaEvent_t e0, e1;
    cudaDataType_t ty;
};

static void cublas_product(struct cublas_path *p, int n)
{
    const float alpha = 1, beta = 0;
    CUBLAS_CHECK(cublasGemmEx(p->h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, p->w, p->ty, n, p->a,
                              p->ty, n, &beta, p->out, p->ty, n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
}

static void cublas_setup(struct cublas_path *p, int n, enum dtype dt)
{
    size_t bytes = (size_t)n * n * dtype_size(dt);
    p->ty = dt == DTYPE_FP16 ? CUDA_R_16F : CUDA_R_16BF;
    CUDA_CHECK(cudaMalloc(&p->a, bytes));
    CUDA_CHECK(cudaMalloc(&p->w, bytes));
    CUDA_CHECK(cudaMalloc(&p->out, bytes));
    void *host = malloc(bytes);
    CHECK(host != NULL);
    fill_random(host, (size_t)n * n, dt);
    CUDA_CHECK(cudaMemcpy(p->a, host, bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p->w, host, bytes, cudaMemcpyHostToDevice));
    free(host);
    CUDA_CHECK(cudaStreamCreate(&p->stream));
    CUBLAS_CHECK(cublasCreate(&p->h));
    CUBLAS_CHECK(cublasSetStream(p->h, p->stream));
    CUDA_CHECK(cudaEventCreate(&p->e0));
    CUDA_CHECK(cudaEventCreate(&p->e1));
    for (int i = 0; i < 3; i++) /* warm-up */
        cublas_product(p, n);
    CUDA_CHECK(cudaStreamSynchronize(p->stream));
}

/* TFLOP/s of one round of `iters` products, between events on the stream. */
static double cublas_round(struct cublas_path *p, int n, int iters)
{
    CUDA_CHECK(cudaEventRecord(p->e0, p->stream));
    for (int i = 0; i < iters; i++)
        cublas_product(p, n);
    CUDA_CHECK(cudaEventRecord(p->e1, p->stream));
    CUDA_CHECK(cudaEventSynchronize(p->e1));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, p->e0, p->e1));
    return 2.0 * n * n * (double)n * iters / (ms / 1e3) / 1e12;
}

static void cublas_teardown(struct cublas_path *p)
{
    cublasDestroy(p->h);
    cudaStreamDestroy(p->stream);
    cudaEventDestroy(p->e0);
    cudaEventDestroy(p->e1);
    cudaFree(p->a);
    cudaFree(p->w);
    cudaFree(p->out);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void write_rounds(FILE *f, const char *key, const double *v, int n)
{
    fprintf(f, ", \"%s\": [", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.2f", i ? ", " : "", v[i]);
    fputc(']', f);
}

int main(int argc, char **argv)
{
    int n = 8192, iters = 20, rounds = 7;
    enum dtype dt = DTYPE_FP16;
    const char *out_path = NULL;
    check_set_program("bench_gemm");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc)
            dt = strcmp(argv[++i], "bf16") == 0 ? DTYPE_BF16 : DTYPE_FP16;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else
            user_fail("unknown argument %s: use --size N --iters N --rounds N --dtype fp16|bf16 "
                      "--out FILE",
                      argv[i]);
    }
    if (n < 1 || iters < 1) user_fail("--size and --iters must be positive");
    if (rounds < 1 || rounds > MAX_ROUNDS) user_fail("--rounds must be 1 to %d", MAX_ROUNDS);
    rt_init(&(struct rt_options){.quiet = 1});
    if (rt_device() != RT_DEVICE_CUDA) user_fail("no GPU: bench_gemm measures the CUDA codelet");
    struct codelet_path cp;
    struct cublas_path bp;
    double rc[MAX_ROUNDS], rd[MAX_ROUNDS];
    codelet_setup(&cp, n, dt);
    cublas_setup(&bp, n, dt);
    for (int r = 0; r < rounds; r++) {
        rc[r] = codelet_round(&cp, n, iters);
        rd[r] = cublas_round(&bp, n, iters);
    }
    codelet_teardown(&cp);
    cublas_teardown(&bp);
    double codelet = median(rc, rounds), direct = median(rd, rounds);
    printf("| GEMM %dx%dx%d %s on %s, median of %d rounds of %d | TFLOP/s |\n|---|---|\n", n, n, n,
           dtype_name(dt), rt_device_name(), rounds, iters);
    printf("| matmul codelet (StarPU task, cuBLASLt) | %.1f |\n", codelet);
    printf("| direct cublasGemmEx | %.1f |\n", direct);
    printf("| codelet / direct | %.3f |\n", codelet / direct);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f) user_fail("--out %s: cannot write", out_path);
        fprintf(f,
                "{\"bench\": \"gemm\", \"device\": \"%s\", \"size\": %d, \"dtype\": \"%s\", "
                "\"iters\": %d, \"rounds\": %d, \"codelet_tflops\": %.2f, \"cublas_tflops\": %.2f",
                rt_device_name(), n, dtype_name(dt), iters, rounds, codelet, direct);
        write_rounds(f, "codelet_rounds", rc, rounds);
        write_rounds(f, "cublas_rounds", rd, rounds);
        fputs("}\n", f);
        fclose(f);
    }
    rt_shutdown();
    return 0;
}
