/* gpt50b: trains a GPT-2 / Megatron GPT whose every operation is a StarPU task.
 *
 * Megatron-LM's flag names, presets from a CPU-sized "tiny" model to the SC21 50B run, Hugging
 * Face checkpoints, one Megatron-style log line per iteration and a JSON metrics line per
 * iteration. StarPU's environment variables (STARPU_SCHED, STARPU_NCPU, STARPU_NCUDA, ...) keep
 * their meaning. See docs/usage.md.
 *
 * main() reads as the run does: the settings (args.c parses the flags, graph/model/settings.c
 * resolves them with the preset and the DeepSpeed config), the memory plan, the checks that need
 * no StarPU, the data, the start (StarPU, the collectives, the model, --load), train() (next
 * batch, forward, backward, update, log, evaluate, save), the end of training and the
 * shut-down. */
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
#include "fsdir.h"
#include "gpt.h"
#include "loader.h"
#include "machine.h"
#include "plan.h"
#include "probe.h"
#include "rt.h"
#include "schedule.h"
#include "settings.h"
#include "swap.h"
#include "timer.h"

/* The data-parallel ranks: W in all processes, this process's R of them from global rank first
 * (1, 1, 0 for one rank). */
struct ranks {
    int W, R, first;
};

/* What a run holds from its start to its shut-down. */
struct run {
    struct rt_launch launch;
    int delay; /* seconds a process other than 0 waits before reporting an error */
    const char *config_path;
    struct ds_config ds;         /* settings' strings point into it */
    struct settings_flags flags; /* as given: --load's shape check asks which were */
    struct settings s;
    struct machine machine; /* --machine's, when described (else this machine) */
    struct machine host; /* this host's rates, when --nvme-resident-fraction auto measured them */
    int described;
    struct gpt_config cfg; /* the shape as the engine takes it */
    struct plan plan;
    struct dataset *data;
    size_t ntok, train_end, val_end; /* tokens in all, ends of the training and validation splits */
    struct loader train, val;
    int have_val;
    struct aio_config aio;  /* the NVMe I/O engine's, opt's */
    struct gpt_options opt; /* the engine's, from the settings */
    struct lr_schedule lr;
    const char *trace_dir; /* where FxT writes the trace, NULL: no trace */
    struct comm *comm;
    struct ranks rk;
    struct gpt *m;
    struct train_state state; /* iteration, AdamW step, loss scaler: what a checkpoint resumes */
    size_t N;                 /* tokens of one rank's micro-batch */
    int micro_per_step;       /* micro-batches of all ranks per step */
    int32_t *in, *tg;         /* this process's ranks' inputs and targets, N each */
    double flops;             /* per micro-batch */
    int ngpu;                 /* what the FLOP rate is divided by: the GPUs, or the process */
    const char *per;          /* "GPU" or "process" */
    FILE *metrics;
    char metrics_what[4200];
    int64_t saved_iteration; /* of the checkpoint at --save, -1: none yet from this run */
    uint64_t nvme_read0, nvme_written0, nvme_kept0; /* the initial state's, not an iteration's */
    int64_t tasks0;                                 /* tasks submitted before the first iteration */
};

/* The training loop's account, for the log lines and the summary. */
struct progress {
    int64_t first;                   /* the first iteration this run trains */
    double t_start, t_steady, t_end; /* ms: the start, the end of the first iteration's optimizer
                                        step, the end of the last's */
    double interval_loss;            /* since the last log line */
    int64_t interval_n;
    int64_t skipped, nans;
    float loss, val_loss; /* the last */
};

/* One iteration. */
struct step {
    int64_t it;
    double t0, ms; /* its start and duration, ms */
    double lr;
    float scale;     /* loss scale */
    double loss_sum; /* of the micro-batches before the last */
    float loss;      /* the mean of its micro-batches' losses */
    float sumsq;     /* squared gradient norm, scaled; inf or NaN: overflow */
};

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

/* FNV-1a of the flags (not the program's path, which may differ from node to node), to find
 * processes started with different flags. */
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

/* The settings from the flags and the DeepSpeed config, for the launch's processes. Under mpirun
 * every process parses the same command line: process 0 reports what is wrong with it (the
 * others wait to let it: check_set_delay) and prints the log (the others' stdout goes nowhere);
 * errors in files, found by each process, are each one's own. */
static void read_settings(struct run *r, int argc, char **argv)
{
    char err[DSCONFIG_ERR_SIZE];
    int strict = 0;
    r->launch = rt_mpi_launch();
    r->delay = r->launch.rank != 0 ? 3 : 0; /* seconds: process 0's exit ends the job first */
    check_set_delay(r->delay);
    if (r->launch.rank != 0 && !freopen("/dev/null", "w", stdout))
        user_fail("cannot open /dev/null for process %d's log", r->launch.rank);
    args_prescan_config(argc, argv, &r->config_path, &strict);
    dsconfig_init(&r->ds);
    if (r->config_path && dsconfig_load(&r->ds, r->config_path, strict, err, sizeof err) != 0)
        user_fail("%s", err);
    settings_flags_init(&r->flags);
    args_parse(&r->flags, argc, argv);
    if (settings_resolve(&r->s, &r->flags, &r->ds, r->launch.size, r->launch.local_size, err,
                         sizeof err) != 0)
        user_fail("%s", err);
    if (r->config_path && r->launch.rank == 0)
        settings_note_config(&r->s, &r->ds, r->config_path, stderr);
    check_set_delay(0);
}

