/* test_swap.c: per-run swap folders and checksummed swap files (runtime/swap.c).
 *
 * XXH64 against the reference digests; a tensor written in pieces at offsets, two in flight at
 * once, read back whole and in part; pieces rejected for alignment (-EINVAL) or overlap (-EBUSY);
 * blocks never written (-ENODATA) and of another generation (-ESTALE); a byte flipped in the data
 * (-EBADMSG naming the block) and in the header; a failed write leaving its blocks refused as an
 * incomplete write until rewritten; blocks kept (retagged without a write, a skipped step's
 * swap-out) and a lost keep read as stale; a child SIGKILLed between the DIRTY mark and its clear,
 * whose file then opens as an "incomplete write"; stale folders of dead runs removed at the next
 * swap_dir_open while a live run's folder stays; preallocation past RLIMIT_FSIZE reported with
 * the folder, the bytes needed and free, and no file left; the folder removed at close and at a
 * normal exit; the buffered fallback on /dev/shm. Everything happens under a fresh directory in
 * $TMPDIR (or /tmp), removed at the end. */
#include "swap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test_expect.h"

/* One checksum block: the unit of every offset and size below, so that each case keeps its
 * block structure (which block is stale, flipped or dirty) whatever SWAP_BLOCK_SIZE is. */
#define BLK SWAP_BLOCK_SIZE
/* The engine moves a block in four requests, so a piece of n blocks is 4n I/Os and the write
 * error injected after one I/O (test_failed_write) fires inside the piece it is meant for, after
 * part of it went out. */
#define ENGINE_REQUEST (BLK / 4)
_Static_assert(ENGINE_REQUEST % AIO_ALIGN == 0, "engine requests must be O_DIRECT-aligned");

