/* bench_attention: the cuBLAS-based attention kernels (attention_*_cuda, which compute the T x T
 * scores a chunk of heads at a time in scratch, the backward recomputing them) against the flash
 * ones (flash_attention_*_cuda) on one GPU.
 *
 * Shapes of the issue-16 targets: B 4, T 1024, C 2048, NH 16 (the 1.3B model) and B 8, T 1024,
 * C 1536, NH 12; fp16 and bf16. Each launcher runs on one stream with its data already on the
 * GPU (random inputs); after `warmup` calls, each of `iters` calls is timed alone with CUDA
 * events and the median is reported. TFLOP/s use the causal count of the products a pass must
 * do, the same for both kernels: forward 2 products of 2 hs FLOP per (query, key <= query) pair,
 * backward 5 (flash's backward does 7, recomputing scores for dQ, without credit). Prints a
 * table and writes a JSON result file.
 *
 *     bench_attention [--iters 20] [--warmup 3] [--out FILE.json] */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cuda.h"
#include "check.h"
#include "cuda_check.h"
#include "dtype.h"
#include "kernels_cuda.h"

struct shape {
    int B, T, C, NH;
};
static const struct shape SHAPES[] = {{4, 1024, 2048, 16}, {8, 1024, 1536, 12}};
static const enum dtype DTYPES[] = {DTYPE_FP16, DTYPE_BF16};

enum kernel { KERNEL_OLD_FWD, KERNEL_OLD_BWD, KERNEL_FLASH_FWD, KERNEL_FLASH_BWD };

struct bufs {
    void *qkv, *out, *dout, *dqkv, *scratch;
    float *stats;
};

static cudaStream_t stream;
static cublasHandle_t blas;

