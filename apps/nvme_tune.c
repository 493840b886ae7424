/* nvme_tune: measures the drive under a folder with the DeepNVMe engine and names the best
 * DeepSpeed "aio" settings for it.
 *
 *     nvme_tune --path DIR [--size 1G] [--block-sizes 256K,1M,4M] [--queue-depths 8,16,32,64]
 *               [--threads 1,2] [--streams 1] [--out nvme_tune.json]
 *
 * For every block size x queue depth x thread count it writes --size bytes to one file in DIR
 * and reads them back, with O_DIRECT so that the page cache neither absorbs the writes nor
 * serves the reads. A write is timed up to its fdatasync, so the drive's cache cannot flatter it.
 * Every 4 KiB page carries a stamp of the configuration that wrote it, checked after each read,
 * so a configuration that loses data is reported, not ranked. The best configuration is the one
 * that moves --size bytes out and back in the least time, the optimizer step's pattern (reads
 * and writes of equal volume, not overlapped). Then, at the best configuration, the mixed run:
 * the file written whole, then a write of its first half and a read of its second half queued on
 * one engine at once, as the swap-out of one tensor and the swap-in of the next are: "mixed"
 * GB/s counts the bytes of both over the time to the later's end (the simulation's
 * nvme_mixed_GBps). --streams K,...: the mixed run again with K writes and K reads (the file cut
 * in 2K pieces) queued at once, as when several swap tasks are in flight; "mixed_streams" in the
 * JSON, the first K's rate as "mixed_gbs". The default sweep (24 runs of 1 GiB each way) takes
 * under a minute at 1 GB/s; the file is removed at the end, and on SIGINT or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "check.h"
#include "timer.h"

#define MAX_LIST 16

static const char usage[] =
    "usage: nvme_tune --path DIR [--size 1G] [--block-sizes 256K,1M,4M] "
    "[--queue-depths 8,16,32,64] [--threads 1,2] [--streams 1] [--out nvme_tune.json]\n"
    "Sweeps DeepSpeed's aio block_size x queue_depth x thread_count on a file in DIR (O_DIRECT),\n"
    "prints write and read GB/s (1e9 bytes/s), the best settings as DeepSpeed \"aio\" JSON, and\n"
    "writes all results to the --out file. Then, at the best settings, K writes and K reads\n"
    "queued at once for each K of --streams (\"mixed\" GB/s). Sizes take K, M, G (powers of\n"
    "1024).\n";

struct result {
    size_t block_size;
    int queue_depth, threads;
    double write_gbs, read_gbs;
    bool ok;
};

/* The test file, and the --out file until it is complete: removed at exit and on SIGINT or
 * SIGTERM (unlink is async-signal-safe). */
static char tmp_path[PATH_MAX];
static const char *partial_out;

static void remove_tmp(void)
{
    if (tmp_path[0]) unlink(tmp_path);
    if (partial_out) unlink(partial_out);
}

static void on_signal(int sig)
{
    remove_tmp();
    _exit(128 + sig);
}

/* "1G", "256K", "4096": bytes, or 0 when s is not a size. */
static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return 0;
    int shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10;
    if (*end == 'M' || *end == 'm') shift = 20;
    if (*end == 'G' || *end == 'g') shift = 30;
    if (shift) end++;
    if (*end || v > (ULLONG_MAX >> shift)) return 0;
    return (size_t)(v << shift);
}

/* Parses a comma-separated list of sizes (is_size) or integers into out[]; returns the count.
 * Each value must lie in [lo, hi] and, for sizes, be a multiple of AIO_ALIGN. */
static int parse_list(const char *flag, const char *s, bool is_size, size_t lo, size_t hi,
                      size_t *out)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        size_t v = is_size ? parse_size(tok) : (size_t)strtoul(tok, &end, 10);
        bool ok = is_size ? v % AIO_ALIGN == 0 : *tok != '-' && *end == '\0';
        if (n == MAX_LIST || !ok || v < lo || v > hi)
            user_fail("%s %s: expected up to %d comma-separated %s from %zu to %zu%s", flag, s,
                      MAX_LIST, is_size ? "sizes" : "integers", lo, hi,
                      is_size ? ", multiples of 4K" : "");
        out[n++] = v;
    }
    if (n == 0) user_fail("%s: empty list", flag);
    return n;
}