/* --machine: the described machine that a dry run plans for and that the simulation build
 * simulates (it has no machine of its own); a real build runs on this machine. The simulation
 * reads and writes no checkpoint: no kernel runs there, so there are no weights. */
static void read_machine(struct run *r)
{
    const struct settings *s = &r->s;
    char err[MACHINE_ERR_SIZE];
    if (!s->machine) {
        if (rt_simulated())
            user_fail("the simulation build simulates a described machine: give --machine NAME "
                      "(scripts/machines/NAME.json) or --machine PATH");
        return;
    }
    if (machine_load(&r->machine, s->machine, GPT50B_MACHINES_DIR, err, sizeof err) != 0)
        user_fail("%s", err);
    r->described = 1;
    if (!rt_simulated() && !s->dry_run)
        user_fail(
            "--machine %s: this build runs on this machine; --machine goes with --dry-run, or "
            "with the simulation build (docs/simulation.md)",
            s->machine);
    if (rt_simulated() && (s->save || s->load))
        user_fail("--%s: the simulation build reads and writes no checkpoint (no kernel runs, so "
                  "there are no weights): drop it",
                  s->save ? "save" : "load");
}

/* Model shape from --load's config.json; a shape flag given, before or after --preset, must
 * agree with it. */
static void shape_from_checkpoint(struct run *r)
{
    struct settings *s = &r->s;
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
        if (r->flags.pos[f[i].id] && f[i].given != f[i].stored)
            user_fail("%s %d disagrees with the checkpoint %s (%d): drop the flag or load another "
                      "checkpoint",
                      f[i].name, f[i].given, s->load, f[i].stored);
    s->L = ck.L;
    s->C = ck.C;
    s->NH = ck.NH;
    s->maxT = ck.maxT;
    s->V = ck.V;
}

/* The GPUs, the checkpoint folders and the model's final shape. Process 0 writes the
 * checkpoints: it locks --save and tidies what dead runs left there and beside --load (a lost
 * --load comes back here) before anything reads them. */
static void claim_checkpoints(struct run *r)
{
    const struct settings *s = &r->s;
    int writer = r->launch.rank == 0;
    rt_mpi_pick_gpus(&r->launch, s->num_gpus);
    if (s->save && writer && !s->dry_run) checkpoint_claim(s->save, 1);
    if (s->load && writer && !s->dry_run) checkpoint_claim(s->load, 0);
    if (s->load) shape_from_checkpoint(r);
    r->cfg = settings_model(s);
    if (s->save && writer) checkpoint_check_writable(s->save, &r->cfg, s->save_optim);
}

/* The NVMe I/O engine's settings: its defaults, and what the user set. */
static struct aio_config aio_settings(const struct settings *s)
{
    struct aio_config c = aio_config_default();
    if (s->aio.block_size >= 0) c.block_size = (size_t)s->aio.block_size;
    if (s->aio.queue_depth >= 0) c.queue_depth = (int)s->aio.queue_depth;
    if (s->aio.threads >= 0) c.threads = (int)s->aio.threads;
    if (s->aio.single_submit >= 0) c.single_submit = s->aio.single_submit;
    if (s->aio.overlap_events >= 0) c.overlap_events = s->aio.overlap_events;
    return c;
}

/* The swap folders: one lock per run, node and folder, which the first process of each node
 * takes before anything writes there (the auto share's probe included). */
static void claim_swap_folders(struct run *r)
{
    const struct settings *s = &r->s;
    char err[512];
    if (s->optim_tier != TIER_NVME || !s->nvme_path || rt_simulated() ||
        !(r->launch.local_rank == 0 || (r->launch.local_rank < 0 && r->launch.rank == 0)))
        return;
    char path[FSDIR_LIST_MAX][PATH_MAX];
    int n = fsdir_list_split(s->nvme_path, path, err, sizeof err);
    if (n < 0) user_fail("--nvme-path %s: %s", s->nvme_path, err);
    for (int j = 0; j < n; j++)
        if (swap_path_claim(path[j], err, sizeof err) != 0) user_fail("%s", err);
}

/* --nvme-resident-fraction auto: the plan's share becomes the one at which the disk and the CPU
 * AdamW balance, at --machine's rates or at this host's, measured now on the swap folders (1 GiB
 * each way, less when the swapped state is smaller) and the AdamW kernel; RAM caps it as any
 * share. One line says what was measured; the plan's step-time line, what was chosen. */
