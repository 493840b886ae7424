/* bench_comm: the collective tasks (codelets.h) against NCCL called directly.
 *
 * With GPUs, over all local GPUs (W of them, one process): for each size (the bytes of the whole
 * fp16 tensor, W shards of 4096-byte multiples), `iters` all-gathers then `iters` reduce-scatters
 * as tasks, submitted back to back (each task waits for its streams) with one wait at the end; then
 * the same calls to ncclAllGather / ncclReduceScatter without a task (comm_nccl_issue) on the same
 * communicators and the same device buffers (tensor_acquire_on_node), issued back to back on the
 * communicator's stream per GPU and synchronised once, as nccl-tests does. Times are per operation
 * after two warm-up rounds; bus bandwidth follows nccl-tests: algBw = tensor bytes / time, busBw =
 * algBw * (W-1) / W (0 for W = 1). Without a GPU the task path runs on the host backend with
 * --ranks simulated ranks and the NCCL columns stay empty: a smoke run, not a measurement. Prints a
 * table; --out writes the JSON.
 *
 *     bench_comm [--sizes 64M,1G] [--iters 20] [--ranks 2] [--out FILE.json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codelets.h"
#include "timer.h"

#define MAX_SIZES 16

static const char *const OP_NAMES[] = {"all_gather", "reduce_scatter"}; /* by enum comm_op */

struct result {
    enum comm_op op;
    size_t bytes;
    double ours_ms, nccl_ms; /* nccl_ms < 0: not measured */
};

/* "64M", "1G", "4096": bytes. */
static size_t parse_bytes(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double unit = *end == 'K' ? 1 << 10 : *end == 'M' ? 1 << 20 : *end == 'G' ? 1 << 30 : 1;
    if (v <= 0 || end == s || (unit > 1 && end[1]) || (unit == 1 && *end))
        user_fail("--sizes %s: give sizes like 64M,1G (bytes, K, M or G)", s);
    return (size_t)(v * unit);
}

static double time_tasks(struct comm *c, enum comm_op op, struct tensor **shard,
                         struct tensor **full, size_t s, int iters)
{
    double t0 = 0;
    for (int i = 0; i < iters + 2; i++) {
        if (i == 2) {
            rt_wait_all();
            t0 = timer_now_s();
        }
        if (op == COMM_OP_ALL_GATHER)
            comm_all_gather(c, shard, full, s);
        else
            comm_reduce_scatter(c, full, shard, s);
    }
    rt_wait_all();
    return (timer_now_s() - t0) * 1e3 / iters;
}

/* The same collective straight to NCCL (comm_nccl_issue without a task), on the device copies
 * the tasks left and the communicator's streams. */
static double time_nccl(struct comm *c, enum comm_op op, struct tensor **shard,
                        struct tensor **full, size_t s, int iters)
{
    int L = comm_local(c);
    void *sp[COMM_MAX_LOCAL], *fp[COMM_MAX_LOCAL];
    for (int r = 0; r < L; r++) {
        sp[r] = tensor_acquire_on_node(shard[r], comm_node(c, r));
        fp[r] = tensor_acquire_on_node(full[r], comm_node(c, r));
    }
    double t0 = 0;
    for (int i = 0; i < iters + 2; i++) {
        if (i == 2) {
            comm_nccl_wait(c);
            t0 = timer_now_s();
        }
        comm_nccl_issue(c, op, sp, fp, s, DTYPE_FP16);
    }
    comm_nccl_wait(c);
    double ms = (timer_now_s() - t0) * 1e3 / iters;
    for (int r = 0; r < L; r++) {
        tensor_release_on_node(shard[r], comm_node(c, r));
        tensor_release_on_node(full[r], comm_node(c, r));
    }
    return ms;
}

