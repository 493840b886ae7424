/* test_aio.c: the DeepNVMe engine (runtime/aio.c).
 *
 * Round trips of several sizes (one block, many blocks, a 4 KiB-aligned length that is not a
 * multiple of the block size, 64 MiB) under several block sizes, queue depths and thread counts,
 * many requests in flight at once; misaligned arguments and bad configurations rejected; short
 * writes and reads (fault injection) completed by retries, and an I/O error and a read past the
 * end of the file reported as -EIO; a file-size limit (RLIMIT_FSIZE with SIGXFSZ ignored, the
 * stand-in for a full disk) reported as -EFBIG; the buffered fallback where O_DIRECT is refused,
 * with exactly one warning per engine, on /dev/shm (tmpfs) when it exists. Files live in a fresh
 * directory under $TMPDIR (or /tmp), removed at the end. */
#include "aio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test_expect.h"

/* Whether the test directory's filesystem takes O_DIRECT (a disk does; tmpfs before Linux 6.6
 * does not, and then only the buffered backend can be tested there). */
static bool tmp_direct;

#define MiB (1u << 20)

static const char *path_in(const char *dir, const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static struct aio_engine *engine(size_t bs, int qd, int threads, bool single, bool overlap)
{
    char err[AIO_ERR_SIZE];
    struct aio_config c = {bs, qd, threads, single, overlap};
    struct aio_engine *e = aio_engine_create(&c, err, sizeof err);
    if (!e) {
        fprintf(stderr, "aio_engine_create: %s\n", err);
        exit(1);
    }
    return e;
}

static struct aio_file *open_file(struct aio_engine *e, const char *path)
{
    char err[AIO_ERR_SIZE];
    struct aio_file *f = aio_file_open(e, path, O_RDWR | O_CREAT | O_TRUNC, 0600, err, sizeof err);
    if (!f) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return f;
}

/* Writes len bytes at off (polling aio_test for the write), reads them back, compares. */
static void round_trip(struct aio_engine *e, struct aio_file *f, size_t len, off_t off,
                       uint64_t seed)
{
    char err[AIO_ERR_SIZE] = "", what[128];
    struct aio_config c = aio_engine_config(e);
    snprintf(what, sizeof what, "%zu bytes at %lld, block %zu qd %d threads %d", len,
             (long long)off, c.block_size, c.queue_depth, c.threads);
    unsigned char *w = aio_alloc_aligned(len), *r = aio_alloc_aligned(len);
    test_fill_pattern(w, len, seed);
    memset(r, 0xEE, len);
    struct aio_request *req = aio_submit_write(e, f, w, len, off);
    while (!aio_test(req))
        usleep(100);
    int rc = aio_wait(req, err, sizeof err);
    EXPECT(rc == 0, "%s: write: %d %s", what, rc, err);
    rc = aio_pread(e, f, r, len, off, err, sizeof err);
    EXPECT(rc == 0, "%s: read: %d %s", what, rc, err);
    expect_pattern(r, len, seed, what);
    free(w);
    free(r);
}

static void test_round_trips(const char *dir)
{
    struct {
        size_t bs;
        int qd, threads;
        bool single, overlap;
    } cfgs[] = {
        {MiB, 32, 2, false, true},
        {64 << 10, 4, 3, true, false},
        {AIO_ALIGN, 1, 1, false, true},
        {256 << 10, 64, 4, false, false},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        struct aio_engine *e =
            engine(cfgs[i].bs, cfgs[i].qd, cfgs[i].threads, cfgs[i].single, cfgs[i].overlap);
        struct aio_file *f = open_file(e, path_in(dir, "a.bin"));
        EXPECT(aio_file_is_direct(f) == tmp_direct, "%s: O_DIRECT %d, the probe found %d",
               aio_file_path(f), aio_file_is_direct(f), tmp_direct);
        size_t bs = cfgs[i].bs;
        round_trip(e, f, bs, 0, 1);
        round_trip(e, f, 7 * bs, 3 * AIO_ALIGN, 2);
        round_trip(e, f, 5 * bs + 3 * AIO_ALIGN, bs, 3);
        round_trip(e, f, bs == AIO_ALIGN ? 4 * MiB : 64 * MiB, 0, 4);
        char err[AIO_ERR_SIZE];
        EXPECT(aio_pwrite(e, f, NULL, 0, 0, err, sizeof err) == 0, "zero-length write");
        struct aio_stats st = aio_engine_stats(e);
        EXPECT(st.retries == 0 && st.bytes_written == st.bytes_read && st.bytes_read > 0,
               "stats: %llu retries, %llu written, %llu read", (unsigned long long)st.retries,
               (unsigned long long)st.bytes_written, (unsigned long long)st.bytes_read);
        aio_file_close(f);
        aio_engine_destroy(e);
    }

    /* Eight requests in flight at once on two files, then all waited for. */
    struct aio_engine *e = engine(128 << 10, 8, 3, false, true);
    struct aio_file *fs[2] = {open_file(e, path_in(dir, "b.bin")),
                              open_file(e, path_in(dir, "c.bin"))};
    enum { NREQ = 8, LEN = 3 * MiB + 5 * AIO_ALIGN };
    unsigned char *bufs[NREQ];
    struct aio_request *reqs[NREQ];
    char err[AIO_ERR_SIZE] = "";
    for (int i = 0; i < NREQ; i++) {
        bufs[i] = aio_alloc_aligned(LEN);
        test_fill_pattern(bufs[i], LEN, 100 + (uint64_t)i);
        reqs[i] = aio_submit_write(e, fs[i % 2], bufs[i], LEN, (off_t)(i / 2) * LEN);
    }
    for (int i = 0; i < NREQ; i++) {
        int rc = aio_wait(reqs[i], err, sizeof err);
        EXPECT(rc == 0, "concurrent write %d: %d %s", i, rc, err);
    }
    for (int i = 0; i < NREQ; i++) {
        memset(bufs[i], 0, LEN);
        reqs[i] = aio_submit_read(e, fs[i % 2], bufs[i], LEN, (off_t)(i / 2) * LEN);
    }
    for (int i = NREQ - 1; i >= 0; i--) {
        int rc = aio_wait(reqs[i], err, sizeof err);
        EXPECT(rc == 0, "concurrent read %d: %d %s", i, rc, err);
        expect_pattern(bufs[i], LEN, 100 + (uint64_t)i, "concurrent requests");
        free(bufs[i]);
    }
    aio_file_close(fs[0]);
    aio_file_close(fs[1]);
    aio_engine_destroy(e);
}

static void test_bad_arguments(const char *dir)
{
    char err[AIO_ERR_SIZE] = "";
    struct aio_config bad = {.block_size = 1000};
    EXPECT(!aio_engine_create(&bad, err, sizeof err) && strstr(err, "block_size 1000"),
           "block size 1000 accepted or unclear message: %s", err);
    bad = (struct aio_config){.queue_depth = 5000};
    EXPECT(!aio_engine_create(&bad, err, sizeof err) && strstr(err, "queue_depth 5000"),
           "queue depth 5000 accepted or unclear message: %s", err);
    struct aio_engine *e = aio_engine_create(NULL, err, sizeof err);
    EXPECT(e, "default engine: %s", err);
    if (!e) return;
    struct aio_config c = aio_engine_config(e);
    EXPECT(c.block_size == MiB && c.queue_depth == 32 && c.threads == 2 && !c.single_submit &&
               c.overlap_events,
           "defaults %zu %d %d %d %d", c.block_size, c.queue_depth, c.threads, c.single_submit,
           c.overlap_events);
    struct aio_file *f = open_file(e, path_in(dir, "a.bin"));
    unsigned char *buf = aio_alloc_aligned(2 * MiB);
    struct {
        size_t shift, len;
        off_t off;
    } cases[] = {{1, MiB, 0}, {0, MiB - 512, 0}, {0, MiB, 512}, {0, MiB, -AIO_ALIGN}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc =
            aio_pwrite(e, f, buf + cases[i].shift, cases[i].len, cases[i].off, err, sizeof err);
        EXPECT(rc == -EINVAL && strstr(err, "multiples of 4096"),
               "misaligned write %zu: rc %d, message '%s'", i, rc, err);
        rc = aio_pread(e, f, buf + cases[i].shift, cases[i].len, cases[i].off, err, sizeof err);
        EXPECT(rc == -EINVAL, "misaligned read %zu: rc %d", i, rc);
    }
    err[0] = '\0';
    EXPECT(!aio_file_open(e, path_in(dir, "missing/x.bin"), O_RDONLY, 0, err, sizeof err) &&
               errno == ENOENT && strstr(err, "missing/x.bin"),
           "open of a missing file: errno %d, '%s'", errno, err);
    free(buf);
    aio_file_close(f);
    aio_engine_destroy(e);
}

/* Short transfers, injected, must be completed; I/O errors and a read past the end reported. */
static void test_short_io(const char *dir, bool direct)
{
    char err[AIO_ERR_SIZE] = "";
    const char *kind = direct ? "O_DIRECT" : "buffered";
    struct aio_engine *e = engine(256 << 10, 4, 2, false, true);
    if (!direct) aio_engine_set_fault(e, AIO_FAULT_NO_DIRECT, 0);
    fflush(stderr);
    struct aio_file *f = open_file(e, path_in(dir, direct ? "a.bin" : "buf.bin"));
    EXPECT(aio_file_is_direct(f) == direct, "%s file: direct %d", kind, aio_file_is_direct(f));
    size_t len = 4 * MiB;
    unsigned char *w = aio_alloc_aligned(len), *r = aio_alloc_aligned(len);
    test_fill_pattern(w, len, 7);

    aio_engine_set_fault(e, AIO_FAULT_SHORT_WRITE, 5);
    int rc = aio_pwrite(e, f, w, len, 0, err, sizeof err);
    EXPECT(rc == 0, "%s short write not completed: %d %s", kind, rc, err);
    EXPECT(aio_engine_stats(e).retries == 1, "%s short write: %llu retries, expected 1", kind,
           (unsigned long long)aio_engine_stats(e).retries);
    memset(r, 0xEE, len);
    rc = aio_pread(e, f, r, len, 0, err, sizeof err);
    EXPECT(rc == 0, "%s read after short write: %d %s", kind, rc, err);
    expect_pattern(r, len, 7, "after a short write");

    aio_engine_set_fault(e, AIO_FAULT_SHORT_READ, 3);
    memset(r, 0xEE, len);
    rc = aio_pread(e, f, r, len, 0, err, sizeof err);
    EXPECT(rc == 0, "%s short read not completed: %d %s", kind, rc, err);
    EXPECT(aio_engine_stats(e).retries == 2, "%s short read: %llu retries, expected 2", kind,
           (unsigned long long)aio_engine_stats(e).retries);
    expect_pattern(r, len, 7, "after a short read");

    aio_engine_set_fault(e, AIO_FAULT_EIO_WRITE, 2);
    rc = aio_pwrite(e, f, w, len, 0, err, sizeof err);
    EXPECT(rc == -EIO && strstr(err, "Input/output error") && strstr(err, aio_file_path(f)),
           "%s injected write error: %d '%s'", kind, rc, err);
    aio_engine_set_fault(e, AIO_FAULT_EIO_READ, 0);
    rc = aio_pread(e, f, r, len, 0, err, sizeof err);
    EXPECT(rc == -EIO && strstr(err, "read of"), "%s injected read error: %d '%s'", kind, rc, err);

    /* A read past the end of the 4 MiB file stops making progress. */
    rc = aio_pread(e, f, r, len, 2 * MiB + 8 * AIO_ALIGN, err, sizeof err);
    EXPECT(rc == -EIO && strstr(err, "no progress"), "%s read past the end: %d '%s'", kind, rc,
           err);
    free(w);
    free(r);
    aio_file_close(f);
    aio_engine_destroy(e);
}

/* RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk fails with ENOSPC. */
static void test_file_size_limit(const char *dir, bool direct)
{
    char err[AIO_ERR_SIZE] = "";
    struct aio_engine *e = engine(MiB, 8, 2, false, true);
    if (!direct) aio_engine_set_fault(e, AIO_FAULT_NO_DIRECT, 0);
    struct aio_file *f = open_file(e, path_in(dir, "limit.bin"));
    size_t len = 4 * MiB;
    unsigned char *w = aio_alloc_aligned(len);
    test_fill_pattern(w, len, 9);
    struct rlimit saved, small;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    small = (struct rlimit){.rlim_cur = 2 * MiB + 2 * AIO_ALIGN, .rlim_max = saved.rlim_max};
    EXPECT(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit: %s", strerror(errno));
    int rc = aio_pwrite(e, f, w, len, 0, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &saved);
    EXPECT(rc == -EFBIG && strstr(err, "File too large") && strstr(err, "limit.bin"),
           "%s write past the file size limit: %d '%s'", direct ? "O_DIRECT" : "buffered", rc, err);
    free(w);
    aio_file_close(f);
    aio_engine_destroy(e);
}

/* Counts the lines of path that contain needle, and all its lines. */
static int count_lines(const char *path, const char *needle, int *total)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    int n = 0;
    *total = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        ++*total;
        n += strstr(line, needle) != NULL;
    }
    if (fp) fclose(fp);
    return n;
}