static void plan_auto_share(struct run *r, struct plan_input *in)
{
    const struct settings *s = &r->s;
    char err[PLAN_ERR_SIZE];
    /* the state's bytes depend on neither the share nor the rates */
    if (plan_compute(&r->plan, in, err, sizeof err) != 0) user_fail("%s", err);
    const struct plan *p = &r->plan;
    if (!in->machine) {
        int64_t mib = (int64_t)1 << 20, state = p->nvme_read_swapped;
        size_t bytes = (size_t)(state < mib          ? mib
                                : state < 1024 * mib ? state / mib * mib
                                                     : 1024 * mib);
        struct aio_config aio = aio_settings(s);
        claim_swap_folders(r); /* a run already there would be slowed, and the probe with it */
        double t0 = timer_now_s();
        if (probe_host(&r->host, s->nvme_path, &aio, bytes, s->dt, err, sizeof err) != 0)
            user_fail("--nvme-resident-fraction auto: measuring this host failed: %s", err);
        printf("> measured for --nvme-resident-fraction auto in %.1f s: NVMe write %.2f GB/s, read "
               "%.2f GB/s (%.0f MB each way), CPU AdamW %.1f GB/s on %d threads\n",
               timer_now_s() - t0, r->host.nvme_write_GBps, r->host.nvme_read_GBps,
               (double)bytes / 1e6, r->host.cpu_adamw_GBps, r->host.cpu_cores);
        in->machine = &r->host;
    }
    /* whole sub-groups stay resident: as many as reach the balance (one fewer leaves the step
     * waiting for the disk), half a sub-group over so that the plan's rounding down keeps them */
    double k = ceil(plan_balance_share(p, in->machine) * (double)p->subgroups),
           elems = (double)p->nparams_rank;
    in->resident_fraction =
        k >= (double)p->subgroups ? 1.0 : (k + 0.5) * (double)in->sub_group_size / elems;
}

/* The memory plan of this run, before anything is allocated: printed, and checked against each
 * tier's capacity. Returns whether it fits (a message in verdict otherwise). */
static int plan_memory(struct run *r, char *verdict, size_t n)
{
    const struct settings *s = &r->s;
    struct plan_input in;
    char err[PLAN_ERR_SIZE];
    /* the swap unit: a rank's shard of the table's largest tensor (the whole one with one rank) */
    struct model_table tab;
    model_table_init(&tab, &r->cfg);
    int64_t swap_unit = (int64_t)comm_shard_elems((size_t)model_largest_numel(&tab), s->world_size,
                                                  4096, dtype_size(s->dt));
    model_table_free(&tab);
    settings_plan_input(s, swap_unit, &in);
    if (r->described) {
        if (plan_capacity_machine(in.cap, &r->machine, err, sizeof err) != 0) user_fail("%s", err);
        in.machine = &r->machine;
        /* the described machine's nodes hold its GPUs, one rank each */
        if (!s->ranks_per_node && s->world_size > r->machine.gpus_per_node)
            in.ranks_per_node = r->machine.gpus_per_node;
    } else if (plan_capacity_gpu(&in.cap[TIER_GPU], rt_probe_gpu_bytes(), err, sizeof err) ||
               plan_capacity_ram(&in.cap[TIER_CPU], err, sizeof err)) {
        user_fail("%s", err);
    }
    /* A dry run plans without the folder (it may be made later, or exist on the nodes only): the
     * plan's NVMe line says why the space is not checked. A run stops here. */
    if (!r->described &&
        plan_capacity_nvme(&in.cap[TIER_NVME], s->optim_tier == TIER_NVME ? s->nvme_path : NULL,
                           err, sizeof err) != 0 &&
        !s->dry_run)
        user_fail("%s", err);
    if (s->resident_fraction == SETTINGS_RESIDENT_AUTO && s->optim_tier == TIER_NVME)
        plan_auto_share(r, &in);
    if (plan_compute(&r->plan, &in, err, sizeof err) != 0) user_fail("%s", err);
    plan_print(&r->plan, stdout);
    return plan_verdict(&r->plan, verdict, n) == 0;
}

/* What a run needs beyond the plan, checked before anything starts. */
static void check_before_start(struct run *r)
{
    const struct settings *s = &r->s;
    const char *ncuda = getenv("STARPU_NCUDA");
    if (s->num_gpus > 1 && ncuda && atoi(ncuda) > 0 && atoi(ncuda) < s->num_gpus)
        user_fail("--num-gpus %d with STARPU_NCUDA=%s: raise STARPU_NCUDA to at least %d or unset "
                  "it",
                  s->num_gpus, ncuda, s->num_gpus);
    /* the simulation writes no swap file: its disk is the machine's */
    if (s->optim_tier == TIER_NVME && !s->nvme_path && !rt_simulated())
        user_fail("--offload-optimizer nvme needs --nvme-path DIR: a folder on a fast local disk");
    claim_swap_folders(r);
    if (s->min_lr > s->lr) user_fail("--min-lr %g is above --lr %g", s->min_lr, s->lr);
    if (s->delayed_update && (s->num_gpus > 1 || s->world_size > 1 || r->launch.size > 1))
        user_fail("--delayed-param-update runs one rank (ZeRO-Offload's single-GPU case): drop it "
                  "or use one GPU and one process");
}

