/* prefetch.c: a task that only reads data, to move a layer's parameters to the compute device
 * ahead of the layer.
 *
 * The task does nothing itself. Its worth is in its inputs: it reads the tensors to bring over and
 * a trigger tensor, so it becomes ready when the trigger is (say, the previous layer's input), and
 * the transfers start then: dm* policies prefetch a task's inputs when they assign it, other
 * policies when a worker pops it. Its low priority lets the compute tasks run first.
 *
 * It has no model: nothing to time. The simulation needs one all the same (StarPU on SimGrid
 * reads a task without a duration as uncalibrated and stops): 1 us, the empty function's own,
 * since StarPU simulates the per-task overheads (STARPU_SIMGRID_CUDA_QUEUE_COST) itself. */
#include "check.h"
#include "codelets.h"

static void prefetch_func(void *b[], void *cl_arg) {}

static struct starpu_codelet prefetch_cl = {.cpu_funcs = {prefetch_func},
                                            .cuda_funcs = {prefetch_func},
                                            .cuda_flags = {STARPU_CUDA_ASYNC},
                                            .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                            .name = "prefetch"};

static double prefetch_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,
                            unsigned nimpl)
{
    return 1.0;
}
static struct starpu_perfmodel prefetch_machine_model = {.type = STARPU_PER_ARCH,
                                                         .arch_cost_function = prefetch_cost,
                                                         .symbol = "gpt50b_prefetch_machine"};
static struct starpu_codelet prefetch_machine_cl = {.cpu_funcs = {prefetch_func},
                                                    .cuda_funcs = {prefetch_func},
                                                    .cuda_flags = {STARPU_CUDA_ASYNC},
                                                    .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                                    .model = &prefetch_machine_model,
                                                    .name = "prefetch"};

void prefetch_insert(struct tensor *const *ts, int n, struct tensor *after, int prio)
{
    struct rt_buf bufs[STARPU_NMAXBUFS];
    CHECK_MSG(n < STARPU_NMAXBUFS, "prefetch: too many tensors for one task");
    for (int i = 0; i < n; i++)
        bufs[i] = (struct rt_buf){ts[i], RT_R};
    bufs[n] = (struct rt_buf){after, RT_R};
    rt_submit(rt_machine() ? &prefetch_machine_cl : &prefetch_cl, "prefetch", bufs, n + 1, NULL, 0,
              0, prio, RT_WHERE_COMPUTE);
}
