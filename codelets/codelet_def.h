/* codelet_def.h: the one definition of a codelet and its history-based performance model.
 *
 * CODELET_DEFINE(op) expects op_cpu_func and op_cuda_func in scope and defines op_cl, which runs
 * on the CUDA worker's stream (STARPU_CUDA_ASYNC) or as a fork-join task over CPU workers, with
 * a variable number of buffers (optional tensors are simply left out) and a perf model whose
 * symbol "gpt50b_op" is shared by all runs on a host. The CUDA function runs between
 * rt_cuda_task_begin and rt_cuda_task_end (the task timeline of GPT50B_CUDA_EVENTS). It also
 * defines op_machine_cl, the same codelet timed for the simulation by codelet_machine_cost. */
#ifndef GPT50B_CODELET_DEF_H
#define GPT50B_CODELET_DEF_H

#include <limits.h>
#include <starpu.h>

#include "rt.h"
#ifdef GPT50B_HAVE_CUDA
#include <starpu_cublas_v2.h>
#endif

/* A codelet of op's functions with the given perf model (op_cl's and op_machine_cl's). */
#define CODELET_STRUCT(op, perfmodel)                                                              \
    {                                                                                              \
        .cpu_funcs = {op##_cpu_func}, .cuda_funcs = {op##_cuda_timed},                             \
        .cuda_flags = {STARPU_CUDA_ASYNC}, .type = STARPU_FORKJOIN, .max_parallelism = INT_MAX,    \
        .nbuffers = STARPU_VARIABLE_NBUFFERS, .model = (perfmodel), .name = #op                    \
    }

#define CODELET_DEFINE(op)                                                                         \
    static void op##_cuda_timed(void *buffers[], void *cl_arg)                                     \
    {                                                                                              \
        rt_cuda_task_begin();                                                                      \
        op##_cuda_func(buffers, cl_arg);                                                           \
        rt_cuda_task_end();                                                                        \
    }                                                                                              \
    static struct starpu_perfmodel op##_model = {.type = STARPU_HISTORY_BASED,                     \
                                                 .symbol = "gpt50b_" #op};                         \
    static struct starpu_codelet op##_cl = CODELET_STRUCT(op, &op##_model);                        \
    static double op##_machine_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,     \
                                    unsigned nimpl)                                                \
    {                                                                                              \
        return codelet_machine_cost(&op##_model, t, arch, nimpl);                                  \
    }                                                                                              \
    static struct starpu_perfmodel op##_machine_model = {.type = STARPU_PER_ARCH,                  \
                                                         .arch_cost_function = op##_machine_cost,  \
                                                         .symbol = "gpt50b_" #op "_machine"};      \
    static struct starpu_codelet op##_machine_cl = CODELET_STRUCT(op, &op##_machine_model)

/* The codelet a task of op runs: op_machine_cl in the simulation, op_cl otherwise. */
#define CODELET(op) (rt_machine() ? &op##_machine_cl : &op##_cl)

/* The simulation's duration of a task of a codelet whose real runs calibrate `history` (the
 * SYMBOL.MACHINE file of STARPU_PERF_MODEL_DIR): the history's mean at the task's footprint, as
 * StarPU's own history model gives it; at a footprint the history lacks (a shape that was not
 * calibrated: another layer count, another rank count, another micro-batch), the entry nearest
 * in flops scaled by the flops ratio (nearest in bytes and by the bytes ratio when the task
 * counts no flops); with no history at all, one pass over the task's bytes at the machine's
 * memory rate (machine_stream_us). */
double codelet_machine_cost(struct starpu_perfmodel *history, struct starpu_task *t,
                            struct starpu_perfmodel_arch *arch, unsigned nimpl);

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