/* --data-path, every token checked against the vocabulary, split into training and validation. */
static void open_data(struct run *r)
{
    const struct settings *s = &r->s;
    char err[512];
    r->data = dataset_open(s->data_path, err, sizeof err);
    if (!r->data) user_fail("%s", err);
    r->ntok = dataset_ntokens(r->data);
    size_t bad = dataset_find_above(r->data, s->V - 1);
    if (bad < r->ntok)
        user_fail("--data-path %s: token %d at position %zu is outside the vocabulary of %d: "
                  "the data was tokenized for another vocabulary; give the matching --vocab-size "
                  "or --load",
                  s->data_path, dataset_token(r->data, bad), bad, s->V);
    double wsum = s->split[0] + s->split[1] + s->split[2];
    r->train_end = (size_t)(r->ntok * (s->split[0] / wsum));
    r->val_end = (size_t)(r->ntok * ((s->split[0] + s->split[1]) / wsum));
    enum data_order order = s->data_shuffle ? DATA_ORDER_SHUFFLE : DATA_ORDER_SEQUENTIAL;
    loader_init(&r->train, r->data, 0, r->train_end, s->B, s->T, order, s->seed, "training");
    r->have_val = s->eval_iters > 0 && r->val_end > r->train_end + (size_t)s->T + 2;
    if (r->have_val)
        loader_init(&r->val, r->data, r->train_end, r->val_end, s->B, s->T, DATA_ORDER_SEQUENTIAL,
                    s->seed, "validation");
}

/* The settings as the engine's options (the communicator comes at start). */
static void engine_options(struct run *r)
{
    const struct settings *s = &r->s;
    r->aio = aio_settings(s);
    r->opt = (struct gpt_options){.micro_steps = s->grad_accum,
                                  .max_live_elems = s->max_live_parameters,
                                  .dt = s->dt,
                                  .B = s->B,
                                  .T = s->T,
                                  .checkpointing = s->checkpointing,
                                  .seed = s->seed,
                                  .tile_size = s->tile_size,
                                  .optim_tier = s->optim_tier,
                                  .nvme_path = s->nvme_path,
                                  .offload_param = s->param_offload,
                                  .offload_checkpoints = s->ckpt_in_cpu,
                                  .optim_chunk = s->optim_chunk,
                                  .delayed_update = s->delayed_update,
                                  .swap_buffers = s->swap_buffers,
                                  .resident_fraction = s->resident_fraction >= 0
                                                           ? s->resident_fraction
                                                           : r->plan.resident_share,
                                  .aio = &r->aio};
    gpt_check_config(&r->cfg, &r->opt);
    r->lr = settings_lr_schedule(s);
}

/* --trace: FxT on (unless the environment says otherwise) and recording only the iterations
 * asked; a trace folder that cannot be written stops the run before StarPU starts. */
static void prepare_trace(struct run *r)
{
    const struct settings *s = &r->s;
    if (s->trace.first) {
        const char *fxt = getenv("STARPU_FXT_TRACE");
        if (fxt && atoi(fxt) == 0)
            user_fail("--trace %lld:%lld with STARPU_FXT_TRACE=%s: unset it or set it to 1",
                      (long long)s->trace.first, (long long)s->trace.last, fxt);
        setenv("STARPU_FXT_TRACE", "1", 0);
        printf("> tracing iterations %lld to %lld with FxT into %s\n", (long long)s->trace.first,
               (long long)s->trace.last,
               getenv("STARPU_FXT_PREFIX") ? getenv("STARPU_FXT_PREFIX") : "/tmp/");
    }
    r->trace_dir = trace_folder();
    if (r->trace_dir && access(r->trace_dir, W_OK) != 0)
        user_fail(
            "STARPU_FXT_PREFIX=%s: cannot write the FxT trace there: %s: create the folder or "
            "point STARPU_FXT_PREFIX elsewhere",
            r->trace_dir, strerror(errno));
}

/* Several ranks: the collectives between them, checked to run the same flags everywhere. */
static void start_collectives(struct run *r, int argc, char **argv)
{
    const struct settings *s = &r->s;
    enum comm_backend be = rt_ncuda() > 0 ? COMM_BACKEND_NCCL : COMM_BACKEND_HOST;
    check_set_delay(r->delay); /* what every process finds alike */
    r->comm = comm_create(&(struct comm_config){be, s->num_gpus});
    if (!comm_same_everywhere(r->comm, argv_hash(argc, argv)))
        user_fail("the %d processes were started with different flags: give every process "
                  "the same command line",
                  r->launch.size);
    check_set_delay(0);
    printf("> ZeRO-3 over %d ranks: %d process%s x %d (%s)\n", s->world_size, r->launch.size,
           r->launch.size > 1 ? "es" : "", s->num_gpus,
           be == COMM_BACKEND_NCCL ? "NCCL, one rank per GPU"
           : r->launch.size > 1    ? "host buffers, MPI between processes"
                                   : "simulated on the CPU");
}

/* --load: the weights, and to resume the optimizer and trainer state. */
static void load_checkpoint(struct run *r)
{
    const struct settings *s = &r->s;
    int resumed = checkpoint_load(r->m, s->load, &r->state);
    printf("> loaded %s from %s%s\n", resumed ? "weights and optimizer state" : "weights", s->load,
           resumed ? "" : " (training starts at iteration 1)");
    if (r->state.iteration > s->iters)
        user_fail("--load %s holds iteration %lld, beyond --train-iters %lld (which counts "
                  "the loaded iterations): give --train-iters above %lld",
                  s->load, (long long)r->state.iteration, (long long)s->iters,
                  (long long)r->state.iteration);
    if (r->state.iteration == s->iters)
        printf("> nothing to train: %s holds iteration %lld = --train-iters\n", s->load,
               (long long)r->state.iteration);
}

