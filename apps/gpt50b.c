/* gpt50b: trains a GPT-2 / Megatron GPT whose every operation is a StarPU task.
 *
 * Megatron-LM's flag names, presets from a CPU-sized "tiny" model to the SC21 50B run, Hugging
 * Face checkpoints, one Megatron-style log line per iteration and a JSON metrics line per
 * iteration. StarPU's environment variables (STARPU_SCHED, STARPU_NCPU, STARPU_NCUDA, ...) keep
 * their meaning. See docs/usage.md. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "args.h"
#include "check.h"
#include "checkpoint.h"
#include "comm.h"
#include "dataset.h"
#include "dsconfig.h"
#include "gpt.h"
#include "loader.h"
#include "plan.h"
#include "rt.h"
#include "schedule.h"
#include "settings.h"
#include "swap.h"
#include "timer.h"

/* Model shape from --load's config.json; a shape flag given explicitly must agree with it. */
static void shape_from_checkpoint(struct settings *s, const struct settings_flags *flags)
{
    struct gpt_config ck;
    checkpoint_read_config(s->load, &ck);
    const struct {
        enum setting id;
        const char *name;
        int given, stored;
    } f[] = {{SETTING_LAYERS, "--num-layers", s->L, ck.L},
             {SETTING_HIDDEN, "--hidden-size", s->C, ck.C},
             {SETTING_HEADS, "--num-attention-heads", s->NH, ck.NH},
             {SETTING_MAX_POSITIONS, "--max-position-embeddings", s->maxT, ck.maxT},
             {SETTING_VOCAB, "--vocab-size", s->V, ck.V}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (flags->pos[f[i].id] && f[i].given != f[i].stored)
            user_fail("%s %d disagrees with the checkpoint %s (%d): drop the flag or load another "
                      "checkpoint",
                      f[i].name, f[i].given, s->load, f[i].stored);
    s->L = ck.L;
    s->C = ck.C;
    s->NH = ck.NH;
    s->maxT = ck.maxT;
    s->V = ck.V;
}

/* The data-parallel ranks: W in all processes, this process's R of them from global rank first
 * (1, 1, 0 for one rank). */
struct ranks {
    int W, R, first;
};

/* Micro-batch `micro` of the run's sequence into local rank r's slot of in/tg (N tokens each):
 * global rank g of W gets what micro-batch micro * W + g of one rank would (the single-rank run
 * with W times the accumulation sees the same data, whatever the split into processes). */
static void load_ranks(struct loader *l, int64_t micro, const struct ranks *rk, size_t N,
                       int32_t *in, int32_t *tg)
{
    for (int r = 0; r < rk->R; r++)
        loader_batch(l, micro * rk->W + rk->first + r, in + r * N, tg + r * N);
}

static double evaluate(struct gpt *m, struct loader *val, int64_t iters, const struct ranks *rk,
                       size_t N, int32_t *in, int32_t *tg)
{
    double sum = 0;
    for (int64_t j = 0; j < iters; j++) {
        float loss;
        load_ranks(val, j, rk, N, in, tg);
        gpt_set_batch(m, in, tg);
        gpt_forward(m);
        gpt_step_stats(m, &loss, NULL);
        sum += loss;
    }
    return iters ? sum / iters : NAN;
}

/* SIGINT and SIGTERM. The first asks the training loop to stop at its next safe point, the end
 * of the iteration or save in flight; the second kills at once (the default action, re-raised):
 * saves are atomic, so the checkpoint at --save stays whole, and the next run removes what this
 * one leaves (its swap folder, an unfinished save), one line each. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    static const char again[] =
        "gpt50b: second signal: stopping at once; the last checkpoint is whole, and the next run "
        "removes what this one leaves\n";
    if (stop_signal) {
        if (write(STDERR_FILENO, again, sizeof again - 1) < 0) _exit(128 + sig);
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0);
}

/* Pushes what f holds to its file and stops the run (exit 2, one line) when a write failed: a
 * full disk must not leave a metrics file or log that silently lacks iterations. The checkpoint at
 * --save stays the last one saved. */
static void check_written(FILE *f, const char *what)
{
    if (fflush(f) == 0 && !ferror(f)) return;
    user_fail("%s: cannot write: %s: free space or choose another file", what, strerror(errno));
}

/* The folder of StarPU's FxT trace when one is recorded (STARPU_FXT_TRACE set and not 0, as
 * --trace sets it), else NULL. */
static const char *trace_folder(void)
{
    const char *on = getenv("STARPU_FXT_TRACE"), *prefix = getenv("STARPU_FXT_PREFIX");
    if (!on || atoi(on) == 0) return NULL;
    return prefix && *prefix ? prefix : "/tmp/";
}

/* FxT writes the trace at StarPU's shutdown and reports a failed write only with a line of its
 * own on stderr, the run still exiting 0: a trace folder left with no free block means the write
 * ran out of room and the trace is cut. */
static void check_trace_written(const char *folder)
{
    struct statvfs v;
    if (!folder || statvfs(folder, &v) != 0 || v.f_bavail > 0) return;
    user_fail("STARPU_FXT_PREFIX=%s: the file system is full, so the FxT trace written there is "
              "cut short: free space or point STARPU_FXT_PREFIX elsewhere, and run again",
              folder);
}

static int64_t saved_iteration = -1; /* of the checkpoint at --save, -1: none yet from this run */

static void save_checkpoint(struct gpt *m, const struct settings *a, const struct train_state *st)
{
    char err[512];
    double t0 = timer_now_s() * 1e3;
    if (checkpoint_save(m, a->save, st, a->save_optim, err, sizeof err) != 0)
        user_fail("saving the checkpoint failed, the previous one is intact: %s", err);
    printf(" saved checkpoint at iteration %8lld to %s in %.1f ms\n", (long long)st->iteration,
           a->save, (timer_now_s() * 1e3) - t0);
    saved_iteration = st->iteration;
}

/* --deepspeed_config FILE (or --deepspeed-config, or =FILE) and --strict-config, read before the
 * other flags so that those override the file. */
static uint64_t argv_hash(int argc, char **argv)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 1; i < argc; i++)
        for (const char *p = argv[i];; p++) {
            h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
            if (!*p) break;
        }
    return h;
}