static char base[256]; /* the test's directory: the "NVMe path" of every swap folder */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Entries of a folder other than . and .. */
static int count_entries(const char *path)
{
    DIR *dp = opendir(path);
    struct dirent *de;
    int n = 0;
    while (dp && (de = readdir(dp)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (dp) closedir(dp);
    return n;
}

static struct aio_engine *engine(void)
{
    char err[AIO_ERR_SIZE];
    struct aio_config c = {
        .block_size = ENGINE_REQUEST, .queue_depth = 8, .threads = 2, .overlap_events = true};
    struct aio_engine *e = aio_engine_create(&c, err, sizeof err);
    if (!e) {
        fprintf(stderr, "aio_engine_create: %s\n", err);
        exit(1);
    }
    return e;
}

static struct swap_dir *open_dir(struct aio_engine *e, const char *path)
{
    char err[SWAP_ERR_SIZE];
    struct swap_dir *d = swap_dir_open(e, path, err, sizeof err);
    if (!d) {
        fprintf(stderr, "swap_dir_open: %s\n", err);
        exit(1);
    }
    return d;
}

static struct swap_file *create(struct swap_dir *d, const char *name, uint64_t bytes)
{
    char err[SWAP_ERR_SIZE];
    struct swap_file *f;
    if (swap_file_create(d, name, bytes, &f, err, sizeof err) < 0) {
        fprintf(stderr, "swap_file_create: %s\n", err);
        exit(1);
    }
    return f;
}

/* Fills buf[0, n) with pattern `seed` and writes it at offset off of f as generation gen. */
static void write_pattern(struct swap_file *f, unsigned char *buf, uint64_t off, size_t n,
                          uint64_t gen, uint64_t seed, const char *what)
{
    char err[SWAP_ERR_SIZE] = "";
    test_fill_pattern(buf, n, seed);
    int rc = swap_file_write(f, buf, off, n, gen, err, sizeof err);
    EXPECT(rc == 0, "%s: %d %s", what, rc, err);
}

/* Reads n bytes at offset off of f as of generation gen into buf, poisoned first so that bytes
 * the read left alone show, and expects pattern `seed` there. */
static void expect_read_pattern(struct swap_file *f, unsigned char *buf, uint64_t off, size_t n,
                                uint64_t gen, uint64_t seed, const char *what)
{
    char err[SWAP_ERR_SIZE] = "";
    memset(buf, 0xEE, n);
    int rc = swap_file_read(f, buf, off, n, gen, err, sizeof err);
    EXPECT(rc == 0, "%s: read: %d %s", what, rc, err);
    expect_pattern(buf, n, seed, what);
}

/* Reads the fixed header of a swap file with plain stdio, as a tool outside gpt50b would. */
static struct swap_header read_header(const char *path)
{
    struct swap_header h = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp || fread(&h, sizeof h, 1, fp) != 1) {
        perror(path);
        exit(1);
    }
    fclose(fp);
    return h;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    if (fd < 0 || pread(fd, &c, 1, at) != 1) {
        perror(path);
        exit(1);
    }
    c ^= 0x40;
    if (pwrite(fd, &c, 1, at) != 1 || close(fd) != 0) {
        perror(path);
        exit(1);
    }
}

/* Runs fn with stderr sent to a file; returns the file's content (static storage). */
static const char *capture_stderr(void (*fn)(void *), void *arg)
{
    static char text[8192];
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.txt", base);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_RDWR | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(log);
    return text;
}

static void test_checksum(void)
{
    struct {
        const char *s;
        uint64_t h;
    } v[] = {{"", 0xEF46DB3751D8E999ULL},
             {"a", 0xD24EC4F1A98C6E5BULL},
             {"abc", 0x44BC2CF5AD770999ULL},
             {"Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1ULL}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t got = swap_checksum(v[i].s, strlen(v[i].s));
        EXPECT(got == v[i].h, "XXH64(\"%s\") = %016llx, reference %016llx", v[i].s,
               (unsigned long long)got, (unsigned long long)v[i].h);
    }
}

static void test_round_trip(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct swap_dir *d = open_dir(e, base);
    const uint64_t bytes = 5 * BLK + 12345;
    struct swap_file *f = create(d, "layers.3/adam m", bytes);
    uint64_t padded = swap_file_padded_bytes(f);
    EXPECT(padded == (bytes + 4095) / 4096 * 4096 && swap_file_bytes(f) == bytes,
           "padded %llu for %llu bytes", (unsigned long long)padded, (unsigned long long)bytes);
    EXPECT(strstr(swap_file_path(f), "layers.3_adam_m.swp") &&
               !strcmp(swap_file_name(f), "layers.3/adam m"),
           "file name %s, tensor %s", swap_file_path(f), swap_file_name(f));
    unsigned char *w = aio_alloc_aligned(padded), *r = aio_alloc_aligned(padded);
    test_fill_pattern(w, padded, 1);

    int rc = swap_file_read(f, r, 0, BLK, SWAP_ANY_GENERATION, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "never written") && strstr(err, "block 0"),
           "read before any write: %d '%s'", rc, err);

    /* Two pieces in flight at once; the second reaches the padded end. */
    struct swap_io *a = swap_write_submit(f, w, 0, 2 * BLK, 1);
    struct swap_io *b = swap_write_submit(f, w + 2 * BLK, 2 * BLK, padded - 2 * BLK, 1);
    struct swap_io *c = swap_write_submit(f, w + BLK, BLK, BLK, 1);
    rc = swap_io_wait(c, err, sizeof err);
    EXPECT(rc == -EBUSY && strstr(err, "block 1"), "overlapping write in flight: %d '%s'", rc, err);
    rc = swap_io_wait(b, err, sizeof err);
    EXPECT(rc == 0, "write of the tail piece: %d %s", rc, err);
    while (!swap_io_test(a))
        usleep(100);
    rc = swap_io_wait(a, err, sizeof err);
    EXPECT(rc == 0, "write of the head piece: %d %s", rc, err);

    expect_read_pattern(f, r, 0, padded, 1, 1, "whole tensor");
    memset(r, 0xEE, padded);
    rc = swap_file_read(f, r, 3 * BLK, 2 * BLK, SWAP_ANY_GENERATION, err, sizeof err);
    EXPECT(rc == 0, "read of a middle piece: %d %s", rc, err);
    unsigned char *ref = malloc(padded);
    test_fill_pattern(ref, padded, 1);
    EXPECT(!memcmp(r, ref + 3 * BLK, 2 * BLK), "middle piece differs");
    free(ref);

    struct {
        size_t shift;
        uint64_t off;
        size_t len;
    } bad[] = {{0, 4096, BLK}, {0, 0, 3 * 4096}, {8, 0, BLK}, {0, 4 * BLK, 2 * BLK}, {0, 0, 0}};
    char multiple[64];
    snprintf(multiple, sizeof multiple, "multiple of %u", BLK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = swap_file_write(f, w + bad[i].shift, bad[i].off, bad[i].len, 2, err, sizeof err);
        EXPECT(rc == -EINVAL && strstr(err, multiple), "bad write %zu: %d '%s'", i, rc, err);
        rc = swap_file_read(f, r + bad[i].shift, bad[i].off, bad[i].len, 1, err, sizeof err);
        EXPECT(rc == -EINVAL, "bad read %zu: %d", i, rc);
    }
    EXPECT(swap_file_write(f, w, 0, BLK, SWAP_ANY_GENERATION, err, sizeof err) == -EINVAL,
           "a write tagged with SWAP_ANY_GENERATION accepted");

    /* Iteration 2 rewrites block 2 only: reading the tensor as of iteration 1 finds it stale. */
    write_pattern(f, w + 2 * BLK, 2 * BLK, BLK, 2, 2, "rewrite of block 2");
    rc = swap_file_read(f, r, 0, padded, 1, err, sizeof err);
    EXPECT(rc == -ESTALE && strstr(err, "stale block 2") && strstr(err, "generation 2"),
           "stale read: %d '%s'", rc, err);
    expect_read_pattern(f, r, 2 * BLK, BLK, 2, 2, "block 2 as of iteration 2");

    /* The same state comes back through swap_file_open. */
    char path[512];
    snprintf(path, sizeof path, "%s", swap_file_path(f));
    swap_file_close(f);
    rc = swap_file_open(e, path, &f, err, sizeof err);
    EXPECT(rc == 0, "reopen: %d %s", rc, err);
    if (rc == 0) {
        expect_read_pattern(f, r, 0, 2 * BLK, 1, 1, "after reopen");
        EXPECT(swap_file_bytes(f) == bytes && !strcmp(swap_file_name(f), "layers.3/adam m"),
               "reopened header: %llu bytes, name %s", (unsigned long long)swap_file_bytes(f),
               swap_file_name(f));
        swap_file_close(f);
    }

    rc = swap_file_create(d, "layers.3_adam_m", BLK, &f, err, sizeof err);
    EXPECT(rc == -EEXIST && strstr(err, "same file name"), "name collision: %d '%s'", rc, err);
    char longname[SWAP_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    rc = swap_file_create(d, longname, BLK, &f, err, sizeof err);
    EXPECT(rc == -EINVAL, "a name of %d bytes: %d", SWAP_NAME_MAX + 1, rc);
    free(w);
    free(r);
    char folder[512];
    snprintf(folder, sizeof folder, "%s", swap_dir_path(d));
    EXPECT(exists(folder), "%s missing while open", folder);
    swap_dir_close(d);
    EXPECT(!exists(folder), "%s still there after swap_dir_close", folder);
}

static void test_corruption(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct swap_dir *d = open_dir(e, base);
    struct swap_file *f = create(d, "fp32.master.wte", 6 * BLK);
    unsigned char *buf = aio_alloc_aligned(6 * BLK);
    write_pattern(f, buf, 0, 6 * BLK, 7, 3, "write");
    char path[512];
    snprintf(path, sizeof path, "%s", swap_file_path(f));
    swap_file_close(f);

    struct swap_header h = read_header(path);
    EXPECT(!memcmp(h.magic, SWAP_MAGIC, 8) && h.version == SWAP_VERSION && h.nblocks == 6 &&
               h.block_size == BLK && h.header_bytes % 4096 == 0 && h.data_bytes == 6 * BLK,
           "header: version %u, %u blocks of %u bytes, data at %u", h.version, h.nblocks,
           h.block_size, h.header_bytes);
    flip_byte(path, (off_t)h.header_bytes + 3 * BLK + 100);
    int rc = swap_file_open(e, path, &f, err, sizeof err);
    EXPECT(rc == 0, "open after a data byte flipped: %d %s", rc, err);
    if (rc == 0) {
        rc = swap_file_read(f, buf, 0, 6 * BLK, 7, err, sizeof err);
        EXPECT(rc == -EBADMSG && strstr(err, "block 3") && strstr(err, "fp32.master.wte") &&
                   strstr(err, path) && strstr(err, "checksum mismatch"),
               "flipped data byte: %d '%s'", rc, err);
        rc = swap_file_read(f, buf, 0, 3 * BLK, 7, err, sizeof err);
        EXPECT(rc == 0, "blocks before the flipped one: %d %s", rc, err);
        swap_file_close(f);
    }

    flip_byte(path, (off_t)offsetof(struct swap_header, name) + 2);
    rc = swap_file_open(e, path, &f, err, sizeof err);
    EXPECT(rc == -EBADMSG && strstr(err, "header checksum"), "flipped header byte: %d '%s'", rc,
           err);
    char other[512];
    snprintf(other, sizeof other, "%s/other.swp", swap_dir_path(d));
    FILE *fp = fopen(other, "wb");
    for (int i = 0; fp && i < 3000; i++)
        fputs("not a swap file ", fp);
    if (fp) fclose(fp);
    rc = swap_file_open(e, other, &f, err, sizeof err);
    EXPECT(rc == -EBADMSG && strstr(err, "not a gpt50b swap file"), "foreign file: %d '%s'", rc,
           err);
    free(buf);
    swap_dir_close(d);
}

/* A write that fails leaves its blocks DIRTY: refused until rewritten, here and after reopen. */
static void test_failed_write(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct swap_dir *d = open_dir(e, base);
    struct swap_file *f = create(d, "adam.v", 4 * BLK);
    unsigned char *buf = aio_alloc_aligned(4 * BLK);
    write_pattern(f, buf, 0, 4 * BLK, 1, 4, "first write");
    aio_engine_set_fault(e, AIO_FAULT_EIO_WRITE, 1);
    int rc = swap_file_write(f, buf, BLK, 2 * BLK, 2, err, sizeof err);
    EXPECT(rc == -EIO && strstr(err, "adam.v"), "injected write error: %d '%s'", rc, err);
    rc = swap_file_read(f, buf, 0, 4 * BLK, SWAP_ANY_GENERATION, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "incomplete write") && strstr(err, "block 1"),
           "read after a failed write: %d '%s'", rc, err);
    rc = swap_file_read(f, buf, 3 * BLK, BLK, 1, err, sizeof err);
    EXPECT(rc == 0, "a block the failed write did not touch: %d %s", rc, err);

    char path[512];
    snprintf(path, sizeof path, "%s", swap_file_path(f));
    struct swap_file *g;
    rc = swap_file_open(e, path, &g, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "incomplete write") && strstr(err, "block 1"),
           "open after a failed write: %d '%s'", rc, err);
    write_pattern(f, buf, 0, 4 * BLK, 3, 5, "rewrite");
    expect_read_pattern(f, buf, 0, 4 * BLK, 3, 5, "after the rewrite");
    free(buf);
    swap_file_close(f);
    swap_dir_close(d);
}

