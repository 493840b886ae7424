/* codelet_def.h: the one definition of a codelet and its history-based performance model.
 *
 * CODELET_DEFINE(op) expects op_cpu_func and op_cuda_func in scope and defines op_cl, which runs
 * on the CUDA worker's stream (STARPU_CUDA_ASYNC) or as a fork-join task over CPU workers, with
 * a variable number of buffers (optional tensors are simply left out) and a perf model whose
 * symbol "gpt50b_op" is shared by all runs on a host. The CUDA function runs between
 * rt_cuda_task_begin and rt_cuda_task_end (the task timeline of GPT50B_CUDA_EVENTS). */
#ifndef GPT50B_CODELET_DEF_H
#define GPT50B_CODELET_DEF_H

#include <limits.h>
#include <starpu.h>

#include "rt.h"
#ifdef GPT50B_HAVE_CUDA
#include <starpu_cublas_v2.h>
#endif

#define CODELET_DEFINE(op)                                                                         \
    static void op##_cuda_timed(void *buffers[], void *cl_arg)                                     \
    {                                                                                              \
        rt_cuda_task_begin();                                                                      \
        op##_cuda_func(buffers, cl_arg);                                                           \
        rt_cuda_task_end();                                                                        \
    }                                                                                              \
    static struct starpu_perfmodel op##_model = {.type = STARPU_HISTORY_BASED,                     \
                                                 .symbol = "gpt50b_" #op};                         \
    static struct starpu_codelet op##_cl = {.cpu_funcs = {op##_cpu_func},                          \
                                            .cuda_funcs = {op##_cuda_timed},                       \
                                            .cuda_flags = {STARPU_CUDA_ASYNC},                     \
                                            .type = STARPU_FORKJOIN,                               \
                                            .max_parallelism = INT_MAX,                            \
                                            .nbuffers = STARPU_VARIABLE_NBUFFERS,                  \
                                            .model = &op##_model,                                  \
                                            .name = #op}

/* The worker's stream and cuBLAS handle, for CUDA implementations (none in the CPU-only build,
 * where those never run). */
#ifdef GPT50B_HAVE_CUDA
#define CUDA_STREAM()   starpu_cuda_get_local_stream()
#define CUBLAS_HANDLE() starpu_cublas_get_local_handle()
#else
#define CUDA_STREAM()   NULL
#define CUBLAS_HANDLE() NULL
#endif

#endif