static void *dalloc_random(size_t n, enum dtype dt, uint64_t seed)
{
    void *h = malloc(n * dtype_size(dt)), *d;
    CHECK(h != NULL);
    uint64_t s = seed;
    float *tmp = malloc(n * sizeof(float));
    CHECK(tmp != NULL);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tmp[i] = (float)((s >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
    dtype_from_f32(dt, tmp, h, n);
    CUDA_CHECK(cudaMalloc(&d, n * dtype_size(dt)));
    CUDA_CHECK(cudaMemcpy(d, h, n * dtype_size(dt), cudaMemcpyHostToDevice));
    free(tmp);
    free(h);
    return d;
}

static void launch(enum kernel k, struct shape s, enum dtype dt, struct bufs *b)
{
    switch (k) {
    case KERNEL_OLD_FWD:
        attention_forward_cuda(blas, b->out, b->stats, b->qkv, s.B, s.T, s.C, s.NH, dt, b->scratch,
                               stream);
        return;
    case KERNEL_OLD_BWD:
        attention_backward_cuda(blas, b->dqkv, b->dout, b->qkv, b->stats, s.B, s.T, s.C, s.NH, dt,
                                b->scratch, stream);
        return;
    case KERNEL_FLASH_FWD:
        flash_attention_forward_cuda(b->out, b->stats, b->qkv, s.B, s.T, s.C, s.NH, dt, stream);
        return;
    case KERNEL_FLASH_BWD:
        flash_attention_backward_cuda(b->dqkv, b->dout, b->qkv, b->out, b->stats, s.B, s.T, s.C,
                                      s.NH, dt, 0, b->scratch, stream);
        return;
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of `iters` timed calls after `warmup` untimed ones. */
static double time_ms(enum kernel k, struct shape s, enum dtype dt, struct bufs *b, int warmup,
                      int iters)
{
    cudaEvent_t e0, e1;
    float *ms = malloc(iters * sizeof(float));
    CHECK(ms != NULL);
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < warmup; i++)
        launch(k, s, dt, b);
    for (int i = 0; i < iters; i++) {
        CUDA_CHECK(cudaEventRecord(e0, stream));
        launch(k, s, dt, b);
        CUDA_CHECK(cudaEventRecord(e1, stream));
        CUDA_CHECK(cudaEventSynchronize(e1));
        CUDA_CHECK(cudaEventElapsedTime(&ms[i], e0, e1));
    }
    qsort(ms, iters, sizeof(float), cmp_float);
    double med = iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    free(ms);
    return med;
}

int main(int argc, char **argv)
{
    struct bench_cuda bc;
    bench_cuda_start(&bc, "bench_attention", argc, argv);
    int iters = bc.iters, warmup = bc.warmup;
    struct cudaDeviceProp prop = bc.prop;
    FILE *json = bc.json;
    stream = bc.stream;
    blas = bc.blas;
    if (json)
        fprintf(json,
                "{\"bench\": \"attention\", \"device\": \"%s\", \"iters\": %d, \"warmup\": %d, "
                "\"rows\": [",
                prop.name, iters, warmup);

    printf("| shape | dtype | pass | attention ms | flash ms | attention TFLOP/s | flash TFLOP/s "
           "| speed-up | extra memory MiB (attention / flash) |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    int row = 0;
    for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++)
        for (size_t di = 0; di < sizeof DTYPES / sizeof DTYPES[0]; di++) {
            struct shape s = SHAPES[si];
            enum dtype dt = DTYPES[di];
            size_t es = dtype_size(dt);
            size_t nqkv = (size_t)s.B * s.T * 3 * s.C, nout = (size_t)s.B * s.T * s.C;
            size_t nstats = (size_t)s.B * s.NH * s.T * 2;
            size_t sc_old_f = attention_forward_cuda_scratch_bytes(s.B, s.T, s.C, s.NH, dt);
            size_t sc_old_b = attention_backward_cuda_scratch_bytes(s.B, s.T, s.C, s.NH, dt);
            size_t sc_flash = flash_attention_backward_cuda_scratch_bytes(s.B, s.T, s.C, s.NH, dt);
            size_t sc = sc_old_f > sc_old_b ? sc_old_f : sc_old_b;
            if (sc_flash > sc) sc = sc_flash;
            struct bufs b;
            b.qkv = dalloc_random(nqkv, dt, 1);
            b.dout = dalloc_random(nout, dt, 2);
            b.dqkv = dalloc_random(nqkv, dt, 3);
            CUDA_CHECK(cudaMalloc(&b.out, nout * es));
            CUDA_CHECK(cudaMalloc((void **)&b.stats, nstats * sizeof(float)));
            CUDA_CHECK(cudaMalloc(&b.scratch, sc));
            /* the backward passes read what their forward wrote */
            double old_f = time_ms(KERNEL_OLD_FWD, s, dt, &b, warmup, iters);
            double old_b = time_ms(KERNEL_OLD_BWD, s, dt, &b, warmup, iters);
            double fl_f = time_ms(KERNEL_FLASH_FWD, s, dt, &b, warmup, iters);
            double fl_b = time_ms(KERNEL_FLASH_BWD, s, dt, &b, warmup, iters);
            CUDA_CHECK(cudaGetLastError());
            int hs = s.C / s.NH;
            double fwd_flop = 4.0 * s.B * s.NH * hs * ((double)s.T * (s.T + 1) / 2);
            double mem_old =
                (nstats * sizeof(float) + (sc_old_f > sc_old_b ? sc_old_f : sc_old_b)) / 1048576.0;
            double mem_flash = (nstats * sizeof(float) + sc_flash) / 1048576.0;
            const char *pass[2] = {"forward", "backward"};
            double t_old[2] = {old_f, old_b}, t_fl[2] = {fl_f, fl_b};
            double flop[2] = {fwd_flop, 2.5 * fwd_flop};
            for (int p = 0; p < 2; p++) {
                double tf_old = flop[p] / (t_old[p] * 1e-3) / 1e12;
                double tf_fl = flop[p] / (t_fl[p] * 1e-3) / 1e12;
                printf("| B%d T%d C%d NH%d | %s | %s | %.3f | %.3f | %.1f | %.1f | %.2fx | %.1f / "
                       "%.2f |\n",
                       s.B, s.T, s.C, s.NH, dtype_name(dt), pass[p], t_old[p], t_fl[p], tf_old,
                       tf_fl, t_old[p] / t_fl[p], mem_old, mem_flash);
                if (json)
                    fprintf(json,
                            "%s\n  {\"B\": %d, \"T\": %d, \"C\": %d, \"NH\": %d, \"dtype\": "
                            "\"%s\", \"pass\": \"%s\", \"attention_ms\": %.4f, \"flash_ms\": "
                            "%.4f, \"attention_tflops\": %.2f, \"flash_tflops\": %.2f, "
                            "\"flop\": %.6g, \"attention_extra_mib\": %.2f, "
                            "\"flash_extra_mib\": %.2f}",
                            row++ ? "," : "", s.B, s.T, s.C, s.NH, dtype_name(dt), pass[p],
                            t_old[p], t_fl[p], tf_old, tf_fl, flop[p], mem_old, mem_flash);
            }
            void *bufs[] = {b.qkv, b.dout, b.dqkv, b.out, b.stats, b.scratch};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                CUDA_CHECK(cudaFree(bufs[i]));
        }
    if (json) {
        fprintf(json, "\n]}\n");
        CHECK_MSG(fclose(json) == 0, "cannot write the --out file");
    }
    printf("device: %s\n", prop.name);
    cublasDestroy(blas);
    cudaStreamDestroy(stream);
    return 0;
}