/* Where O_DIRECT is refused the engine falls back to buffered I/O with one warning per engine.
 * tmpfs refuses it before Linux 6.6; newer kernels accept it, so the refusal is also injected. */
static void test_fallback(const char *tmp_dir)
{
    struct stat st;
    bool shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0;
    char dir[256];
    if (shm) {
        test_dir_make(dir, sizeof dir, "/dev/shm", "test_aio");
    } else {
        fprintf(stderr, "note: no writable /dev/shm, the fallback is tested under %s\n", tmp_dir);
        snprintf(dir, sizeof dir, "%s", tmp_dir);
    }
    const char *needle = "O_DIRECT not supported by this filesystem";
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.txt", tmp_dir);

    for (int forced = 0; forced <= 1; forced++) {
        struct aio_engine *e = engine(256 << 10, 8, 2, false, true);
        if (forced) aio_engine_set_fault(e, AIO_FAULT_NO_DIRECT, 0);
        fflush(stderr);
        int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        close(fd);
        struct aio_file *a = open_file(e, path_in(dir, "shm.bin"));
        struct aio_file *b = open_file(e, path_in(dir, "shm2.bin"));
        bool direct = aio_file_is_direct(a);
        round_trip(e, a, 3 * MiB + AIO_ALIGN, 0, 11);
        round_trip(e, b, MiB, 2 * AIO_ALIGN, 12);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        int total, warnings = count_lines(log, needle, &total);
        EXPECT(aio_file_is_direct(b) == direct, "two files of one folder differ in O_DIRECT");
        if (forced || !direct) {
            EXPECT(!direct, "the injected refusal of O_DIRECT was ignored");
            EXPECT(warnings == 1 && total == 1,
                   "%s fallback: %d warning lines of %d lines, expected exactly one",
                   forced ? "injected" : "tmpfs", warnings, total);
        } else {
            EXPECT(warnings == 0, "%d fallback warnings for files opened with O_DIRECT", warnings);
            fprintf(stderr, "note: %s accepts O_DIRECT on this kernel; the refusal is injected\n",
                    dir);
        }
        aio_file_close(a);
        aio_file_close(b);
        aio_engine_destroy(e);
    }
    unlink(log);
    if (shm) test_dir_remove(dir);
}

int main(void)
{
    char dir[256];
    test_dir_make(dir, sizeof dir, NULL, "test_aio");
    struct aio_engine *e = engine(MiB, 1, 1, false, true);
    fflush(stderr);
    struct aio_file *probe = open_file(e, path_in(dir, "a.bin"));
    tmp_direct = aio_file_is_direct(probe);
    aio_file_close(probe);
    aio_engine_destroy(e);
    if (!tmp_direct)
        fprintf(stderr,
                "note: %s refuses O_DIRECT, so the libaio backend is not tested; set "
                "TMPDIR to a folder on a disk\n",
                dir);
    test_round_trips(dir);
    test_bad_arguments(dir);
    if (tmp_direct) test_short_io(dir, true);
    test_short_io(dir, false);
    if (tmp_direct) test_file_size_limit(dir, true);
    test_file_size_limit(dir, false);
    test_fallback(dir);
    test_dir_remove(dir);
    return test_finish("test_aio");
}