/* StarPU, the collectives, the model and its initial (or loaded) state. */
static void start(struct run *r, int argc, char **argv)
{
    const struct settings *s = &r->s;
    double t_init = timer_now_s() * 1e3;
    /* StarPU's CUDA task pipeline (kept with blocking drivers by setup.sh's StarPU patch) has run
     * on one GPU only: ZeRO-3 runs keep the synchronous CUDA worker their collectives were
     * checked with, unless STARPU_CUDA_PIPELINE says otherwise. */
    if (s->world_size > 1 && !rt_simulated()) setenv("STARPU_CUDA_PIPELINE", "0", 0);
    rt_init(&(struct rt_options){.cpu_workers = s->optim_tier != TIER_GPU,
                                 .trace_later = s->trace.first > 0,
                                 .mpi = r->launch.size > 1,
                                 .machine = rt_simulated() ? &r->machine : NULL});
    if (s->world_size > 1) start_collectives(r, argc, argv);
    r->opt.comm = r->comm;
    r->rk = (struct ranks){s->world_size, s->num_gpus, r->comm ? comm_rank(r->comm, 0) : 0};
    r->m = gpt_create(&r->cfg, &r->opt);
    settings_loss_scaler(s, &r->state.scaler);
    if (s->load) load_checkpoint(r);
    printf("> StarPU started, model allocated and initialised in %.1f s\n",
           ((timer_now_s() * 1e3) - t_init) / 1e3);
}

/* With several --nvme-path folders, one line on how the swap files spread over them. */
static void print_nvme_folders(const struct settings *s, const struct state_optim_placement *pl)
{
    char path[FSDIR_LIST_MAX][PATH_MAX], err[256], io[160];
    if (pl->folders < 2 || fsdir_list_split(s->nvme_path, path, err, sizeof err) != pl->folders)
        return;
    printf("> NVMe folders: %d, one aio engine each:", pl->folders);
    for (int j = 0; j < pl->folders; j++) {
        numa_io_describe(pl->io_numa[j], io, sizeof io);
        printf("%s %s %d swap files, %.3f GB (I/O threads %s)", j ? ";" : "", path[j],
               pl->folder_files[j], pl->folder_bytes[j] / 1e9, io);
    }
    printf("\n");
}

/* The run's lines before the first iteration: the model, the pinned pool, where the optimizer
 * state lives, the data. */
static void describe(struct run *r)
{
    const struct settings *s = &r->s;
    r->ngpu = rt_ncuda() == 0 ? 1 : s->world_size > 1 ? s->world_size : rt_ncuda();
    /* what the FLOP rate is divided by: the GPUs, or on CPU workers alone the process */
    r->per = rt_ncuda() == 0 ? "process" : "GPU";
    r->flops = gpt_flops_per_iteration(&r->cfg, s->B, s->T, s->checkpointing);
    printf("> model: %d layers, hidden %d, %d heads, seq %d, vocab %d (padded %d), %lld "
           "parameters, %s%s\n",
           s->L, s->C, s->NH, s->T, s->V, r->cfg.Vp, (long long)gpt_num_params(&r->cfg),
           dtype_name(s->dt),
           !s->checkpointing ? ""
           : s->ckpt_in_cpu  ? ", activation checkpointing (checkpoints in pinned CPU memory)"
                             : ", activation checkpointing");
    struct host_pool_info pool = rt_pool_info();
    printf("> pinned host pool: %.3f GB (%s, %s)\n", pool.capacity / 1e9,
           pool.pinned ? "page-locked" : "not page-locked: no GPU",
           pool.numa_node >= 0 ? "on the GPU's NUMA node" : "one NUMA node or no GPU: unbound");
    if (s->optim_tier != TIER_GPU) {
        struct state_optim_placement pl;
        state_optim_placement(gpt_get_state(r->m), &pl);
        printf("> optimizer state: %d tensors (%.3f GB) in RAM, %d tensors (%.3f GB) on NVMe "
               "(%s), swap buffers %.3f GB; resident share %.1f%%; %d AdamW tasks per step\n",
               pl.resident_tensors, pl.resident_bytes / 1e9, pl.swapped_tensors,
               pl.swapped_bytes / 1e9, s->nvme_path ? s->nvme_path : "-",
               pl.swap_buffer_bytes / 1e9,
               100.0 * pl.resident_bytes / (double)(pl.resident_bytes + pl.swapped_bytes),
               pl.adamw_tasks);
        if (s->delayed_update)
            printf("> delayed parameter update: on (each step's AdamW runs beside the next "
                   "iteration, which uses the parameters one step older; second %s copies of the "
                   "parameters and gradients in the pinned pool)\n",
                   dtype_name(s->dt));
        char nodes[64], io[160];
        rt_cpu_worker_nodes(nodes, sizeof nodes);
        numa_io_describe(pl.folders ? pl.io_numa[0] : (struct numa_io_choice){-1, NUMA_IO_UNPLACED},
                         io, sizeof io);
        printf(
            "> NUMA: CPU workers (AdamW) on node %s, as StarPU bound them; NVMe I/O threads %s%s\n",
            nodes, s->optim_tier == TIER_NVME ? io : "none",
            pl.folders > 1 ? " (the first folder's)" : "");
        print_nvme_folders(s, &pl);
    }
    printf("> data: %s (%s, %zu tokens; %zu training, %zu validation), order %s\n", s->data_path,
           dataset_format(r->data), r->ntok, r->train_end,
           r->have_val ? r->val_end - r->train_end : 0, s->data_shuffle ? "shuffle" : "sequential");
}

