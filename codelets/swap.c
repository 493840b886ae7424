/* swap.c: NVMe swap-in and swap-out of a tensor's optimizer state as tasks.
 *
 * One swap file holds the fp32 master weights, the first and the second AdamW moments of a
 * tensor, each in a region of `region_bytes` (a multiple of SWAP_BLOCK_SIZE, so each region is a
 * whole piece for runtime/swap.c). A swap-in task reads the three regions into three RAM buffers
 * (written: StarPU orders it after the previous user of those buffers); a swap-out task writes
 * them back (read). Both run on CPU workers and block on the disk while the engine's threads
 * move the data; the checksums are verified at the read. An I/O error or stale or corrupt state
 * ends the run with one line naming the file, the tensor and the block.
 *
 * A swap-out may also read the global sum of squares that the AdamW tasks read: when it says
 * the step was skipped (fp16 overflow), AdamW left the buffers as the swap-in read them, so the
 * task writes nothing and only retags the blocks with the new generation (swap_file_keep), which
 * saves a whole write of the state per skipped step.
 *
 * The file format and its I/O are runtime/swap.c's; which shards swap and the buffer sets they
 * cycle through are graph/state/'s (state.h says which piece of NVMe swap lives where).
 *
 * In the simulation the tasks never run: they keep their buffers and access modes (the
 * dependencies), take their durations from the machine's disk rates (machine_swap_us) instead of
 * a calibrated history, and access their node's disk (rt_disk) so that they take turns on it. */
#include <math.h>

#include "check.h"
#include "codelets.h"
#include "machine.h"

struct swap_args {
    struct swap_file *file;
    size_t region_bytes;
    uint64_t generation;  /* written by a swap-out, expected by a swap-in */
    int has_sumsq;        /* swap-out: buffer 3 is the global sum of squares */
    float inv_loss_scale; /* with it, to decide the skip as AdamW does */
};

static void swap_regions(void *b[], const struct swap_args *a, int write)
{
    char err[SWAP_ERR_SIZE];
    struct swap_io *io[3];
    for (int k = 0; k < 3; k++) {
        uint64_t off = (uint64_t)k * a->region_bytes;
        io[k] = write
                    ? swap_write_submit(a->file, RT_PTR(b, k), off, a->region_bytes, a->generation)
                    : swap_read_submit(a->file, RT_PTR(b, k), off, a->region_bytes, a->generation);
    }
    for (int k = 0; k < 3; k++)
        if (swap_io_wait(io[k], err, sizeof err) < 0)
            user_fail("optimizer state %s: %s", write ? "swap-out" : "swap-in", err);
}

static void swap_in_cpu_func(void *b[], void *cl_arg)
{
    swap_regions(b, cl_arg, 0);
}
/* Buffers: master, m, v, [sumsq]. */
static void swap_out_cpu_func(void *b[], void *cl_arg)
{
    const struct swap_args *a = cl_arg;
    char err[SWAP_ERR_SIZE];
    if (!a->has_sumsq || isfinite(adamw_global_norm(RT_PTR(b, 3), a->inv_loss_scale))) {
        swap_regions(b, a, 1);
        return;
    }
    for (int k = 0; k < 3; k++)
        if (swap_file_keep(a->file, (uint64_t)k * a->region_bytes, a->region_bytes,
                           a->generation - 1, a->generation, err, sizeof err) < 0)
            user_fail("optimizer state swap-out of a skipped step: %s", err);
}

static struct starpu_perfmodel swap_in_model = {.type = STARPU_HISTORY_BASED,
                                                .symbol = "gpt50b_swap_in"};
static struct starpu_perfmodel swap_out_model = {.type = STARPU_HISTORY_BASED,
                                                 .symbol = "gpt50b_swap_out"};
static struct starpu_codelet swap_in_cl = {.cpu_funcs = {swap_in_cpu_func},
                                           .nbuffers = 3,
                                           .modes = {STARPU_W, STARPU_W, STARPU_W},
                                           .model = &swap_in_model,
                                           .name = "swap_in"};
static struct starpu_codelet swap_out_cl = {.cpu_funcs = {swap_out_cpu_func},
                                            .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                            .model = &swap_out_model,
                                            .name = "swap_out"};

/* The simulation's: the same tasks, with the disk as a last buffer, timed by the machine. */
static double swap_cost(const struct starpu_task *t, int write)
{
    const struct swap_args *a = t->cl_arg;
    return machine_swap_us(rt_machine(), 3.0 * a->region_bytes, write);
}
static double swap_in_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,
                           unsigned nimpl)
{
    return swap_cost(t, 0);
}
static double swap_out_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,
                            unsigned nimpl)
{
    return swap_cost(t, 1);
}
static struct starpu_perfmodel swap_in_machine_model = {.type = STARPU_PER_ARCH,
                                                        .arch_cost_function = swap_in_cost,
                                                        .symbol = "gpt50b_swap_in_machine"};
static struct starpu_perfmodel swap_out_machine_model = {.type = STARPU_PER_ARCH,
                                                         .arch_cost_function = swap_out_cost,
                                                         .symbol = "gpt50b_swap_out_machine"};
static struct starpu_codelet swap_in_machine_cl = {.cpu_funcs = {swap_in_cpu_func},
                                                   .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                                   .model = &swap_in_machine_model,
                                                   .name = "swap_in"};
static struct starpu_codelet swap_out_machine_cl = {.cpu_funcs = {swap_out_cpu_func},
                                                    .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                                    .model = &swap_out_machine_model,
                                                    .name = "swap_out"};

void swap_in_insert(struct tensor *master, struct tensor *m, struct tensor *v,
                    struct swap_file *file, size_t region_bytes, uint64_t generation, int prio)
{
    struct swap_args a = {file, region_bytes, generation, 0, 1.0f};
    struct rt_buf bufs[] = {{master, RT_W}, {m, RT_W}, {v, RT_W}, {rt_disk(), RT_RW_COMMUTE}};
    /* the task's "flops" are the bytes it reads: FxT records them (tasks.rec's GFlop) and the
     * trace report counts the NVMe lanes' bytes from them, not from the buffers' capacity */
    rt_submit(rt_machine() ? &swap_in_machine_cl : &swap_in_cl, "swap_in", bufs, 4, &a, sizeof a,
              3.0 * region_bytes, prio, RT_WHERE_CPU);
}

void swap_out_insert(struct tensor *master, struct tensor *m, struct tensor *v,
                     struct tensor *sumsq, float inv_loss_scale, struct swap_file *file,
                     size_t region_bytes, uint64_t generation, int prio)
{
    struct swap_args a = {file, region_bytes, generation, sumsq != NULL, inv_loss_scale};
    struct rt_buf bufs[] = {
        {master, RT_R}, {m, RT_R}, {v, RT_R}, {sumsq, RT_R}, {rt_disk(), RT_RW_COMMUTE}};
    rt_submit(rt_machine() ? &swap_out_machine_cl : &swap_out_cl, "swap_out", bufs, 5, &a, sizeof a,
              3.0 * region_bytes, prio, RT_WHERE_CPU); /* "flops": the bytes it writes */
}