/* Stamps every 4 KiB page of buf with (run, its page number in the file, buf holding the file's
 * pages from `first` on); returns the number of pages that lack it. */
static size_t stamp(uint64_t *buf, size_t size, uint64_t run, size_t first, bool check)
{
    size_t bad = 0, per_page = AIO_ALIGN / sizeof *buf;
    for (size_t p = 0; p < size / AIO_ALIGN; p++) {
        uint64_t want = run << 40 | (first + p);
        if (check)
            bad += buf[p * per_page] != want;
        else
            buf[p * per_page] = want;
    }
    return bad;
}

static struct result measure(const char *dir, const char *path, void *buf, size_t size,
                             size_t block_size, int queue_depth, int threads, uint64_t run)
{
    struct result r = {block_size, queue_depth, threads, 0, 0, false};
    char err[AIO_ERR_SIZE];
    struct aio_config cfg = {block_size, queue_depth, threads, false, true};
    struct aio_engine *e = aio_engine_create(&cfg, err, sizeof err);
    if (!e) user_fail("%s", err);
    struct aio_file *f = aio_file_open(e, path, O_RDWR, 0, err, sizeof err);
    if (!f) user_fail("%s", err);
    if (!aio_file_is_direct(f))
        user_fail("%s: the filesystem refuses O_DIRECT, so the page cache would be measured; "
                  "choose a folder on the NVMe drive",
                  dir);
    stamp(buf, size, run, 0, false);
    double write_s = aio_timed_write(e, f, buf, size, err, sizeof err);
    if (write_s < 0) user_fail("%s", err);
    stamp(buf, size, UINT32_MAX, 0, false);
    double read_s = aio_timed_read(e, f, buf, size, err, sizeof err);
    if (read_s < 0) user_fail("%s", err);
    size_t bad = stamp(buf, size, run, 0, true);
    if (bad)
        fprintf(stderr,
                "nvme_tune: block %zu, queue depth %d, threads %d: %zu of %zu pages "
                "read back wrong; this configuration is not ranked\n",
                block_size, queue_depth, threads, bad, size / AIO_ALIGN);
    r.write_gbs = (double)size / write_s / 1e9;
    r.read_gbs = (double)size / read_s / 1e9;
    r.ok = bad == 0;
    aio_file_close(f);
    aio_engine_destroy(e);
    return r;
}

/* The mixed run at one configuration (the header's) with `streams` writes and as many reads in
 * flight: the file written whole, then pieces 0..streams-1 of 2 x streams written and the others
 * read, all queued at once. GB/s of the reads and writes together, or 0 when a piece read back
 * lacks the stamps written before it. */
static double measure_mixed(const char *path, void *buf, size_t size, const struct result *best,
                            uint64_t run, int streams)
{
    char err[AIO_ERR_SIZE];
    struct aio_config cfg = {best->block_size, best->queue_depth, best->threads, false, true};
    struct aio_engine *e = aio_engine_create(&cfg, err, sizeof err);
    if (!e) user_fail("%s", err);
    struct aio_file *f = aio_file_open(e, path, O_RDWR, 0, err, sizeof err);
    if (!f) user_fail("%s", err);
    size_t piece = size / (2 * (size_t)streams) / AIO_ALIGN * AIO_ALIGN,
           half = piece * (size_t)streams;
    char *lo = buf, *hi = (char *)buf + half;
    stamp(buf, size, run, 0, false);
    if (aio_pwrite(e, f, buf, size, 0, err, sizeof err) < 0 || aio_file_sync(f) < 0)
        user_fail("%s", err);
    stamp((uint64_t *)lo, half, run + 1, 0, false);
    stamp((uint64_t *)hi, half, UINT32_MAX, 0, false);
    struct aio_request *w[MAX_LIST], *r[MAX_LIST];
    double t0 = timer_now_s();
    for (int k = 0; k < streams; k++) {
        w[k] = aio_submit_write(e, f, lo + k * piece, piece, (off_t)(k * piece));
        r[k] = aio_submit_read(e, f, hi + k * piece, piece, (off_t)(half + k * piece));
    }
    int rc = 0;
    for (int k = 0; k < streams; k++)
        rc |= aio_wait(w[k], err, sizeof err) < 0;
    rc |= aio_file_sync(f) < 0;
    for (int k = 0; k < streams; k++)
        rc |= aio_wait(r[k], err, sizeof err) < 0;
    if (rc) user_fail("%s", err);
    double t1 = timer_now_s();
    size_t bad = stamp((uint64_t *)hi, half, run, half / AIO_ALIGN, true);
    aio_file_close(f);
    aio_engine_destroy(e);
    if (bad) {
        fprintf(stderr, "nvme_tune: mixed run of %d stream(s): %zu of %zu pages read back wrong\n",
                streams, bad, half / AIO_ALIGN);
        return 0;
    }
    return 2.0 * (double)half / (t1 - t0) / 1e9;
}