/* The metrics file (process 0), the batch buffers, the starting point of the account. */
static void prepare_training(struct run *r, struct progress *p)
{
    const struct settings *s = &r->s;
    if (s->metrics && r->launch.rank == 0 && !(r->metrics = fopen(s->metrics, "a")))
        user_fail("--metrics %s: %s: choose a writable file", s->metrics, strerror(errno));
    snprintf(r->metrics_what, sizeof r->metrics_what, "--metrics %s", s->metrics ? s->metrics : "");
    r->N = (size_t)s->B * s->T;
    r->micro_per_step = s->grad_accum * r->rk.W;
    r->in = malloc(r->N * r->rk.R * sizeof *r->in);
    r->tg = malloc(r->N * r->rk.R * sizeof *r->tg);
    CHECK(r->in && r->tg);
    state_nvme_traffic(gpt_get_state(r->m), &r->nvme_read0, &r->nvme_written0, &r->nvme_kept0);
    r->tasks0 = rt_tasks_submitted();
    *p = (struct progress){.first = r->state.iteration + 1,
                           .t_start = timer_now_s() * 1e3,
                           .loss = NAN,
                           .val_loss = NAN};
    r->saved_iteration =
        s->load && s->save && strcmp(s->load, s->save) == 0 ? r->state.iteration : -1;
    /* From here on a stop can wait for a safe point. Before, the default action is right:
     * nothing is written yet, and mpirun ends the other processes of a failed start with
     * SIGTERM. This replaces StarPU's own SIGINT handler. */
    catch_stop_signals();
}

/* Micro-batch `micro` of the run's sequence into each local rank's slot of the model's inputs:
 * global rank g of W gets what micro-batch micro * W + g of one rank would (the single-rank run
 * with W times the accumulation sees the same data, whatever the split into processes). */
static void next_batch(struct run *r, struct loader *l, int64_t micro)
{
    for (int k = 0; k < r->rk.R; k++)
        loader_batch(l, micro * r->rk.W + r->rk.first + k, r->in + k * r->N, r->tg + k * r->N);
    gpt_set_batch(r->m, r->in, r->tg);
}

/* The mean loss of --eval-iters batches of the validation split (forward only). */
static double evaluate(struct run *r)
{
    double sum = 0;
    for (int64_t j = 0; j < r->s.eval_iters; j++) {
        float loss;
        next_batch(r, &r->val, j);
        gpt_forward(r->m);
        gpt_step_stats(r->m, &loss, NULL);
        sum += loss;
    }
    return r->s.eval_iters ? sum / r->s.eval_iters : NAN;
}

static void save_checkpoint(struct run *r)
{
    char err[512];
    double t0 = timer_now_s() * 1e3;
    if (checkpoint_save(r->m, r->s.save, &r->state, r->s.save_optim, err, sizeof err) != 0)
        user_fail("saving the checkpoint failed, the previous one is intact: %s", err);
    printf(" saved checkpoint at iteration %8lld to %s in %.1f ms\n", (long long)r->state.iteration,
           r->s.save, (timer_now_s() * 1e3) - t0);
    r->saved_iteration = r->state.iteration;
}

/* The step's learning rate and loss scale, its clock and the trace window's start. */
static struct step step_begin(struct run *r, struct progress *p, int64_t it)
{
    struct step step = {.it = it, .t0 = timer_now_s() * 1e3};
    if (it == r->s.trace.first) rt_trace_start();
    step.lr = lr_at(&r->lr, it);
    step.scale = (float)r->state.scaler.scale;
    return step;
}

/* After a micro-batch that is not the step's last: its loss, for the step's mean. */
static void add_micro_loss(struct run *r, struct step *step)
{
    float loss;
    gpt_step_stats(r->m, &loss, NULL);
    step->loss_sum += loss;
}

/* AdamW over the accumulated gradients (skipped on overflow), and the step's loss and gradient
 * norm; the loss scale moves as DeepSpeed's does. */
static void update(struct run *r, struct progress *p, struct step *step)
{
    const struct settings *s = &r->s;
    struct adamw_hparams hp = {(float)step->lr,        (float)s->beta1,
                               (float)s->beta2,        (float)s->eps,
                               (float)s->weight_decay, (int)r->state.adam_step + 1,
                               1.0f / step->scale,     (float)s->clip_grad};
    /* the steady clock starts where the first step's last task ends: the CPU AdamW of an
     * iteration runs on into the next one (with --delayed-param-update beside all of it), so the
     * next iteration's start would leave that step out of the first iteration's time and put it,
     * with every later step, into the N - 1 iterations after it */
    int first = step->it == p->first;
    if (first) rt_mark_begin();
    gpt_update(r->m, &hp);
    gpt_step_stats(r->m, &step->loss, &step->sumsq);
    step->loss = (float)((step->loss_sum + step->loss) / s->grad_accum);
    step->ms = (timer_now_s() * 1e3) - step->t0;
    if (step->it == s->trace.last)
        rt_trace_stop(); /* after the timing: the wait for the optimizer's tail is not the step's */
    int overflow = !isfinite(step->sumsq);
    if (overflow) gpt_delayed_skip(r->m);
    if (first) rt_mark_end();
    p->skipped += overflow;
    p->nans += isnan(step->sumsq) || isnan(step->loss);
    if (!overflow) r->state.adam_step++;
    loss_scaler_update(&r->state.scaler, overflow);
    r->state.iteration = step->it;
    p->loss = step->loss;
    p->interval_loss += step->loss;
    p->interval_n++;
}

