/* test_machine.c: the machine-file reader (runtime/formats/machine.h).
 *
 * Every machine of scripts/machines/ must read with the figures it holds; a file written here
 * must read by path; a missing figure, a figure without kind or source, an unknown kind, a
 * non-positive or mistyped value, invalid JSON, an unknown name and a missing file must each give
 * their one-line message, naming the file and the field. The simulation's durations by formula
 * (machine_swap_us, machine_collective_us, machine_adamw_us) against figures worked by hand. */
#include "machine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test_expect.h"

static char dir[4096], machines[4096];

/* The members of a valid one-GPU machine, one per line. */
static const char *const good[][2] = {
    {"name", "\"t1\""},
    {"description", "\"a test machine\""},
    {"nodes", "{\"value\": 1, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"gpus_per_node", "{\"value\": 1, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"gpu_model", "{\"value\": \"Test GPU\", \"kind\": \"vendor\", \"source\": \"x\"}"},
    {"gpu_memory_bytes", "{\"value\": 1.6e10, \"kind\": \"vendor\", \"source\": \"x\"}"},
    {"ram_bytes", "{\"value\": 64000000000, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"cpu_cores", "{\"value\": 8, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"nvme_bytes", "{\"value\": 1000000000000, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"nvme_read_GBps", "{\"value\": 3.5, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"nvme_write_GBps", "{\"value\": 2, \"kind\": \"measured\", \"source\": \"x\"}"},
    {"cpu_adamw_GBps", "{\"value\": 50, \"kind\": \"derived\", \"source\": \"x\"}"},
    {"cpu_adamw_core_GBps", "{\"value\": 10, \"kind\": \"assumed\", \"source\": \"x\"}"},
    {"gpu_hbm_GBps", "{\"value\": 2000, \"kind\": \"vendor\", \"source\": \"x\"}"},
    {"collective_busbw_GBps", "{\"value\": null, \"kind\": \"measured\", \"source\": \"x\"}"},
};
#define NGOOD (sizeof good / sizeof *good)

/* Writes the good machine to dir/NAME.json with the members of `over` (pairs of key and JSON,
 * NULL-terminated) instead of its own: a NULL JSON leaves the key out, a key not among them is
 * added last. Returns the path. */
static const char *write_machine(const char *name, const char *const *over)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) exit(1);
    fprintf(f, "{");
    for (size_t i = 0; i < NGOOD; i++) {
        const char *v = good[i][1];
        for (int k = 0; over && over[k]; k += 2)
            if (strcmp(over[k], good[i][0]) == 0) v = over[k + 1];
        if (v) fprintf(f, "%s\n \"%s\": %s", i ? "," : "", good[i][0], v);
    }
    for (int k = 0; over && over[k]; k += 2) {
        int found = 0;
        for (size_t i = 0; i < NGOOD; i++)
            found |= strcmp(over[k], good[i][0]) == 0;
        if (!found) fprintf(f, ",\n \"%s\": %s", over[k], over[k + 1]);
    }
    fprintf(f, "}\n");
    fclose(f);
    return path;
}

/* The machine with the members of `over` must be refused with exactly "machine file PATH: msg". */
static void expect_error(const char *const *over, const char *msg, int line)
{
    struct machine m;
    char err[MACHINE_ERR_SIZE], want[MACHINE_ERR_SIZE + 8192];
    const char *path = write_machine("bad", over);
    snprintf(want, sizeof want, "machine file %s: %s", path, msg);
    int rc = machine_load(&m, path, machines, err, sizeof err);
    if (rc != -1 || strcmp(err, want) != 0) {
        fprintf(stderr, "FAIL line %d: %s: %s\n  got rc %d: %s\n  want: %s\n", line, over[0],
                over[1] ? over[1] : "(left out)", rc, rc ? err : "", want);
        test_failures++;
    }
}
/* EXPECT_ERROR(msg, key, json, key, json, ...) */
#define EXPECT_ERROR(msg, ...) expect_error((const char *const[]){__VA_ARGS__, NULL}, msg, __LINE__)
#define FIGURE(v)              "{\"value\": " v ", \"kind\": \"measured\", \"source\": \"x\"}"

/* got within 1e-9 relative of want (microseconds). */
#define EXPECT_US(got, want)                                                                       \
    EXPECT(fabs((got) - (want)) <= 1e-9 * (want), "got %.6f us, want %.6f", (got), (double)(want))

static void test_durations(void)
{
    struct machine h1, h2, cori;
    char err[MACHINE_ERR_SIZE];
    EXPECT(machine_load(&h1, "h100-x1", machines, err, sizeof err) == 0 &&
               machine_load(&h2, "h100-x2", machines, err, sizeof err) == 0 &&
               machine_load(&cori, "cori-v100-2x8", machines, err, sizeof err) == 0,
           "%s", err);
    /* 3 GB in: 3e9 / 2450 bytes per us; out: 3e9 / 2990 (no checksum time: it overlaps) */
    EXPECT_US(machine_swap_us(&h1, 3e9, 0), 3e9 / 2450);
    EXPECT_US(machine_swap_us(&h1, 3e9, 1), 3e9 / 2990);
    /* 1 GiB gathered over 2 H100s: 50 us + 1/2 x 2^30 / 270e3 = 2038.41 us (docs/simulation.md:
     * 1.99 ms measured without the latency) */
    EXPECT_US(machine_collective_us(&h2, 2, 1073741824.0), 50 + 0.5 * 1073741824.0 / 270e3);
    /* one Cori node (8 ranks) at NVLink's 130 GB/s; 16 ranks across the network's 40 */
    EXPECT_US(machine_collective_us(&cori, 8, 1e9), 50 + 7.0 / 8 * 1e9 / 130e3);
    EXPECT_US(machine_collective_us(&cori, 16, 1e9), 50 + 15.0 / 16 * 1e9 / 40e3);
    EXPECT_US(machine_collective_us(&cori, 1, 1e9), 50); /* one rank: nothing moves */
    /* 1e9 parameters x 28 bytes at 146.7 GB/s: one core of 15 busy gets 1/15 of it, ... */
    EXPECT_US(machine_adamw_us(&h1, 1e9, 1, 15), 28e9 / (146.7e3 / 15));
    EXPECT_US(machine_adamw_us(&h1, 1e9, 15, 15), 28e9 / 146.7e3);
    /* ... one core alone its own 29.15 GB/s (the node's 146.7 would allow more) */
    EXPECT_US(machine_adamw_us(&h1, 1e9, 1, 1), 28e9 / 29.15e3);
    EXPECT_US(machine_adamw_us(&h1, 1e9, 2, 1), 28e9 / 58.3e3); /* busy counts the task's own */
    /* two Cori nodes, 64 busy cores (2 x 40 cores less 16 GPU drivers): 32 per node */
    EXPECT_US(machine_adamw_us(&cori, 1e9, 1, 64), 28e9 / (100e3 / 32));
    EXPECT_US(machine_adamw_us(&cori, 1e9, 1, 4), 28e9 / 12e3);
    /* a disk whose mixed rate was measured: both directions at it */
    const char *mixed[] = {"nvme_mixed_GBps", FIGURE("2.4"), NULL};
    struct machine d;
    EXPECT(machine_load(&d, write_machine("mixed", mixed), machines, err, sizeof err) == 0, "%s",
           err);
    EXPECT_US(machine_swap_us(&d, 3e9, 0), 3e9 / 2400);
    EXPECT_US(machine_swap_us(&d, 3e9, 1), 3e9 / 2400);
}

int main(void)
{
    struct machine m;
    char err[MACHINE_ERR_SIZE];
    const char *top = getenv("GPT50B_TOP");
    snprintf(machines, sizeof machines, "%s/scripts/machines", top ? top : ".");
    test_dir_make(dir, sizeof dir, NULL, "test_machine");

    /* the repository's machines, by name */
    EXPECT(machine_load(&m, "h100-x1", machines, err, sizeof err) == 0, "%s", err);
    EXPECT(strcmp(m.name, "h100-x1") == 0 && machine_gpus(&m) == 1 && m.cpu_cores == 16 &&
               m.gpu_memory_bytes == 85520809984 && m.ram_bytes == 134217728000 &&
               m.ram_available_bytes == m.ram_bytes && m.nvme_bytes == 68719476736 &&
               m.nvme_read_GBps == 2.45 && m.nvme_write_GBps == 2.99 && m.cpu_adamw_GBps == 146.7 &&
               m.cpu_adamw_core_GBps == 29.15 && m.collective_busbw_GBps == 0 &&
               strcmp(m.gpu_model, "NVIDIA H100 80GB HBM3") == 0,
           "h100-x1 read as %s %d GPUs", m.name, machine_gpus(&m));
    EXPECT(machine_load(&m, "h100-x2", machines, err, sizeof err) == 0, "%s", err);
    EXPECT(machine_gpus(&m) == 2 && m.collective_busbw_GBps == 270 &&
               m.collective_latency_us == 50 && m.network_GBps == 0,
           "h100-x2: %d GPUs, busbw %g", machine_gpus(&m), m.collective_busbw_GBps);
    EXPECT(machine_load(&m, "h200-x1", machines, err, sizeof err) == 0, "%s", err);
    EXPECT(m.gpu_memory_bytes == 150754820096, "h200-x1: %lld bytes",
           (long long)m.gpu_memory_bytes);
    EXPECT(machine_load(&m, "cori-v100-2x8", machines, err, sizeof err) == 0, "%s", err);
    EXPECT(m.nodes == 2 && m.gpus_per_node == 8 && m.network_GBps == 40 &&
               m.ram_available_bytes == 372000000000 && m.nvme_write_GBps == 1.5,
           "cori-v100-2x8: %d x %d, network %g", m.nodes, m.gpus_per_node, m.network_GBps);

    /* a file by path, with its optional figures */
    const char *path = write_machine("t1", NULL);
    EXPECT(machine_load(&m, path, machines, err, sizeof err) == 0, "%s", err);
    EXPECT(strcmp(m.name, "t1") == 0 && m.gpu_memory_bytes == 16000000000 &&
               strcmp(m.path, path) == 0,
           "t1: %s, %lld bytes", m.name, (long long)m.gpu_memory_bytes);

    /* figures */
    static const char missing[] = "is missing or null: this machine needs it (docs/simulation.md, "
                                  "section 1)";
    char msg[256];
    snprintf(msg, sizeof msg, "figure nvme_bytes %s", missing);
    EXPECT_ERROR(msg, "nvme_bytes", NULL);
    EXPECT_ERROR(msg, "nvme_bytes", FIGURE("null"));
    snprintf(msg, sizeof msg, "figure collective_busbw_GBps %s", missing);
    EXPECT_ERROR(msg, "gpus_per_node", FIGURE("2"));
    snprintf(msg, sizeof msg, "figure network_GBps %s", missing);
    EXPECT_ERROR(msg, "nodes", FIGURE("2"), "collective_busbw_GBps", FIGURE("100"),
                 "collective_latency_us", FIGURE("20"));
    EXPECT_ERROR("figure cpu_cores is not an object {\"value\": ..., \"kind\": ..., \"source\": "
                 "...}",
                 "cpu_cores", "8");
    EXPECT_ERROR("figure pcie_h2d_GBps is not an object {\"value\": ..., \"kind\": ..., "
                 "\"source\": ...}",
                 "pcie_h2d_GBps", "{\"kind\": \"measured\", \"source\": \"x\"}");
    EXPECT_ERROR("figure cpu_cores: \"kind\" must be one of measured, derived, vendor, seed, "
                 "assumed",
                 "cpu_cores", "{\"value\": 8, \"kind\": \"guessed\", \"source\": \"x\"}");
    EXPECT_ERROR("figure cpu_cores: \"source\" must say where the value comes from (a string)",
                 "cpu_cores", "{\"value\": 8, \"kind\": \"assumed\"}");
    EXPECT_ERROR("figure cpu_cores must be a whole number of at most 65536", "cpu_cores",
                 FIGURE("8.5"));
    EXPECT_ERROR("figure nvme_read_GBps must be a positive number", "nvme_read_GBps", FIGURE("0"));
    EXPECT_ERROR("figure nvme_mixed_GBps must be a positive number", "nvme_mixed_GBps",
                 FIGURE("-1"));
    EXPECT_ERROR("figure nvme_read_GBps must be a positive number", "nvme_read_GBps",
                 FIGURE("\"fast\""));
    EXPECT_ERROR("figure gpu_model must be a non-empty string of fewer than 128 bytes", "gpu_model",
                 FIGURE("7"));
    EXPECT_ERROR("\"name\" must be a non-empty string of fewer than 64 bytes", "name", "3");

    /* the file itself */
    EXPECT_ERROR("line 8, column 27: string or '}' expected near '}'", "ram_bytes",
                 "{\"value\": 1,}");
    EXPECT_ERROR("line 17, column 31: duplicate object key near '\"nvme_bytes\"'",
                 "nvme_bytes2\": 1, \"nvme_bytes", "2");
    char none[8192], want[MACHINE_ERR_SIZE + 8192];
    snprintf(none, sizeof none, "%s/none.json", dir);
    snprintf(want, sizeof want, "machine file %s: No such file or directory", none);
    EXPECT(machine_load(&m, none, machines, err, sizeof err) == -1 && strcmp(err, want) == 0,
           "got: %s", err);
    EXPECT(machine_load(&m, "h100-x9", machines, err, sizeof err) == -1 &&
               strstr(err, "unknown machine h100-x9: no ") &&
               strstr(err,
                      "(machines: cori-v100-2x8, h100-2x8, h100-x1, h100-x2, h200-x1; or give a "
                      "file's path)"),
           "got: %s", err);

    test_durations();
    test_dir_remove(dir);
    return test_finish("test_machine");
}