/* swap_file_keep, the swap-out of a skipped step: blocks retagged without a write, counted;
 * refused on blocks of another generation, never written or left dirty; the retag survives a
 * reopen; and when it is lost (the table page put back as it was, as if the run were killed
 * before it reached the disk), the blocks read as stale, not as the new generation. */
static void test_keep(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct swap_dir *d = open_dir(e, base);
    struct swap_file *f = create(d, "adam.keep", 4 * BLK);
    unsigned char *buf = aio_alloc_aligned(4 * BLK);
    write_pattern(f, buf, 0, 3 * BLK, 1, 9, "write of generation 1");
    uint64_t written = aio_engine_stats(e).bytes_written;
    int rc = swap_file_keep(f, 0, 2 * BLK, 1, 2, err, sizeof err);
    EXPECT(rc == 0, "keep 1 -> 2: %d %s", rc, err);
    EXPECT(aio_engine_stats(e).bytes_written == written, "keep moved data: %llu bytes",
           (unsigned long long)(aio_engine_stats(e).bytes_written - written));
    EXPECT(swap_file_kept_bytes(f) == 2 * BLK, "kept %llu bytes",
           (unsigned long long)swap_file_kept_bytes(f));
    expect_read_pattern(f, buf, 0, 2 * BLK, 2, 9, "kept blocks as generation 2");
    rc = swap_file_read(f, buf, 0, BLK, 1, err, sizeof err);
    EXPECT(rc == -ESTALE, "kept block read as generation 1: %d '%s'", rc, err);
    rc = swap_file_keep(f, 0, BLK, 1, 3, err, sizeof err);
    EXPECT(rc == -ESTALE && strstr(err, "stale block 0"), "keep from the wrong generation: %d '%s'",
           rc, err);
    rc = swap_file_keep(f, 2 * BLK, 2 * BLK, 1, 2, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "block 3") && strstr(err, "never written"),
           "keep of a block never written: %d '%s'", rc, err);
    rc = swap_file_read(f, buf, 2 * BLK, BLK, 1, err, sizeof err);
    EXPECT(rc == 0, "a refused keep changed block 2: %d %s", rc, err);
    rc = swap_file_keep(f, 100, BLK, 1, 2, err, sizeof err);
    EXPECT(rc == -EINVAL, "keep at a misaligned offset: %d", rc);
    aio_engine_set_fault(e, AIO_FAULT_EIO_WRITE, 0);
    rc = swap_file_write(f, buf, 2 * BLK, BLK, 2, err, sizeof err);
    EXPECT(rc == -EIO, "injected write error: %d '%s'", rc, err);
    rc = swap_file_keep(f, 2 * BLK, BLK, 1, 2, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "incomplete write"), "keep of a dirty block: %d '%s'", rc,
           err);
    write_pattern(f, buf, 2 * BLK, 2 * BLK, 2, 10, "rewrite of blocks 2-3");
    EXPECT(swap_file_kept_bytes(f) == 2 * BLK, "refused keeps counted: %llu",
           (unsigned long long)swap_file_kept_bytes(f));

    /* The table page as it is now (blocks 0-1 at generation 2), then a keep 2 -> 3 whose record
     * is lost: the old page goes back, as if the run died before the page reached the disk. */
    char path[512];
    snprintf(path, sizeof path, "%s", swap_file_path(f));
    int fd = open(path, O_RDWR);
    static unsigned char page[AIO_ALIGN];
    EXPECT(fd >= 0 && pread(fd, page, AIO_ALIGN, AIO_ALIGN) == AIO_ALIGN, "table page: %s",
           strerror(errno));
    rc = swap_file_keep(f, 0, 4 * BLK, 2, 3, err, sizeof err);
    EXPECT(rc == 0, "keep 2 -> 3: %d %s", rc, err);
    swap_file_close(f);
    struct swap_file *g;
    rc = swap_file_open(e, path, &g, err, sizeof err);
    EXPECT(rc == 0, "reopen after keeps: %d %s", rc, err);
    if (rc == 0) {
        expect_read_pattern(g, buf, 0, 2 * BLK, 3, 9, "kept record on disk");
        swap_file_close(g);
    }
    EXPECT(pwrite(fd, page, AIO_ALIGN, AIO_ALIGN) == AIO_ALIGN, "put the old page back");
    close(fd);
    rc = swap_file_open(e, path, &g, err, sizeof err);
    EXPECT(rc == 0, "reopen after a lost keep: %d %s", rc, err);
    if (rc == 0) {
        rc = swap_file_read(g, buf, 0, 4 * BLK, 3, err, sizeof err);
        EXPECT(rc == -ESTALE && strstr(err, "generation 2, expected 3"),
               "read after a lost keep: %d '%s'", rc, err);
        expect_read_pattern(g, buf, 0, 2 * BLK, 2, 9, "the data under a lost keep");
        swap_file_close(g);
    }
    free(buf);
    swap_dir_close(d);
}