/* The metrics line of every iteration, and the log line of every --log-interval-th. */
static void log_step(struct run *r, struct progress *p, const struct step *step)
{
    const struct settings *s = &r->s;
    int overflow = !isfinite(step->sumsq);
    float grad_norm = sqrtf(step->sumsq) / step->scale;
    double tokens_s = (double)r->N * r->micro_per_step / (step->ms / 1e3),
           tflops = r->flops * r->micro_per_step / (step->ms / 1e3) / r->ngpu / 1e12;
    if (r->metrics) {
        fprintf(r->metrics,
                "{\"iteration\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"loss_scale\": %.9g, "
                "\"grad_norm\": %.9g, \"skipped\": %s, \"elapsed_ms\": %.3f, "
                "\"tokens_per_s\": %.1f, \"tflops\": %.4f}\n",
                (long long)step->it, step->loss, step->lr, step->scale,
                isfinite(grad_norm) ? grad_norm : -1.0, overflow ? "true" : "false", step->ms,
                tokens_s, tflops);
        check_written(r->metrics, r->metrics_what);
    }
    if (step->it % s->log_interval != 0 && step->it != s->iters) return;
    printf(" iteration %8lld/%8lld | consumed samples: %12lld | elapsed time per iteration "
           "(ms): %.1f | learning rate: %.3E | global batch size: %5d | lm loss: %.6E | "
           "loss scale: %.1f | grad norm: %.3f | number of skipped iterations: %3lld | "
           "number of nan iterations: %3lld | TFLOP/s per %s: %.2f | tokens/s: %.0f\n",
           (long long)step->it, (long long)s->iters,
           (long long)(step->it * s->B * r->micro_per_step), step->ms, step->lr,
           s->B * r->micro_per_step, p->interval_loss / p->interval_n, step->scale, grad_norm,
           (long long)p->skipped, (long long)p->nans, r->per, tflops, tokens_s);
    p->interval_loss = 0;
    p->interval_n = 0;
    check_written(stdout, "the log (stdout)");
}

static void log_validation(struct run *r, struct progress *p, int64_t it)
{
    p->val_loss = (float)evaluate(r);
    printf(" validation loss at iteration %lld | lm loss value: %.6E | lm loss PPL: %.6E\n",
           (long long)it, p->val_loss, exp(p->val_loss));
}

/* From the first iteration not yet trained to --train-iters, or to a stop signal. */
static void train(struct run *r, struct progress *p)
{
    const struct settings *s = &r->s;
    for (int64_t it = p->first; it <= s->iters && !stop_signal; it++) {
        struct step step = step_begin(r, p, it);
        gpt_begin_step(r->m);
        for (int micro = 0; micro < s->grad_accum; micro++) {
            next_batch(r, &r->train, (it - 1) * s->grad_accum + micro);
            gpt_forward(r->m);
            gpt_backward(r->m, step.scale, micro, s->grad_accum);
            if (micro < s->grad_accum - 1) add_micro_loss(r, &step);
        }
        update(r, p, &step);
        log_step(r, p, &step);
        if (r->have_val && s->eval_interval > 0 && it % s->eval_interval == 0)
            log_validation(r, p, it);
        if (s->save && s->save_interval > 0 && it % s->save_interval == 0 && it != s->iters)
            save_checkpoint(r);
    }
    /* the last optimizer step (CPU AdamW, swap-out) may still run: it belongs to the run's time */
    rt_wait_all();
    p->t_end = timer_now_s() * 1e3;
    if (s->iters > p->first) p->t_steady = rt_mark_ended_s() * 1e3;
}

/* After a stop signal: the last iteration saved (--save), and one line on what was kept. The
 * statistics of an interrupted run would mislead. */
static void stop_at_signal(struct run *r)
{
    const struct settings *s = &r->s;
    if (s->save && r->state.iteration > r->saved_iteration) save_checkpoint(r);
    char kept[4200] = "no checkpoint kept (no --save)";
    if (s->save)
        snprintf(kept, sizeof kept, "the checkpoint %s holds iteration %lld", s->save,
                 (long long)r->saved_iteration);
    fprintf(stderr, "gpt50b: stopped by %s after iteration %lld: %s%s\n",
            stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)r->state.iteration, kept,
            s->optim_tier == TIER_NVME ? "; swap folder removed" : "");
}

/* The summary lines of a run that trained `done` iterations: speed, collectives, NVMe traffic,
 * memory. */