/* s as a JSON string literal. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static const char *size_str(size_t v, char *buf, size_t n)
{
    if (v % (1u << 20) == 0)
        snprintf(buf, n, "%zuM", v >> 20);
    else
        snprintf(buf, n, "%zuK", v >> 10);
    return buf;
}

int main(int argc, char **argv)
{
    check_set_program("nvme_tune");
    const char *dir = NULL, *out_path = "nvme_tune.json";
    size_t size = 1u << 30, bs[MAX_LIST] = {256 << 10, 1 << 20, 4 << 20},
           qd[MAX_LIST] = {8, 16, 32, 64}, th[MAX_LIST] = {1, 2}, st[MAX_LIST] = {1};
    int nbs = 3, nqd = 4, nth = 2, nst = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        bool known = !strcmp(a, "--path") || !strcmp(a, "--size") || !strcmp(a, "--out") ||
                     !strcmp(a, "--block-sizes") || !strcmp(a, "--queue-depths") ||
                     !strcmp(a, "--threads") || !strcmp(a, "--streams");
        if (!known)
            user_fail("unknown argument %s; usage: nvme_tune --path DIR [--size 1G] "
                      "[--block-sizes ...] [--queue-depths ...] [--threads ...] [--streams ...] "
                      "[--out FILE]",
                      a);
        if (!v) user_fail("%s needs a value; see nvme_tune --help", a);
        i++;
        if (!strcmp(a, "--path")) {
            dir = v;
        } else if (!strcmp(a, "--out")) {
            out_path = v;
        } else if (!strcmp(a, "--size")) {
            size = parse_size(v);
            if (!size || size % AIO_ALIGN)
                user_fail("--size %s: expected a size such as 1G or 256M, a multiple of 4K", v);
        } else if (!strcmp(a, "--block-sizes")) {
            nbs = parse_list(a, v, true, AIO_ALIGN, 1u << 30, bs);
        } else if (!strcmp(a, "--queue-depths")) {
            nqd = parse_list(a, v, false, 1, 1024, qd);
        } else if (!strcmp(a, "--streams")) {
            nst = parse_list(a, v, false, 1, MAX_LIST, st);
        } else {
            nth = parse_list(a, v, false, 1, 64, th);
        }
    }
    if (!dir) user_fail("--path DIR is required: a folder on the drive to measure");
    for (int k = 0; k < nst; k++)
        if (size / (2 * st[k]) < AIO_ALIGN)
            user_fail("--streams %zu: --size %zu holds no 4 KiB piece per stream; use a larger "
                      "--size",
                      st[k], size);
    atexit(remove_tmp);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *out = fopen(out_path, "w"); /* before minutes of measuring */
    if (!out) user_fail("--out %s: cannot write: %s", out_path, strerror(errno));
    partial_out = out_path;

    snprintf(tmp_path, sizeof tmp_path, "%s/nvme_tune-%ld.tmp", dir, (long)getpid());
    int fd = open(tmp_path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        tmp_path[0] = '\0';
        user_fail("--path %s: cannot create a test file there: %s", dir, strerror(errno));
    }
    if (fallocate(fd, 0, 0, (off_t)size) < 0 && errno != EOPNOTSUPP) {
        int saved = errno;
        struct statvfs sv;
        unsigned long long avail = statvfs(dir, &sv) == 0 ? sv.f_bavail * sv.f_frsize : 0;
        user_fail(
            "--path %s: cannot allocate %zu bytes: %s (%llu bytes free); use a smaller --size", dir,
            size, strerror(saved), avail);
    }
    close(fd);
    void *buf = aio_alloc_aligned(size);
    if (!buf) user_fail("--size %zu: out of host memory; use a smaller --size", size);
    /* Incompressible data, written now so that the pages are faulted in before any timing. */
    uint64_t x = 0x9E3779B97F4A7C15ULL, *words = buf;
    for (size_t i = 0; i < size / sizeof *words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        words[i] = x;
    }

    printf("nvme_tune: %s, %.2f GB each way, O_DIRECT, writes timed to fdatasync\n", dir,
           (double)size / 1e9);
    printf("| block | queue depth | threads | write GB/s | read GB/s |\n|---|---|---|---|---|\n");
    fflush(stdout);
    struct result res[MAX_LIST * MAX_LIST * MAX_LIST];
    int nres = 0, best = -1;
    for (int t = 0; t < nth; t++)
        for (int b = 0; b < nbs; b++)
            for (int q = 0; q < nqd; q++) {
                struct result r = measure(dir, tmp_path, buf, size, bs[b], (int)qd[q], (int)th[t],
                                          (uint64_t)nres + 1);
                char s[32];
                printf("| %s | %d | %d | %.2f | %.2f |%s\n", size_str(r.block_size, s, sizeof s),
                       r.queue_depth, r.threads, r.write_gbs, r.read_gbs, r.ok ? "" : " BAD DATA");
                fflush(stdout);
                /* least time to write and read the same bytes: 1/w + 1/r */
                if (r.ok && (best < 0 || 1 / r.write_gbs + 1 / r.read_gbs <
                                             1 / res[best].write_gbs + 1 / res[best].read_gbs))
                    best = nres;
                res[nres++] = r;
            }
    if (best < 0) user_fail("%s: no configuration read its data back intact; check the drive", dir);
    struct result *r = &res[best];
    double mixed[MAX_LIST];
    for (int k = 0; k < nst; k++)
        mixed[k] = measure_mixed(tmp_path, buf, size, r, (uint64_t)(nres + 1 + 2 * k), (int)st[k]);
    free(buf);
    char aio_json[256];
    snprintf(aio_json, sizeof aio_json,
             "{\"block_size\": %zu, \"queue_depth\": %d, \"thread_count\": %d, "
             "\"single_submit\": false, \"overlap_events\": true}",
             r->block_size, r->queue_depth, r->threads);
    printf("best: block %zu, queue depth %d, threads %d: write %.2f GB/s, read %.2f GB/s\n",
           r->block_size, r->queue_depth, r->threads, r->write_gbs, r->read_gbs);
    for (int k = 0; k < nst; k++)
        printf("mixed: %zu write(s) and %zu read(s), %.2f GB each way, queued at once: %.2f GB/s "
               "together%s\n",
               st[k], st[k], (double)(size / 2) / 1e9, mixed[k], mixed[k] > 0 ? "" : " (BAD DATA)");
    printf("DeepSpeed config (newer versions spell thread_count intra_op_parallelism):\n"
           "  \"aio\": %s\n",
           aio_json);

    fputs("{\"bench\": \"nvme_tune\", \"path\": ", out);
    json_string(out, dir);
    fprintf(out, ", \"size_bytes\": %zu, \"results\": [", size);
    for (int i = 0; i < nres; i++)
        fprintf(out,
                "%s{\"block_size\": %zu, \"queue_depth\": %d, \"threads\": %d, "
                "\"write_gbs\": %.3f, \"read_gbs\": %.3f, \"data_ok\": %s}",
                i ? ", " : "", res[i].block_size, res[i].queue_depth, res[i].threads,
                res[i].write_gbs, res[i].read_gbs, res[i].ok ? "true" : "false");
    fprintf(out, "], \"best\": {\"write_gbs\": %.3f, \"read_gbs\": %.3f, \"mixed_gbs\": %.3f, ",
            r->write_gbs, r->read_gbs, mixed[0]);
    fputs("\"mixed_streams\": [", out);
    for (int k = 0; k < nst; k++)
        fprintf(out, "%s{\"streams\": %zu, \"gbs\": %.3f}", k ? ", " : "", st[k], mixed[k]);
    fprintf(out, "]}, \"aio\": %s}\n", aio_json);
    if (fclose(out) != 0) user_fail("--out %s: write failed: %s", out_path, strerror(errno));
    partial_out = NULL;
    printf("results written to %s\n", out_path);
    return 0;
}