/* Reads exactly n bytes from a pipe; false at its end. */
static bool read_pipe(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k <= 0) return false;
        got += (size_t)k;
    }
    return true;
}

struct child_paths {
    char folder[512], file[512];
};

/* The child: its own engine (threads do not survive fork), a folder, a tensor written once;
 * sends the paths, then, by `how`: starts a second write and is SIGKILLed before waiting for it
 * (0), exits normally with the folder open (1), or waits for the parent to close the pipe (2). */
static void child_main(int how, int out_fd, int in_fd)
{
    struct aio_engine *e = engine();
    struct swap_dir *d = open_dir(e, base);
    struct swap_file *f = create(d, "kill.me", 8 * BLK);
    unsigned char *buf = aio_alloc_aligned(8 * BLK);
    test_fill_pattern(buf, 8 * BLK, 6);
    char err[SWAP_ERR_SIZE];
    if (swap_file_write(f, buf, 0, 8 * BLK, 1, err, sizeof err) < 0) _exit(3);
    struct child_paths p;
    snprintf(p.folder, sizeof p.folder, "%s", swap_dir_path(d));
    snprintf(p.file, sizeof p.file, "%s", swap_file_path(f));
    if (write(out_fd, &p, sizeof p) != (ssize_t)sizeof p) _exit(3);
    if (how == 0) {
        swap_write_submit(f, buf, 2 * BLK, 4 * BLK, 2);
        raise(SIGKILL);
    }
    if (how == 1) exit(0);
    char c;
    while (read(in_fd, &c, 1) > 0)
        ;
    _exit(0);
}

