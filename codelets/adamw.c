/* adamw.c: the fused AdamW step over fp32 master weights and moments, with the unscale, clip and
 * overflow skip decided from the global sum of squares where the task runs (no host sync). A
 * master split by tensor_tiles (the optimizer's sub-groups) steps as one task per piece, so the
 * CPU workers share a large tensor. On a GPU, a group of tensors (a layer's) steps as one task of
 * the multi-tensor kernel (adamw_group_insert): one launch and one task where there were twelve,
 * each tensor with adamw_cuda's bits. */
#include "check.h"
#include "codelet_def.h"
#include "codelets.h"
#include "kernels_cuda.h"
#include "machine.h"

struct adamw_args {
    size_t n;
    struct adamw_hparams hp;
    enum dtype dt;
    int has_param, has_sumsq;
};

/* Buffers: [param], master, m, v, grad, [sumsq]. */
static void adamw_cpu_func(void *b[], void *cl_arg)
{
    const struct adamw_args *a = cl_arg;
    int i = a->has_param;
    rt_cpu_task_begin();
    adamw_cpu(a->has_param ? RT_PTR(b, 0) : NULL, RT_PTR(b, i), RT_PTR(b, i + 1), RT_PTR(b, i + 2),
              RT_PTR(b, i + 3), a->has_sumsq ? RT_PTR(b, i + 4) : NULL, a->n, &a->hp, a->dt);
}

static void adamw_cuda_func(void *b[], void *cl_arg)
{
    const struct adamw_args *a = cl_arg;
    int i = a->has_param;
    adamw_cuda(a->has_param ? RT_PTR(b, 0) : NULL, RT_PTR(b, i), RT_PTR(b, i + 1), RT_PTR(b, i + 2),
               RT_PTR(b, i + 3), a->has_sumsq ? RT_PTR(b, i + 4) : NULL, a->n, &a->hp, a->dt,
               CUDA_STREAM());
}

CODELET_DEFINE(adamw);

/* The simulation's CPU AdamW: timed by the machine's AdamW rates (machine_adamw_us) instead of a
 * history, since simulated cores share no memory bandwidth, which bounds this kernel once
 * several cores run it; the GPU's keeps adamw_cl's calibrated history. The number of cores busy
 * with AdamW is counted when a task starts (StarPU's simulation asks for its duration then, on
 * the worker that runs it, whatever the scheduler): the tasks started and not yet ended, this
 * one included. A task keeps the rate it started with. */
#define ADAMW_MAX_RUNNING 1024
static struct adamw_run {
    double end_us;
    int cores;
} adamw_running[ADAMW_MAX_RUNNING];
static int adamw_nrunning;

static double adamw_cpu_cost(struct starpu_task *t, struct starpu_perfmodel_arch *arch,
                             unsigned nimpl)
{
    const struct adamw_args *a = t->cl_arg;
    int cores = rt_task_cores(t, arch), busy = cores, kept = 0;
    double now = starpu_timing_now();
    for (int i = 0; i < adamw_nrunning; i++)
        if (adamw_running[i].end_us > now) {
            busy += adamw_running[i].cores;
            adamw_running[kept++] = adamw_running[i];
        }
    adamw_nrunning = kept;
    double us = machine_adamw_us(rt_machine(), (double)a->n, cores, busy);
    if (starpu_task_get_current() == t && adamw_nrunning < ADAMW_MAX_RUNNING)
        adamw_running[adamw_nrunning++] = (struct adamw_run){now + us, cores};
    return us;
}
static struct starpu_perfmodel adamw_cpu_machine_model = {.type = STARPU_PER_ARCH,
                                                          .arch_cost_function = adamw_cpu_cost,
                                                          .symbol = "gpt50b_adamw_cpu_machine"};
static struct starpu_codelet adamw_cpu_machine_cl = {.cpu_funcs = {adamw_cpu_func},
                                                     .type = STARPU_FORKJOIN,
                                                     .max_parallelism = INT_MAX,
                                                     .nbuffers = STARPU_VARIABLE_NBUFFERS,
                                                     .model = &adamw_cpu_machine_model,
                                                     .name = "adamw"};

void adamw_insert(struct tensor *param, struct tensor *master, struct tensor *m, struct tensor *v,
                  struct tensor *grad, struct tensor *sumsq, const struct adamw_hparams *hp,
                  int prio, enum rt_where where)
{
    int n = master->ntiles ? master->ntiles : 1;
    struct starpu_codelet *cl =
        rt_machine() && where == RT_WHERE_CPU ? &adamw_cpu_machine_cl : CODELET(adamw);
    CHECK_MSG(!master->ntiles || ((!param || param->ntiles == n) && grad->ntiles == n &&
                                  m->ntiles == n && v->ntiles == n),
              "AdamW: the gradient and the state are split differently");
    for (int k = 0; k < n; k++) {
#define PIECE(t) ((t) && master->ntiles ? &(t)->tiles[k] : (t))
        struct tensor *g = PIECE(grad);
        struct adamw_args a = {g->n, *hp, (enum dtype)g->type, param != NULL, sumsq != NULL};
        struct rt_buf bufs[] = {{PIECE(param), RT_RW},
                                {PIECE(master), RT_RW},
                                {PIECE(m), RT_RW},
                                {PIECE(v), RT_RW},
                                {g, RT_R},
                                {sumsq, RT_R}};
#undef PIECE
        rt_submit(cl, "adamw", bufs, 6, &a, sizeof a, 12.0 * g->n, prio, where);
    }
}