static void report(struct run *r, const struct progress *p, int64_t done)
{
    const struct settings *s = &r->s;
    double steady_ms = done > 1 ? (p->t_end - p->t_steady) / (done - 1) : p->t_end - p->t_start;
    char val[64] = "";
    if (r->have_val) snprintf(val, sizeof val, " | validation loss %.4f", p->val_loss);
    printf("> done: %lld iterations in %.1f s on %s | %.1f ms per iteration after the first | "
           "%.0f tokens/s | %.2f TFLOP/s per %s | final lm loss %.4f%s | skipped %lld\n",
           (long long)done, (p->t_end - p->t_start) / 1e3, rt_device_name(), steady_ms,
           (double)r->N * r->micro_per_step / (steady_ms / 1e3),
           r->flops * r->micro_per_step / (steady_ms / 1e3) / r->ngpu / 1e12, r->per, p->loss, val,
           (long long)p->skipped);
    if (r->comm) {
        /* the time inside the collective tasks, and of it in MPI/NCCL, which holds the wait for
         * the other processes (evaluation's collectives count too) */
        static const char *const names[COMM_NOPS] = {"all-gather", "reduce-scatter", "all-reduce"};
        struct comm_stats cs = comm_stats(r->comm);
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
    if (s->optim_tier == TIER_NVME) {
        /* the engine counts this process's ranks, the plan one rank */
        uint64_t rd, wr, kept, local = s->world_size > 1 ? (uint64_t)s->num_gpus : 1;
        state_nvme_traffic(gpt_get_state(r->m), &rd, &wr, &kept);
        printf("> NVMe optimizer traffic: %.3f GB read, %.3f GB written per iteration (plan: %.3f "
               "GB each way; %.3f GB without the resident share); skipped steps left %.3f GB "
               "unwritten\n",
               (rd - r->nvme_read0) / 1e9 / done, (wr - r->nvme_written0) / 1e9 / done,
               local * r->plan.nvme_read / 1e9, local * r->plan.nvme_read_swapped / 1e9,
               (kept - r->nvme_kept0) / 1e9);
    }
    /* what a simulation of the run costs grows with it (docs/simulation.md, section 3) */
    printf("> tasks: %.0f submitted per iteration by process 0 (evaluation's included)\n",
           (double)(rt_tasks_submitted() - r->tasks0) / done);
    printf("> memory of process 0 (of %d): peak resident set %.1f MB; StarPU's buffers: %.1f "
           "MB in RAM",
           r->launch.size, rt_peak_rss_bytes() / 1e6, rt_starpu_bytes_used(-1) / 1e6);
    for (int g = 0; g < rt_ncuda(); g++)
        printf(", %.1f MB on GPU %d", rt_starpu_bytes_used(g) / 1e6, g);
    printf("\n");
}

/* The end of a run that was not stopped: the final validation (unless the last iteration had
 * one), the final save (with --train-iters 0, the initial weights), the summary. */
static void finish(struct run *r, struct progress *p)
{
    const struct settings *s = &r->s;
    int64_t done = s->iters - p->first + 1;
    int evaluated_last = s->eval_interval > 0 && s->iters % s->eval_interval == 0;
    if (done > 0 && r->have_val && !evaluated_last) {
        p->val_loss = (float)evaluate(r);
        printf(" validation loss at the end of training | lm loss value: %.6E | lm loss PPL: "
               "%.6E\n",
               p->val_loss, exp(p->val_loss));
    }
    if (s->save && (done > 0 || s->iters == 0)) save_checkpoint(r);
    if (done > 0) report(r, p, done);
}

/* Everything written is on disk, everything held is released, StarPU is stopped and the trace
 * it wrote is checked. */
static void shut_down(struct run *r)
{
    if (r->metrics && fclose(r->metrics) != 0)
        user_fail("--metrics %s: cannot write: %s: free space or choose another file", r->s.metrics,
                  strerror(errno));
    check_written(stdout, "the log (stdout)");
    free(r->in);
    free(r->tg);
    gpt_destroy(r->m);
    if (r->comm) comm_destroy(r->comm);
    loader_free(&r->train);
    if (r->have_val) loader_free(&r->val);
    dataset_close(r->data);
    rt_shutdown();
    check_trace_written(r->trace_dir);
}

int main(int argc, char **argv)
{
    static struct run r; /* zero: what is not made yet is NULL */
    char verdict[PLAN_ERR_SIZE];
    setvbuf(stdout, NULL, _IOLBF, 0);
    read_settings(&r, argc, argv);
    read_machine(&r);
    claim_checkpoints(&r);
    int fits = plan_memory(&r, verdict, sizeof verdict);
    if (r.s.dry_run) {
        printf("%s\n", fits ? "plan: fits" : verdict);
        return fits ? 0 : EXIT_USER;
    }
    if (!fits) user_fail("%s", verdict);
    check_before_start(&r);
    open_data(&r);
    engine_options(&r);
    prepare_trace(&r);
    start(&r, argc, argv);
    describe(&r);

    struct progress p;
    prepare_training(&r, &p);
    train(&r, &p);
    if (stop_signal)
        stop_at_signal(&r);
    else
        finish(&r, &p);
    shut_down(&r);
    return stop_signal ? 128 + stop_signal : 0;
}
