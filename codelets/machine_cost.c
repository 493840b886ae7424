/* machine_cost.c: the simulation's durations of the compute codelets (codelet_machine_cost):
 * the calibrated histories where they hold the task's shape, scaled from the nearest calibrated
 * shape where they do not. */
#include <math.h>
#include <unistd.h>

#include "check.h"
#include "codelet_def.h"
#include "machine.h"

/* The histories already read (or found missing); simulated workers run one at a time, so no
 * lock. */
#define MAX_HISTORIES 64
static struct starpu_perfmodel *read_models[MAX_HISTORIES];
static int nread;

static void read_history(struct starpu_perfmodel *history)
{
    for (int i = 0; i < nread; i++)
        if (read_models[i] == history) return;
    CHECK(nread < MAX_HISTORIES);
    read_models[nread++] = history;
    char path[4096];
    starpu_perfmodel_get_model_path(history->symbol, path, sizeof path);
    if (path[0] && access(path, R_OK) == 0)
        starpu_perfmodel_load_file(path, history);
    else
        starpu_perfmodel_init(history);
}

static struct starpu_perfmodel_per_arch *
history_of(struct starpu_perfmodel *history, struct starpu_perfmodel_arch *arch, unsigned nimpl)
{
    struct starpu_perfmodel_per_arch *pa =
        starpu_perfmodel_get_model_per_arch(history, arch, nimpl);
    if (pa && pa->list) return pa;
    /* one history for all GPUs of a kind (STARPU_PERF_MODEL_HOMOGENEOUS_CUDA): the first's */
    struct starpu_perfmodel_device dev = arch->devices[0];
    dev.devid = 0;
    struct starpu_perfmodel_arch first = {.ndevices = 1, .devices = &dev};
    return starpu_perfmodel_get_model_per_arch(history, &first, nimpl);
}

static double task_bytes(struct starpu_task *t)
{
    double bytes = 0;
    for (unsigned i = 0; i < STARPU_TASK_GET_NBUFFERS(t); i++)
        bytes += (double)starpu_data_get_size(STARPU_TASK_GET_HANDLE(t, i));
    return bytes;
}

double codelet_machine_cost(struct starpu_perfmodel *history, struct starpu_task *t,
                            struct starpu_perfmodel_arch *arch, unsigned nimpl)
{
    read_history(history);
    struct starpu_perfmodel_per_arch *pa = history_of(history, arch, nimpl);
    if (pa && pa->list) {
        uint32_t fp = starpu_task_footprint(history, t, arch, nimpl);
        for (struct starpu_perfmodel_history_list *l = pa->list; l; l = l->next)
            if (l->entry->nsample && l->entry->footprint == fp) return l->entry->mean;
        /* a shape no calibration run had: the nearest entry, scaled */
        const struct starpu_perfmodel_history_entry *near = NULL;
        int by_flops = t->flops > 0;
        double x = by_flops ? t->flops : task_bytes(t), dist = INFINITY;
        for (struct starpu_perfmodel_history_list *l = pa->list; l; l = l->next) {
            const struct starpu_perfmodel_history_entry *e = l->entry;
            double ex = by_flops ? e->flops : (double)e->size;
            if (e->nsample == 0 || ex <= 0) continue;
            double d = fabs(log(x / ex));
            if (d < dist) dist = d, near = e;
        }
        if (near) return near->mean * x / (by_flops ? near->flops : (double)near->size);
    }
    return machine_stream_us(rt_machine(), task_bytes(t),
                             arch->devices[0].type == STARPU_CUDA_WORKER, rt_task_cores(t, arch),
                             rt_ncpu());
}