/* The memory plan of this run, before anything is allocated: printed, and checked against each
 * tier's capacity. Returns whether it fits (a message in verdict otherwise). */
/* The memory plan of this run, before anything is allocated: printed, and checked against each
 * tier's capacity. Returns whether it fits (a message in verdict otherwise). */
static int make_plan(const struct settings *a, struct plan *p, char *verdict, size_t n)
{
    struct plan_input in;
    char err[PLAN_ERR_SIZE];
    int64_t gpu_bytes = rt_probe_gpu_bytes();
    /* the swap unit: a rank's shard of the largest tensor (the whole tensor with one rank) */
    settings_plan_input(
        a, (int64_t)comm_shard_elems((size_t)a->Vp * a->C, a->world_size, 4096, dtype_size(a->dt)),
        &in);
    if (plan_capacity_gpu(&in.cap[TIER_GPU], gpu_bytes, err, sizeof err) ||
        plan_capacity_ram(&in.cap[TIER_CPU], err, sizeof err))
        user_fail("%s", err);
    /* A dry run plans without the folder (it may be made later, or exist on the nodes only): the
     * plan's NVMe line says why the space is not checked. A run stops here. */
    if (plan_capacity_nvme(&in.cap[TIER_NVME], a->optim_tier == TIER_NVME ? a->nvme_path : NULL,
                           err, sizeof err) != 0 &&
        !a->dry_run)
        user_fail("%s", err);
    if (plan_compute(p, &in, err, sizeof err) != 0) user_fail("%s", err);
    plan_print(p, stdout);
    return plan_verdict(p, verdict, n) == 0;
}