/* Forks a child running child_main(how); returns its pid and paths, *to_child the pipe that
 * keeps a `how` 2 child alive until closed. */
static pid_t spawn(int how, struct child_paths *p, int *to_child)
{
    int up[2], down[2];
    if (pipe(up) < 0 || pipe(down) < 0) exit(1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_main(how, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    if (!read_pipe(up[0], p, sizeof *p)) {
        fprintf(stderr, "FAIL: child %d (mode %d) sent no paths\n", (int)pid, how);
        exit(1);
    }
    close(up[0]);
    *to_child = down[1];
    return pid;
}

static void open_and_close_dir(void *arg)
{
    swap_dir_close(open_dir(arg, base));
}

static void test_kill_and_stale(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct child_paths killed, exited, live;
    int to_child, status;

    /* A live run first: the later children's own sweeps must leave its folder alone too. */
    pid_t alive = spawn(2, &live, &to_child);

    /* A normal exit removes the folder (atexit). */
    int ignored;
    pid_t pid = spawn(1, &exited, &ignored);
    close(ignored);
    waitpid(pid, &status, 0);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    EXPECT(!exists(exited.folder), "%s survived its run's exit()", exited.folder);

    /* SIGKILL between the DIRTY mark and its clear. */
    pid = spawn(0, &killed, &ignored);
    close(ignored);
    waitpid(pid, &status, 0);
    EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    struct swap_file *f;
    int rc = swap_file_open(e, killed.file, &f, err, sizeof err);
    EXPECT(rc == -ENODATA && strstr(err, "incomplete write") && strstr(err, "kill.me") &&
               strstr(err, "block 2") && strstr(err, "generation 2"),
           "file of a run killed mid swap-out: %d '%s'", rc, err);
    if (rc == 0) swap_file_close(f);

    /* A dead run without a .lock, a folder of another name, a live pid's folder. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, &status, 0);
    char nolock[512], other[512], mine[512], junk[600];
    snprintf(nolock, sizeof nolock, "%s/gpt50b-swap-%d-0", base, (int)dead);
    snprintf(other, sizeof other, "%s/gpt50b-swap-notes", base);
    snprintf(mine, sizeof mine, "%s/gpt50b-swap-%d-999999", base, (int)getpid());
    mkdir(nolock, 0700);
    mkdir(other, 0700);
    mkdir(mine, 0700);
    snprintf(junk, sizeof junk, "%s/x.swp", nolock);
    int fd = open(junk, O_WRONLY | O_CREAT, 0600);
    EXPECT(fd >= 0, "%s: %s", junk, strerror(errno));
    close(fd);

    const char *log = capture_stderr(open_and_close_dir, e);
    EXPECT(!exists(killed.folder) && strstr(log, killed.folder),
           "folder of the killed run %s not removed or not reported: '%s'", killed.folder, log);
    EXPECT(!exists(nolock) && strstr(log, nolock), "%s not removed or not reported", nolock);
    EXPECT(exists(live.folder) && !strstr(log, live.folder), "live run's folder %s removed",
           live.folder);
    EXPECT(exists(other) && exists(mine), "a folder that is not a dead run's was removed");
    int lines = 0;
    for (const char *p = log; (p = strchr(p, '\n')); p++)
        lines++;
    EXPECT(lines == 2 && strstr(log, "removed stale swap folder"),
           "expected one line per removed folder (2): '%s'", log);

    close(to_child);
    waitpid(alive, &status, 0);
    log = capture_stderr(open_and_close_dir, e);
    EXPECT(!exists(live.folder) && strstr(log, live.folder),
           "folder of the run that ended %s not removed: '%s'", live.folder, log);
    rmdir(other);
    rmdir(mine);
}

static void test_prealloc_failure(struct aio_engine *e)
{
    char err[SWAP_ERR_SIZE] = "";
    struct swap_dir *d = open_dir(e, base);
    struct rlimit saved, small;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    small = (struct rlimit){.rlim_cur = BLK, .rlim_max = saved.rlim_max};
    EXPECT(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit: %s", strerror(errno));
    struct swap_file *f = NULL;
    int rc = swap_file_create(d, "too.big", 8 * BLK, &f, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &saved);
    /* A header page, one table page (8 blocks of 24 bytes) and the data. */
    char needs[64];
    snprintf(needs, sizeof needs, "needs %llu bytes,", 2 * 4096 + 8ull * BLK);
    EXPECT(rc == -EFBIG && !f && strstr(err, swap_dir_path(d)) && strstr(err, needs) &&
               strstr(err, "bytes free") && strstr(err, "too.big"),
           "preallocation past the limit: %d '%s'", rc, err);
    EXPECT(count_entries(swap_dir_path(d)) == 1, "%d entries left in %s (only .lock expected)",
           count_entries(swap_dir_path(d)), swap_dir_path(d));

    char file[512];
    snprintf(file, sizeof file, "%s/plain", base);
    close(open(file, O_WRONLY | O_CREAT, 0600));
    EXPECT(!swap_dir_open(e, file, err, sizeof err) && strstr(err, "not a directory"),
           "a plain file as swap path: '%s'", err);
    unlink(file);
    snprintf(file, sizeof file, "%s/missing", base);
    EXPECT(!swap_dir_open(e, file, err, sizeof err) && strstr(err, "missing") &&
               strstr(err, "No such file"),
           "a missing swap path: '%s'", err);
    swap_dir_close(d);
}

/* On /dev/shm with O_DIRECT refused (injected: tmpfs takes it since Linux 6.6) the swap files
 * work through the buffered fallback. */
static void test_fallback(void)
{
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode) || access("/dev/shm", W_OK) != 0) {
        fprintf(stderr, "note: no writable /dev/shm, fallback part skipped\n");
        return;
    }
    char shm[64];
    test_dir_make(shm, sizeof shm, "/dev/shm", "test_swap");
    struct aio_engine *e = engine();
    aio_engine_set_fault(e, AIO_FAULT_NO_DIRECT, 0);
    struct swap_dir *d = open_dir(e, shm);
    struct swap_file *f = create(d, "fallback", 3 * BLK);
    unsigned char *buf = aio_alloc_aligned(3 * BLK);
    write_pattern(f, buf, 0, 3 * BLK, 1, 8, "buffered write");
    expect_read_pattern(f, buf, 0, 3 * BLK, 1, 8, "buffered read");
    free(buf);
    swap_file_close(f);
    swap_dir_close(d);
    aio_engine_destroy(e);
    EXPECT(rmdir(shm) == 0, "%s not empty after swap_dir_close", shm);
}

int main(void)
{
    test_dir_make(base, sizeof base, NULL, "test_swap");
    test_checksum();
    struct aio_engine *e = engine();
    test_kill_and_stale(e);
    test_round_trip(e);
    test_corruption(e);
    test_failed_write(e);
    test_keep(e);
    test_prealloc_failure(e);
    aio_engine_destroy(e);
    test_fallback();
    EXPECT(count_entries(base) == 0, "%d entries left in %s", count_entries(base), base);
    test_dir_remove(base);
    return test_finish("test_swap");
}
