/* machine.c: the machine-file reader (see machine.h). */
#include "machine.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    const char *path;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct ctx *x, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(x->err, x->errlen, "machine file %s: ", x->path);
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < x->errlen) vsnprintf(x->err + n, x->errlen - n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const kinds[] = {"measured", "derived", "vendor", "seed", "assumed"};

/* Every member but the two plain strings must be {"value": X, "kind": K, "source": S}. */
static int check_figure(struct ctx *x, const char *key, const json_t *f)
{
    const json_t *kind = json_object_get(f, "kind");
    int known = 0;
    if (!json_is_object(f) || !json_object_get(f, "value"))
        return fail(
            x, "figure %s is not an object {\"value\": ..., \"kind\": ..., \"source\": ...}", key);
    for (size_t k = 0; json_is_string(kind) && k < sizeof kinds / sizeof *kinds; k++)
        known |= strcmp(json_string_value(kind), kinds[k]) == 0;
    if (!known)
        return fail(
            x, "figure %s: \"kind\" must be one of measured, derived, vendor, seed, assumed", key);
    if (!json_is_string(json_object_get(f, "source")))
        return fail(x, "figure %s: \"source\" must say where the value comes from (a string)", key);
    return 0;
}

/* The value of figure key: NULL when absent or null, which is an error when required. */
static const json_t *value(struct ctx *x, const json_t *root, const char *key, int required,
                           int *rc)
{
    const json_t *v = json_object_get(json_object_get(root, key), "value");
    if (json_is_null(v)) v = NULL;
    if (!v && required && *rc == 0)
        *rc = fail(x,
                   "figure %s is missing or null: this machine needs it (docs/simulation.md, "
                   "section 1)",
                   key);
    return v;
}

/* A positive number into *out; absent (not required): *out = 0. */
static void number(struct ctx *x, const json_t *root, const char *key, int required, double *out,
                   int *rc)
{
    const json_t *v = value(x, root, key, required, rc);
    *out = 0;
    if (!v || *rc) return;
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v))) {
        *rc = fail(x, "figure %s must be a positive number", key);
        return;
    }
    *out = json_number_value(v);
}

/* A positive whole number (integral floats such as 3.84e11 accepted) below max. */
static void whole(struct ctx *x, const json_t *root, const char *key, int required, double max,
                  int64_t *out, int *rc)
{
    double d;
    number(x, root, key, required, &d, rc);
    *out = 0;
    if (*rc) return;
    if (d != floor(d) || d > max) {
        *rc = fail(x, "figure %s must be a whole number of at most %.0f", key, max);
        return;
    }
    *out = (int64_t)d;
}

static void count(struct ctx *x, const json_t *root, const char *key, int *out, int *rc)
{
    int64_t v;
    whole(x, root, key, 1, 65536, &v, rc);
    *out = (int)v;
}

static void string(struct ctx *x, const json_t *root, const char *key, char *out, size_t len,
                   int *rc)
{
    const json_t *v = value(x, root, key, 1, rc);
    if (!v || *rc) return;
    if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) >= len) {
        *rc = fail(x, "figure %s must be a non-empty string of fewer than %zu bytes", key, len);
        return;
    }
    snprintf(out, len, "%s", json_string_value(v));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "cori-v100-2x8, h100-x1, ..." of dir's *.json, sorted, for the message about an unknown name. */
static void list_names(const char *dir, char *out, size_t len)
{
    char *names[64];
    int n = 0;
    size_t used = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && n < 64 && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[n++] = strndup(e->d_name, l - 5);
    }
    if (d) closedir(d);
    qsort(names, n, sizeof *names, by_name);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (used < len) used += snprintf(out + used, len - used, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
}

