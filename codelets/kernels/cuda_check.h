/* cuda_check.h: the one check of CUDA runtime and cuBLAS calls, for .cu and .c files alike.
 *
 * A failed call is an internal error (check.h): it prints file, line, the call and the library's
 * own message, and aborts; the checks stay on in release builds. CUDA build only: the CPU-only
 * build has no CUDA headers, and nothing there includes this. */
#ifndef GPT50B_CUDA_CHECK_H
#define GPT50B_CUDA_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t err_ = (call);                                                                 \
        if (err_ != cudaSuccess) {                                                                 \
            fprintf(stderr, "%s:%d: CUDA error: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(err_));                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            fprintf(stderr, "%s:%d: cuBLAS error: %s: %s\n", __FILE__, __LINE__, #call,            \
                    cublasGetStatusString(st_));                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