/* Both operations at one size; appends two results. */
static void bench_size(struct comm *c, size_t bytes, int iters, int nccl, struct result *out)
{
    int L = comm_local(c), W = comm_world(c);
    size_t s = comm_shard_elems((bytes + 1) / 2, W, 4096, 2);
    struct tensor shard_t[COMM_MAX_LOCAL], full_t[COMM_MAX_LOCAL];
    struct tensor *shard[COMM_MAX_LOCAL], *full[COMM_MAX_LOCAL];
    for (int r = 0; r < L; r++) {
        shard[r] = &shard_t[r];
        full[r] = &full_t[r];
        tensor_init(shard[r], "bench.shard", TENSOR_TYPE_FP16, s, TENSOR_HOST_PAGEABLE);
        tensor_init(full[r], "bench.full", TENSOR_TYPE_FP16, W * s, TENSOR_HOST_NONE);
    }
    for (enum comm_op op = COMM_OP_ALL_GATHER; op <= COMM_OP_REDUCE_SCATTER; op++) {
        out[op] = (struct result){op, W * s * 2, time_tasks(c, op, shard, full, s, iters), -1};
        if (nccl) out[op].nccl_ms = time_nccl(c, op, shard, full, s, iters);
    }
    for (int r = 0; r < L; r++) {
        tensor_free(shard[r]);
        tensor_free(full[r]);
    }
}

static double bus_gbs(size_t bytes, double ms, int W)
{
    return ms > 0 ? bytes / (ms / 1e3) / 1e9 * (W - 1) / W : 0;
}

int main(int argc, char **argv)
{
    size_t sizes[MAX_SIZES] = {64u << 20, 1u << 30};
    int nsizes = 2, iters = 20, ranks = 2;
    const char *out_path = NULL;
    check_set_program("bench_comm");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            char *list = argv[++i], *tok;
            for (nsizes = 0; (tok = strtok(list, ",")) && nsizes < MAX_SIZES; list = NULL)
                sizes[nsizes++] = parse_bytes(tok);
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--ranks") == 0 && i + 1 < argc) {
            ranks = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else {
            user_fail("unknown argument %s: use --sizes 64M,1G --iters N --ranks N --out FILE",
                      argv[i]);
        }
    }
    if (nsizes < 1 || iters < 1) user_fail("--sizes needs a size and --iters must be positive");
    rt_init(&(struct rt_options){.quiet = 1});
    int nccl = rt_ncuda() > 0;
    struct comm *c = comm_create(
        &(struct comm_config){nccl ? COMM_BACKEND_NCCL : COMM_BACKEND_HOST, nccl ? 0 : ranks});
    int W = comm_world(c);
    struct result res[2 * MAX_SIZES];
    for (int k = 0; k < nsizes; k++)
        bench_size(c, sizes[k], iters, nccl, &res[2 * k]);
    printf("| %s, W=%d, fp16, %s | bytes | ours ms | NCCL ms | ours busBw GB/s | NCCL busBw GB/s "
           "|\n|---|---|---|---|---|---|\n",
           nccl ? "NCCL" : "host backend (no GPU)", W, rt_device_name());
    for (int k = 0; k < 2 * nsizes; k++) {
        struct result *r = &res[k];
        char nccl_ms[32] = "-", nccl_bus[32] = "-";
        if (nccl) {
            snprintf(nccl_ms, sizeof nccl_ms, "%.3f", r->nccl_ms);
            snprintf(nccl_bus, sizeof nccl_bus, "%.1f", bus_gbs(r->bytes, r->nccl_ms, W));
        }
        printf("| %s | %zu | %.3f | %s | %.1f | %s |\n", OP_NAMES[r->op], r->bytes, r->ours_ms,
               nccl_ms, bus_gbs(r->bytes, r->ours_ms, W), nccl_bus);
    }
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f) user_fail("--out %s: cannot write", out_path);
        fprintf(f,
                "{\"bench\": \"comm\", \"device\": \"%s\", \"backend\": \"%s\", \"world\": %d, "
                "\"dtype\": \"fp16\", \"iters\": %d, \"results\": [",
                rt_device_name(), nccl ? "nccl" : "host", W, iters);
        for (int k = 0; k < 2 * nsizes; k++) {
            struct result *r = &res[k];
            fprintf(f,
                    "%s\n  {\"op\": \"%s\", \"bytes\": %zu, \"ours_ms\": %.4f, \"ours_busbw_gbs\": "
                    "%.2f",
                    k ? "," : "", OP_NAMES[r->op], r->bytes, r->ours_ms,
                    bus_gbs(r->bytes, r->ours_ms, W));
            if (nccl)
                fprintf(f, ", \"nccl_ms\": %.4f, \"nccl_busbw_gbs\": %.2f", r->nccl_ms,
                        bus_gbs(r->bytes, r->nccl_ms, W));
            fprintf(f, "}");
        }
        fprintf(f, "]}\n");
        fclose(f);
    }
    comm_destroy(c);
    rt_shutdown();
    return 0;
}