static int parse(struct machine *m, const json_t *root, struct ctx *x)
{
    const char *key;
    const json_t *f;
    int rc = 0;
    if (!json_is_object(root)) return fail(x, "not a JSON object");
    const json_t *name = json_object_get(root, "name");
    if (!json_is_string(name) || !*json_string_value(name) ||
        strlen(json_string_value(name)) >= sizeof m->name)
        return fail(x, "\"name\" must be a non-empty string of fewer than %zu bytes",
                    sizeof m->name);
    snprintf(m->name, sizeof m->name, "%s", json_string_value(name));
    json_object_foreach((json_t *)root, key, f)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "description") != 0 &&
            check_figure(x, key, f) != 0)
            return -1;
    }
    count(x, root, "nodes", &m->nodes, &rc);
    count(x, root, "gpus_per_node", &m->gpus_per_node, &rc);
    count(x, root, "cpu_cores", &m->cpu_cores, &rc);
    string(x, root, "gpu_model", m->gpu_model, sizeof m->gpu_model, &rc);
    whole(x, root, "gpu_memory_bytes", 1, 9e18, &m->gpu_memory_bytes, &rc);
    whole(x, root, "ram_bytes", 1, 9e18, &m->ram_bytes, &rc);
    whole(x, root, "ram_available_bytes", 0, 9e18, &m->ram_available_bytes, &rc);
    whole(x, root, "nvme_bytes", 1, 9e18, &m->nvme_bytes, &rc);
    number(x, root, "nvme_read_GBps", 1, &m->nvme_read_GBps, &rc);
    number(x, root, "nvme_write_GBps", 1, &m->nvme_write_GBps, &rc);
    number(x, root, "nvme_mixed_GBps", 0, &m->nvme_mixed_GBps, &rc);
    number(x, root, "cpu_adamw_GBps", 1, &m->cpu_adamw_GBps, &rc);
    number(x, root, "cpu_adamw_core_GBps", 1, &m->cpu_adamw_core_GBps, &rc);
    if (rc) return rc;
    number(x, root, "gpu_hbm_GBps", machine_gpus(m) > 0, &m->gpu_hbm_GBps, &rc);
    int several = machine_gpus(m) > 1;
    number(x, root, "collective_busbw_GBps", several, &m->collective_busbw_GBps, &rc);
    number(x, root, "collective_latency_us", several, &m->collective_latency_us, &rc);
    number(x, root, "network_GBps", m->nodes > 1, &m->network_GBps, &rc);
    if (!m->ram_available_bytes) m->ram_available_bytes = m->ram_bytes;
    return rc;
}

int machine_load(struct machine *m, const char *arg, const char *dir, char *err, size_t errlen)
{
    char path[sizeof m->path];
    size_t len = strlen(arg);
    int is_path = strchr(arg, '/') || (len > 5 && strcmp(arg + len - 5, ".json") == 0);
    struct ctx x = {path, err, errlen};
    memset(m, 0, sizeof *m);
    if (is_path)
        snprintf(path, sizeof path, "%s", arg);
    else
        snprintf(path, sizeof path, "%s/%s.json", dir, arg);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            return fail(&x, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        }
        if (is_path) return fail(&x, "%s", strerror(errno));
        char names[256];
        list_names(dir, names, sizeof names);
        snprintf(err, errlen, "unknown machine %s: no %s (machines: %s; or give a file's path)",
                 arg, path, names[0] ? names : "none");
        return -1;
    }
    int rc = parse(m, root, &x);
    json_decref(root);
    snprintf(m->path, sizeof m->path, "%s", path);
    return rc;
}

int machine_gpus(const struct machine *m)
{
    return m->nodes * m->gpus_per_node;
}

double machine_swap_us(const struct machine *m, double bytes, int write)
{
    double GBps = m->nvme_mixed_GBps > 0 ? m->nvme_mixed_GBps
                  : write                ? m->nvme_write_GBps
                                         : m->nvme_read_GBps;
    return bytes / (GBps * 1e3);
}

double machine_collective_us(const struct machine *m, int world, double bytes)
{
    double busbw = m->collective_busbw_GBps;
    if (world < 2) return m->collective_latency_us;
    if (world > m->gpus_per_node && m->network_GBps < busbw) busbw = m->network_GBps;
    return m->collective_latency_us + (world - 1.0) / world * bytes / (busbw * 1e3);
}

double machine_adamw_us(const struct machine *m, double params, int cores, int busy)
{
    double node_share = m->cpu_adamw_GBps * cores * m->nodes / (busy > cores ? busy : cores);
    double core_cap = m->cpu_adamw_core_GBps * cores;
    return 28.0 * params / ((node_share < core_cap ? node_share : core_cap) * 1e3);
}

double machine_stream_us(const struct machine *m, double bytes, int on_gpu, int cores,
                         int cpu_workers)
{
    if (on_gpu) return bytes / (m->gpu_hbm_GBps * 1e3);
    double share = (double)cores * m->nodes / cpu_workers; /* of one node's rate */
    return bytes / (m->cpu_adamw_GBps * 1e3 * share);
}