/* The tensors of one adamw_multi task: each AdamW's param (optional, all or none), master, m, v
 * and grad, in that order, then [sumsq]. */
#define ADAMW_MULTI_MAX 16
struct adamw_multi_args {
    int n;
    struct adamw_hparams hp; /* weight_decay unused: each tensor's own below */
    enum dtype dt;
    int has_param, has_sumsq;
    size_t elems[ADAMW_MULTI_MAX];
    float weight_decay[ADAMW_MULTI_MAX];
};

static void adamw_multi_cpu_func(void *b[], void *cl_arg)
{
    const struct adamw_multi_args *a = cl_arg;
    int per = 4 + a->has_param;
    const float *sumsq = a->has_sumsq ? RT_PTR(b, a->n * per) : NULL;
    rt_cpu_task_begin();
    for (int t = 0; t < a->n; t++) {
        int i = t * per + a->has_param;
        struct adamw_hparams hp = a->hp;
        hp.weight_decay = a->weight_decay[t];
        adamw_cpu(a->has_param ? RT_PTR(b, i - 1) : NULL, RT_PTR(b, i), RT_PTR(b, i + 1),
                  RT_PTR(b, i + 2), RT_PTR(b, i + 3), sumsq, a->elems[t], &hp, a->dt);
    }
}

static void adamw_multi_cuda_func(void *b[], void *cl_arg)
{
    const struct adamw_multi_args *a = cl_arg;
    int per = 4 + a->has_param;
    struct adamw_tensor ts[ADAMW_MULTI_MAX];
    for (int t = 0; t < a->n; t++) {
        int i = t * per + a->has_param;
        ts[t] = (struct adamw_tensor){a->has_param ? RT_PTR(b, i - 1) : NULL,
                                      RT_PTR(b, i),
                                      RT_PTR(b, i + 1),
                                      RT_PTR(b, i + 2),
                                      RT_PTR(b, i + 3),
                                      a->elems[t],
                                      a->weight_decay[t]};
    }
    adamw_multi_cuda(ts, a->n, a->has_sumsq ? RT_PTR(b, a->n * per) : NULL, &a->hp, a->dt,
                     CUDA_STREAM());
}

CODELET_DEFINE(adamw_multi);

void adamw_group_insert(const struct adamw_group *g, int n, struct tensor *sumsq,
                        const struct adamw_hparams *hp, int prio, enum rt_where where)
{
    int whole = 1;
    for (int t = 0; t < n; t++)
        whole &= !g[t].master->ntiles && !g[0].param == !g[t].param;
    if (where != RT_WHERE_COMPUTE || rt_device() != RT_DEVICE_CUDA || !whole || n < 2) {
        for (int t = 0; t < n; t++) {
            struct adamw_hparams h = *hp;
            h.weight_decay = g[t].weight_decay;
            adamw_insert(g[t].param, g[t].master, g[t].m, g[t].v, g[t].grad, sumsq, &h, prio,
                         where);
        }
        return;
    }
    for (int first = 0; first < n; first += ADAMW_MULTI_MAX) {
        struct adamw_multi_args a = {.n = n - first < ADAMW_MULTI_MAX ? n - first : ADAMW_MULTI_MAX,
                                     .hp = *hp,
                                     .dt = (enum dtype)g[first].grad->type,
                                     .has_param = g[first].param != NULL,
                                     .has_sumsq = sumsq != NULL};
        struct rt_buf bufs[ADAMW_MULTI_MAX * 5 + 1];
        int k = 0;
        double elems = 0;
        for (int t = 0; t < a.n; t++) {
            const struct adamw_group *x = &g[first + t];
            CHECK_MSG(x->grad->type == g[first].grad->type, "AdamW group of several dtypes");
            a.elems[t] = x->grad->n;
            a.weight_decay[t] = x->weight_decay;
            elems += (double)x->grad->n;
            if (x->param) bufs[k++] = (struct rt_buf){x->param, RT_RW};
            bufs[k++] = (struct rt_buf){x->master, RT_RW};
            bufs[k++] = (struct rt_buf){x->m, RT_RW};
            bufs[k++] = (struct rt_buf){x->v, RT_RW};
            bufs[k++] = (struct rt_buf){x->grad, RT_R};
        }
        bufs[k++] = (struct rt_buf){sumsq, RT_R};
        rt_submit(CODELET(adamw_multi), "adamw_multi", bufs, k, &a, sizeof a, 12.0 * elems, prio,
                  where);
    }
}