int main(int argc, char **argv)
{
    struct ds_config ds; /* the settings' strings point into it */
    struct settings_flags flags;
    struct settings a;
    char err[512];
    const char *ds_path = NULL;
    int strict = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Under mpirun every process parses the same command line: process 0 reports what is wrong
     * with it (the others wait to let it: check_set_delay) and prints the log (the others'
     * stdout goes nowhere); errors in files, found by each process, are each one's own. */
    struct rt_launch launch = rt_mpi_launch();
    int delay = launch.rank != 0 ? 3 : 0; /* seconds: process 0's exit ends the job first */
    check_set_delay(delay);
    if (launch.rank != 0 && !freopen("/dev/null", "w", stdout))
        user_fail("cannot open /dev/null for process %d's log", launch.rank);
    args_prescan_config(argc, argv, &ds_path, &strict);
    dsconfig_init(&ds);
    if (ds_path && dsconfig_load(&ds, ds_path, strict, err, sizeof err) != 0) user_fail("%s", err);
    settings_flags_init(&flags);
    args_parse(&flags, argc, argv);
    if (settings_resolve(&a, &flags, &ds, launch.size, launch.local_size, err, sizeof err) != 0)
        user_fail("%s", err);
    if (ds_path && launch.rank == 0) settings_note_config(&a, &ds, ds_path, stderr);
    check_set_delay(0);
    rt_mpi_pick_gpus(&launch, a.num_gpus);
    /* Process 0 writes the checkpoints: it locks --save and tidies what dead runs left there
     * and beside --load (a lost --load comes back here) before anything reads them. */
    if (a.save && launch.rank == 0 && !a.dry_run) checkpoint_claim(a.save, 1);
    if (a.load && launch.rank == 0 && !a.dry_run) checkpoint_claim(a.load, 0);
    if (a.load) shape_from_checkpoint(&a, &flags);
    a.Vp = gpt_padded_vocab(a.V, a.vocab_divisor);
    struct gpt_config cfg = {.L = a.L, .C = a.C, .NH = a.NH, .maxT = a.maxT, .V = a.V, .Vp = a.Vp};
    if (a.save && launch.rank == 0) checkpoint_check_writable(a.save, &cfg, a.save_optim);
    struct lr_schedule lr_schedule = settings_lr_schedule(&a);
    struct plan plan;
    char verdict[PLAN_ERR_SIZE];
    int fits = make_plan(&a, &plan, verdict, sizeof verdict);
    if (a.dry_run) {
        printf("%s\n", fits ? "plan: fits" : verdict);
        return fits ? 0 : EXIT_USER;
    }
    if (!fits) user_fail("%s", verdict);
    const char *ncuda = getenv("STARPU_NCUDA");
    if (a.num_gpus > 1 && ncuda && atoi(ncuda) > 0 && atoi(ncuda) < a.num_gpus)
        user_fail("--num-gpus %d with STARPU_NCUDA=%s: raise STARPU_NCUDA to at least %d or unset "
                  "it",
                  a.num_gpus, ncuda, a.num_gpus);
    if (a.optim_tier == TIER_NVME && !a.nvme_path)
        user_fail("--offload-optimizer nvme needs --nvme-path DIR: a folder on a fast local disk");
    /* one lock per run and node: the first process of each node takes it */
    if (a.optim_tier == TIER_NVME &&
        (launch.local_rank == 0 || (launch.local_rank < 0 && launch.rank == 0)) &&
        swap_path_claim(a.nvme_path, err, sizeof err) != 0)
        user_fail("%s", err);
    if (a.min_lr > a.lr) user_fail("--min-lr %g is above --lr %g", a.min_lr, a.lr);

    struct dataset *data = dataset_open(a.data_path, err, sizeof err);
    if (!data) user_fail("%s", err);
    size_t ntok = dataset_ntokens(data);
    size_t bad = dataset_find_above(data, a.V - 1);
    if (bad < ntok)
        user_fail("--data-path %s: token %d at position %zu is outside the vocabulary of %d: "
                  "the data was tokenized for another vocabulary; give the matching --vocab-size "
                  "or --load",
                  a.data_path, dataset_token(data, bad), bad, a.V);
    double wsum = a.split[0] + a.split[1] + a.split[2];
    size_t train_end = (size_t)(ntok * (a.split[0] / wsum));
    size_t val_end = (size_t)(ntok * ((a.split[0] + a.split[1]) / wsum));
    struct loader train, val;
    enum data_order order = a.data_shuffle ? DATA_ORDER_SHUFFLE : DATA_ORDER_SEQUENTIAL;
    loader_init(&train, data, 0, train_end, a.B, a.T, order, a.seed, "training");
    int have_val = a.eval_iters > 0 && val_end > train_end + (size_t)a.T + 2;
    if (have_val)
        loader_init(&val, data, train_end, val_end, a.B, a.T, DATA_ORDER_SEQUENTIAL, a.seed,
                    "validation");

    struct aio_config aio = aio_config_default();
    if (a.aio.block_size >= 0) aio.block_size = (size_t)a.aio.block_size;
    if (a.aio.queue_depth >= 0) aio.queue_depth = (int)a.aio.queue_depth;
    if (a.aio.threads >= 0) aio.threads = (int)a.aio.threads;
    if (a.aio.single_submit >= 0) aio.single_submit = a.aio.single_submit;
    if (a.aio.overlap_events >= 0) aio.overlap_events = a.aio.overlap_events;
    struct gpt_options opt = {.dt = a.dt,
                              .B = a.B,
                              .T = a.T,
                              .checkpointing = a.checkpointing,
                              .seed = a.seed,
                              .tile_size = a.tile_size,
                              .optim_tier = a.optim_tier,
                              .nvme_path = a.nvme_path,
                              .offload_param = a.param_offload,
                              .offload_checkpoints = a.ckpt_in_cpu,
                              .optim_chunk = a.optim_chunk,
                              .swap_buffers = a.swap_buffers,
                              .resident_fraction = a.resident_fraction >= 0 ? a.resident_fraction
                                                                            : plan.resident_share,
                              .aio = &aio};
    gpt_check_config(&cfg, &opt);
    if (a.trace.first) {
        const char *fxt = getenv("STARPU_FXT_TRACE");
        if (fxt && atoi(fxt) == 0)
            user_fail("--trace %lld:%lld with STARPU_FXT_TRACE=%s: unset it or set it to 1",
                      (long long)a.trace.first, (long long)a.trace.last, fxt);
        setenv("STARPU_FXT_TRACE", "1", 0);
        printf("> tracing iterations %lld to %lld with FxT into %s\n", (long long)a.trace.first,
               (long long)a.trace.last,
               getenv("STARPU_FXT_PREFIX") ? getenv("STARPU_FXT_PREFIX") : "/tmp/");
    }
    const char *trace_dir = trace_folder();
    if (trace_dir && access(trace_dir, W_OK) != 0)
        user_fail(
            "STARPU_FXT_PREFIX=%s: cannot write the FxT trace there: %s: create the folder or "
            "point STARPU_FXT_PREFIX elsewhere",
            trace_dir, strerror(errno));
    double t_init = timer_now_s() * 1e3;
    rt_init(&(struct rt_options){.cpu_workers = a.optim_tier != TIER_GPU,
                                 .trace_later = a.trace.first > 0,
                                 .mpi = launch.size > 1});
    struct comm *comm = NULL;
    if (a.world_size > 1) {
        enum comm_backend be = rt_ncuda() > 0 ? COMM_BACKEND_NCCL : COMM_BACKEND_HOST;
        check_set_delay(delay); /* what every process finds alike */
        comm = comm_create(&(struct comm_config){be, a.num_gpus});
        if (!comm_same_everywhere(comm, argv_hash(argc, argv)))
            user_fail("the %d processes were started with different flags: give every process "
                      "the same command line",
                      launch.size);
        check_set_delay(0);
        printf("> ZeRO-3 over %d ranks: %d process%s x %d (%s)\n", a.world_size, launch.size,
               launch.size > 1 ? "es" : "", a.num_gpus,
               be == COMM_BACKEND_NCCL ? "NCCL, one rank per GPU"
               : launch.size > 1       ? "host buffers, MPI between processes"
                                       : "simulated on the CPU");
    }
    opt.comm = comm;
    opt.micro_steps = a.grad_accum;
    opt.max_live_elems = a.max_live_parameters;
    struct ranks rk = {a.world_size, a.num_gpus, comm ? comm_rank(comm, 0) : 0};
    struct gpt *m = gpt_create(&cfg, &opt);
    struct train_state st = {0};
    settings_loss_scaler(&a, &st.scaler);
    if (a.load) {
        int resumed = checkpoint_load(m, a.load, &st);
        printf("> loaded %s from %s%s\n", resumed ? "weights and optimizer state" : "weights",
               a.load, resumed ? "" : " (training starts at iteration 1)");
        if (st.iteration > a.iters)
            user_fail("--load %s holds iteration %lld, beyond --train-iters %lld (which counts "
                      "the loaded iterations): give --train-iters above %lld",
                      a.load, (long long)st.iteration, (long long)a.iters, (long long)st.iteration);
        if (st.iteration == a.iters)
            printf("> nothing to train: %s holds iteration %lld = --train-iters\n", a.load,
                   (long long)st.iteration);
    }

    printf("> StarPU started, model allocated and initialised in %.1f s\n",
           ((timer_now_s() * 1e3) - t_init) / 1e3);
    int64_t nparams = gpt_num_params(&cfg);
    int ngpu = rt_ncuda() == 0 ? 1 : a.world_size > 1 ? a.world_size : rt_ncuda();
    /* what the FLOP rate is divided by: the GPUs, or on CPU workers alone the process */
    const char *per = rt_ncuda() == 0 ? "process" : "GPU";
    double flops = gpt_flops_per_iteration(&cfg, a.B, a.T, a.checkpointing);
    printf("> model: %d layers, hidden %d, %d heads, seq %d, vocab %d (padded %d), %lld "
           "parameters, %s%s\n",
           a.L, a.C, a.NH, a.T, a.V, a.Vp, (long long)nparams, dtype_name(a.dt),
           !a.checkpointing ? ""
           : a.ckpt_in_cpu  ? ", activation checkpointing (checkpoints in pinned CPU memory)"
                            : ", activation checkpointing");
    struct host_pool_info pool = rt_pool_info();
    printf("> pinned host pool: %.3f GB (%s, %s)\n", pool.capacity / 1e9,
           pool.pinned ? "page-locked" : "not page-locked: no GPU",
           pool.numa_node >= 0 ? "on the GPU's NUMA node" : "one NUMA node or no GPU: unbound");
    if (a.optim_tier != TIER_GPU) {
        struct state_optim_placement pl;
        state_optim_placement(gpt_get_state(m), &pl);
        printf("> optimizer state: %d tensors (%.3f GB) in RAM, %d tensors (%.3f GB) on NVMe "
               "(%s), swap buffers %.3f GB; resident share %.1f%%; %d AdamW tasks per step\n",
               pl.resident_tensors, pl.resident_bytes / 1e9, pl.swapped_tensors,
               pl.swapped_bytes / 1e9, a.nvme_path ? a.nvme_path : "-", pl.swap_buffer_bytes / 1e9,
               100.0 * pl.resident_bytes / (double)(pl.resident_bytes + pl.swapped_bytes),
               pl.adamw_tasks);
        char nodes[64], io[160];
        rt_cpu_worker_nodes(nodes, sizeof nodes);
        numa_io_describe(pl.io_numa, io, sizeof io);
        printf(
            "> NUMA: CPU workers (AdamW) on node %s, as StarPU bound them; NVMe I/O threads %s\n",
            nodes, a.optim_tier == TIER_NVME ? io : "none");
    }
    printf("> data: %s (%s, %zu tokens; %zu training, %zu validation), order %s\n", a.data_path,
           dataset_format(data), ntok, train_end, have_val ? val_end - train_end : 0,
           a.data_shuffle ? "shuffle" : "sequential");

    FILE *metrics = NULL;
    if (a.metrics && launch.rank == 0 && !(metrics = fopen(a.metrics, "a")))
        user_fail("--metrics %s: %s: choose a writable file", a.metrics, strerror(errno));
    char metrics_what[4200];
    snprintf(metrics_what, sizeof metrics_what, "--metrics %s", a.metrics ? a.metrics : "");

    size_t N = (size_t)a.B * a.T;
    int micro_per_step = a.grad_accum * rk.W; /* micro-batches of all ranks */
    int32_t *in = malloc(N * rk.R * sizeof *in), *tg = malloc(N * rk.R * sizeof *tg);
    CHECK(in && tg);
    uint64_t nvme_read0, nvme_written0, nvme_kept0; /* the initial state's writes are not an
                                                        iteration's */
    state_nvme_traffic(gpt_get_state(m), &nvme_read0, &nvme_written0, &nvme_kept0);
    double t_start = (timer_now_s() * 1e3), t_steady = 0, interval_loss = 0;
    int64_t first = st.iteration + 1, skipped_total = 0, nan_total = 0, interval_n = 0;
    float loss = NAN, val_loss = NAN;
    if (a.load && a.save && strcmp(a.load, a.save) == 0) saved_iteration = st.iteration;
    /* From here on a stop can wait for a safe point. Before, the default action is right: nothing
     * is written yet, and mpirun ends the other processes of a failed start with SIGTERM. This
     * replaces StarPU's own SIGINT handler. */
    catch_stop_signals();
    for (int64_t it = first; it <= a.iters && !stop_signal; it++) {
        double t0 = timer_now_s() * 1e3;
        if (it == first + 1) t_steady = t0;
        if (it == a.trace.first) rt_trace_start();
        double lr = lr_at(&lr_schedule, it);
        float scale = (float)st.scaler.scale, sumsq;
        struct adamw_hparams hp = {(float)lr,    (float)a.beta1,        (float)a.beta2,
                                   (float)a.eps, (float)a.weight_decay, (int)st.adam_step + 1,
                                   1.0f / scale, (float)a.clip_grad};
        double loss_sum = 0;
        for (int micro = 0; micro < a.grad_accum; micro++) {
            float micro_loss;
            load_ranks(&train, (it - 1) * a.grad_accum + micro, &rk, N, in, tg);
            gpt_set_batch(m, in, tg);
            gpt_forward(m);
            gpt_backward(m, scale, micro, a.grad_accum);
            if (micro < a.grad_accum - 1) {
                gpt_step_stats(m, &micro_loss, NULL);
                loss_sum += micro_loss;
            }
        }
        gpt_update(m, &hp);
        gpt_step_stats(m, &loss, &sumsq);
        loss = (float)((loss_sum + loss) / a.grad_accum);
        double dt_ms = (timer_now_s() * 1e3) - t0;
        if (it == a.trace.last)
            rt_trace_stop(); /* after the timing: the wait for the optimizer's tail is not the
                                step's */

        int overflow = !isfinite(sumsq);
        float grad_norm = sqrtf(sumsq) / scale;
        skipped_total += overflow;
        nan_total += isnan(sumsq) || isnan(loss);
        if (!overflow) st.adam_step++;
        loss_scaler_update(&st.scaler, overflow);
        st.iteration = it;
        interval_loss += loss;
        interval_n++;

        double tokens_s = (double)N * micro_per_step / (dt_ms / 1e3),
               tflops = flops * micro_per_step / (dt_ms / 1e3) / ngpu / 1e12;
        if (metrics) {
            fprintf(metrics,
                    "{\"iteration\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"loss_scale\": %.9g, "
                    "\"grad_norm\": %.9g, \"skipped\": %s, \"elapsed_ms\": %.3f, "
                    "\"tokens_per_s\": %.1f, \"tflops\": %.4f}\n",
                    (long long)it, loss, lr, scale, isfinite(grad_norm) ? grad_norm : -1.0,
                    overflow ? "true" : "false", dt_ms, tokens_s, tflops);
            check_written(metrics, metrics_what);
        }
        if (it % a.log_interval == 0 || it == a.iters) {
            printf(" iteration %8lld/%8lld | consumed samples: %12lld | elapsed time per iteration "
                   "(ms): %.1f | learning rate: %.3E | global batch size: %5d | lm loss: %.6E | "
                   "loss scale: %.1f | grad norm: %.3f | number of skipped iterations: %3lld | "
                   "number of nan iterations: %3lld | TFLOP/s per %s: %.2f | tokens/s: %.0f\n",
                   (long long)it, (long long)a.iters, (long long)(it * a.B * micro_per_step), dt_ms,
                   lr, a.B * micro_per_step, interval_loss / interval_n, scale, grad_norm,
                   (long long)skipped_total, (long long)nan_total, per, tflops, tokens_s);
            interval_loss = 0;
            interval_n = 0;
            check_written(stdout, "the log (stdout)");
        }
        if (have_val && a.eval_interval > 0 && it % a.eval_interval == 0) {
            val_loss = (float)evaluate(m, &val, a.eval_iters, &rk, N, in, tg);
            printf(" validation loss at iteration %lld | lm loss value: %.6E | lm loss PPL: %.6E\n",
                   (long long)it, val_loss, exp(val_loss));
        }
        if (a.save && a.save_interval > 0 && it % a.save_interval == 0 && it != a.iters)
            save_checkpoint(m, &a, &st);
    }
    /* the last optimizer step (CPU AdamW, swap-out) may still run: it belongs to the run's time */
    rt_wait_all();
    if (stop_signal) { /* the statistics of an interrupted run would mislead: only what was kept */
        if (a.save && st.iteration > saved_iteration) save_checkpoint(m, &a, &st);
        char kept[4200] = "no checkpoint kept (no --save)";
        if (a.save)
            snprintf(kept, sizeof kept, "the checkpoint %s holds iteration %lld", a.save,
                     (long long)saved_iteration);
        fprintf(stderr, "gpt50b: stopped by %s after iteration %lld: %s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)st.iteration, kept,
                a.optim_tier == TIER_NVME ? "; swap folder removed" : "");
        goto cleanup;
    }
    double t_end = timer_now_s() * 1e3;
    int64_t done = a.iters - first + 1;
    int evaluated_last = a.eval_interval > 0 && a.iters % a.eval_interval == 0;
    if (done > 0 && have_val && !evaluated_last) {
        val_loss = (float)evaluate(m, &val, a.eval_iters, &rk, N, in, tg);
        printf(" validation loss at the end of training | lm loss value: %.6E | lm loss PPL: "
               "%.6E\n",
               val_loss, exp(val_loss));
    }
    if (a.save && (done > 0 || a.iters == 0)) save_checkpoint(m, &a, &st); /* 0: initial weights */
    if (done > 0) {
        double steady_ms = done > 1 ? (t_end - t_steady) / (done - 1) : t_end - t_start;
        char val[64] = "";
        if (have_val) snprintf(val, sizeof val, " | validation loss %.4f", val_loss);
        printf("> done: %lld iterations in %.1f s on %s | %.1f ms per iteration after the first | "
               "%.0f tokens/s | %.2f TFLOP/s per %s | final lm loss %.4f%s | skipped %lld\n",
               (long long)done, (t_end - t_start) / 1e3, rt_device_name(), steady_ms,
               (double)N * micro_per_step / (steady_ms / 1e3),
               flops * micro_per_step / (steady_ms / 1e3) / ngpu / 1e12, per, loss, val,
               (long long)skipped_total);
    }
    if (comm && done > 0) {
        /* the time inside the collective tasks, and of it in MPI/NCCL, which holds the wait for
         * the other processes (evaluation's collectives count too) */
        static const char *const names[COMM_NOPS] = {"all-gather", "reduce-scatter", "all-reduce"};
        struct comm_stats cs = comm_stats(comm);
        printf("> collectives of process 0, per iteration:");
        for (int op = 0; op < COMM_NOPS; op++)
            printf("%s %.1f %s, %.3f ms each (%.3f in %s)", op ? ";" : "",
                   (double)cs.count[op] / done, names[op],
                   cs.count[op] ? 1e3 * cs.task_s[op] / cs.count[op] : 0.0,
                   cs.count[op] ? 1e3 * cs.wire_s[op] / cs.count[op] : 0.0,
                   rt_ncuda() > 0 ? "NCCL" : "MPI");
        printf("; loss all-reduce on the host %.1f, %.3f ms each\n", (double)cs.host_count / done,
               cs.host_count ? 1e3 * cs.host_s / cs.host_count : 0.0);
    }
    if (a.optim_tier == TIER_NVME && done > 0) {
        /* the engine counts this process's ranks, the plan one rank */
        uint64_t r, w, k, local = a.world_size > 1 ? (uint64_t)a.num_gpus : 1;
        state_nvme_traffic(gpt_get_state(m), &r, &w, &k);
        printf("> NVMe optimizer traffic: %.3f GB read, %.3f GB written per iteration (plan: %.3f "
               "GB each way; %.3f GB without the resident share); skipped steps left %.3f GB "
               "unwritten\n",
               (r - nvme_read0) / 1e9 / done, (w - nvme_written0) / 1e9 / done,
               local * plan.nvme_read / 1e9, local * plan.nvme_read_swapped / 1e9,
               (k - nvme_kept0) / 1e9);
    }
    if (done > 0) {
        printf("> memory of process 0 (of %d): peak resident set %.1f MB; StarPU's buffers: %.1f "
               "MB in RAM",
               launch.size, rt_peak_rss_bytes() / 1e6, rt_starpu_bytes_used(-1) / 1e6);
        for (int g = 0; g < rt_ncuda(); g++)
            printf(", %.1f MB on GPU %d", rt_starpu_bytes_used(g) / 1e6, g);
        printf("\n");
    }
cleanup:
    if (metrics && fclose(metrics) != 0)
        user_fail("--metrics %s: cannot write: %s: free space or choose another file", a.metrics,
                  strerror(errno));
    check_written(stdout, "the log (stdout)");
    free(in);
    free(tg);
    gpt_destroy(m);
    if (comm) comm_destroy(comm);
    loader_free(&train);
    if (have_val) loader_free(&val);
    dataset_close(data);
    rt_shutdown();
    check_trace_written(trace_dir);
    return stop_signal ? 128 + stop_signal : 0;
}
