/* swap.c: per-run swap folders and checksummed tensor swap files over the aio engine (see
 * swap.h for the layout and the integrity rules).
 *
 * The data moves through the engine; the header and block table move with plain pwrite from an
 * aligned in-memory copy, under the file's mutex, so that pieces written from several threads
 * never interleave their table updates. Table writes cover whole 4 KiB pages, because the file
 * is opened with O_DIRECT. */
#include "swap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "check.h"
#include "fsdir.h"
#include "align.h"

#define SWAP_DIR_PREFIX "gpt50b-swap-"

/* The on-disk layout has no padding for the compiler to vary. */
_Static_assert(sizeof(struct swap_header) == 296, "swap_header layout");
_Static_assert(sizeof(struct swap_block) == 24, "swap_block layout");
_Static_assert(SWAP_BLOCK_SIZE % AIO_ALIGN == 0, "swap blocks stay O_DIRECT-aligned");

struct swap_dir {
    struct aio_engine *e;
    int lock_fd;           /* holds the flock that marks the folder live */
    pid_t owner;           /* a forked child inherits the registry but must not clean up */
    _Atomic int nfiles;    /* open swap files, checked at close */
    struct swap_dir *next; /* registry of open folders, for the atexit cleanup */
    char path[];
};

struct swap_file {
    struct aio_engine *e;
    struct aio_file *af;
    struct swap_dir *d;          /* NULL when opened by path */
    struct swap_header *hdr;     /* aligned copy of the file's [0, header_bytes) */
    struct swap_block *table;    /* [nblocks], inside hdr's buffer at offset AIO_ALIGN */
    unsigned char *busy;         /* [nblocks] a write of the block is in flight */
    uint64_t padded;             /* round_up(data_bytes, AIO_ALIGN) */
    pthread_mutex_t mu;          /* guards table, busy and the table's pages on disk */
    _Atomic int nio;             /* swap_io not yet waited for */
    _Atomic uint64_t kept_bytes; /* spared by swap_file_keep */
};

struct swap_io {
    struct swap_file *f;
    struct aio_request *req; /* NULL when the io failed before any data moved */
    bool write;
    uint32_t b0, nb; /* blocks [b0, b0 + nb) */
    uint64_t generation;
    const char *buf;
    size_t len;
    uint64_t off;
    int rc;
    char msg[SWAP_ERR_SIZE];
    uint64_t sums[]; /* [nb] checksums of the data written, or expected from the table */
};

/* ---- XXH64 (Yann Collet's xxHash, 64-bit, seed 0; same digests as the reference) ---- */

#define XXH_P1 0x9E3779B185EBCA87ULL
#define XXH_P2 0xC2B2AE3D27D4EB4FULL
#define XXH_P3 0x165667B19E3779F9ULL
#define XXH_P4 0x85EBCA77C2B2AE63ULL
#define XXH_P5 0x27D4EB2F165667C5ULL

static inline uint64_t xxh_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t xxh_read64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    return xxh_rotl(acc + input * XXH_P2, 31) * XXH_P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t v)
{
    return (acc ^ xxh_round(0, v)) * XXH_P1 + XXH_P4;
}

uint64_t swap_checksum(const void *data, size_t n)
{
    const unsigned char *p = data, *end = p + n;
    uint64_t h;
    if (n >= 32) {
        uint64_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = -XXH_P1;
        for (; end - p >= 32; p += 32) {
            v1 = xxh_round(v1, xxh_read64(p));
            v2 = xxh_round(v2, xxh_read64(p + 8));
            v3 = xxh_round(v3, xxh_read64(p + 16));
            v4 = xxh_round(v4, xxh_read64(p + 24));
        }
        h = xxh_rotl(v1, 1) + xxh_rotl(v2, 7) + xxh_rotl(v3, 12) + xxh_rotl(v4, 18);
        h = xxh_merge(xxh_merge(xxh_merge(xxh_merge(h, v1), v2), v3), v4);
    } else {
        h = XXH_P5;
    }
    h += n;
    for (; end - p >= 8; p += 8)
        h = xxh_rotl(h ^ xxh_round(0, xxh_read64(p)), 27) * XXH_P1 + XXH_P4;
    if (end - p >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        h = xxh_rotl(h ^ (uint64_t)v * XXH_P1, 23) * XXH_P2 + XXH_P3;
        p += 4;
    }
    for (; p < end; p++)
        h = xxh_rotl(h ^ *p * XXH_P5, 11) * XXH_P1;
    h ^= h >> 33;
    h *= XXH_P2;
    h ^= h >> 29;
    h *= XXH_P3;
    h ^= h >> 32;
    return h;
}

/* ---- small helpers ---- */

/* pwrite all of buf; 0 or -errno (-EIO when the file takes nothing). */
static int write_full(int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -EIO;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* pread all of buf; 0, -errno, or -ENODATA when the file ends first. */
static int read_full(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -ENODATA;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- folders ---- */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct swap_dir *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* A normal exit removes the folders still open; a kill leaves them to the next run's sweep. */
static void registry_cleanup(void)
{
    pthread_mutex_lock(&registry_mu);
    for (struct swap_dir *d = registry; d; d = d->next)
        if (d->owner == getpid()) fsdir_remove(d->path, NULL, NULL);
    pthread_mutex_unlock(&registry_mu);
}

static void registry_init(void)
{
    atexit(registry_cleanup);
}

/* Whether the folder `path` of run `pid` is dead: its .lock exists and nobody holds its flock,
 * or it has no .lock (a run killed before taking it) and no process `pid` exists. On true, the
 * lock is held through *lock_fd (or -1) until the caller has removed the folder. */
static bool folder_is_stale(const char *path, long pid, int *lock_fd)
{
    char lock[PATH_MAX];
    snprintf(lock, sizeof lock, "%s/.lock", path);
    *lock_fd = open(lock, O_RDWR | O_CLOEXEC);
    if (*lock_fd >= 0) {
        if (flock(*lock_fd, LOCK_EX | LOCK_NB) == 0) return true;
        close(*lock_fd);
        *lock_fd = -1;
        return false;
    }
    return errno == ENOENT && pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void sweep_stale(const char *nvme_path)
{
    DIR *dp = opendir(nvme_path);
    if (!dp) return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        long pid;
        unsigned seq;
        int end = 0;
        if (sscanf(de->d_name, SWAP_DIR_PREFIX "%ld-%u%n", &pid, &seq, &end) != 2 ||
            de->d_name[end] != '\0')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", nvme_path, de->d_name);
        struct stat st;
        int lock_fd;
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || !folder_is_stale(path, pid, &lock_fd))
            continue;
        int nfiles = 0;
        uint64_t nbytes = 0;
        int rc = fsdir_remove(path, &nfiles, &nbytes);
        if (lock_fd >= 0) close(lock_fd);
        if (rc < 0)
            fprintf(stderr, "gpt50b: warning: cannot remove stale swap folder %s: %s\n", path,
                    strerror(-rc));
        else
            fprintf(stderr,
                    "gpt50b: removed stale swap folder %s of run %ld, which is gone (%d files, "
                    "%.2f GB)\n",
                    path, pid, nfiles, (double)nbytes / 1e9);
    }
    closedir(dp);
}

static char claim_path[FSDIR_LIST_MAX][PATH_MAX];
static int claim_fd[FSDIR_LIST_MAX], nclaims;

static void claims_release(void)
{
    for (int i = 0; i < nclaims; i++)
        fsdir_unlock(claim_fd[i], claim_path[i]);
}

int swap_path_claim(const char *nvme_path, char *err, size_t errlen)
{
    long holder = 0;
    char path_buf[PATH_MAX];
    snprintf(path_buf, sizeof path_buf, "%s/gpt50b.lock", nvme_path);
    for (int i = 0; i < nclaims; i++)
        if (strcmp(claim_path[i], path_buf) == 0) return 0; /* this run's already */
    CHECK_MSG(nclaims < FSDIR_LIST_MAX, "swap_path_claim: more than FSDIR_LIST_MAX folders");
    char *path = claim_path[nclaims];
    memcpy(path, path_buf, sizeof path_buf);
    int fd = fsdir_lock(path, &holder);
    if (fd == -EBUSY)
        return fail(fd, err, errlen,
                    "--nvme-path %s: run %ld is using this folder (it holds %s): wait for it to "
                    "end or choose another --nvme-path",
                    nvme_path, holder, path);
    if (fd < 0)
        return fail(fd, err, errlen, "--nvme-path %s: cannot create %s: %s", nvme_path, path,
                    strerror(-fd));
    claim_fd[nclaims] = fd;
    if (nclaims++ == 0) atexit(claims_release);
    return 0;
}

struct swap_dir *swap_dir_open(struct aio_engine *e, const char *nvme_path, char *err,
                               size_t errlen)
{
    static _Atomic unsigned seq;
    struct stat st;
    if (stat(nvme_path, &st) < 0) {
        fail(0, err, errlen, "%s: swap folder not usable: %s; create it or choose another path",
             nvme_path, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fail(0, err, errlen,
             "%s: not a directory; the swap path must be a folder on the NVMe "
             "drive",
             nvme_path);
        return NULL;
    }
    if (access(nvme_path, W_OK | X_OK) < 0) {
        fail(0, err, errlen, "%s: swap folder not writable: %s", nvme_path, strerror(errno));
        return NULL;
    }
    sweep_stale(nvme_path);

    size_t n = strlen(nvme_path) + sizeof SWAP_DIR_PREFIX + 48;
    struct swap_dir *d = calloc(1, sizeof *d + n);
    CHECK(d);
    d->e = e;
    d->owner = getpid();
    for (;;) {
        snprintf(d->path, n, "%s/" SWAP_DIR_PREFIX "%ld-%u", nvme_path, (long)d->owner,
                 atomic_fetch_add(&seq, 1));
        if (mkdir(d->path, 0700) == 0) break;
        if (errno != EEXIST) {
            fail(0, err, errlen, "%s: cannot create the swap folder: %s", d->path, strerror(errno));
            free(d);
            return NULL;
        }
    }
    /* The lock is taken under a temporary name and renamed, so a sweeper never finds a .lock
     * that exists but is not yet held. */
    char tmp[PATH_MAX], lock[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.lock.tmp", d->path);
    snprintf(lock, sizeof lock, "%s/.lock", d->path);
    d->lock_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX) < 0 || rename(tmp, lock) < 0) {
        fail(0, err, errlen, "%s: cannot create the swap folder's lock: %s", d->path,
             strerror(errno));
        if (d->lock_fd >= 0) close(d->lock_fd);
        fsdir_remove(d->path, NULL, NULL);
        free(d);
        return NULL;
    }
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_mu);
    d->next = registry;
    registry = d;
    pthread_mutex_unlock(&registry_mu);
    return d;
}

void swap_dir_close(struct swap_dir *d)
{
    if (!d) return;
    CHECK_MSG(atomic_load(&d->nfiles) == 0, "swap_dir_close with swap files still open");
    pthread_mutex_lock(&registry_mu);
    for (struct swap_dir **p = &registry; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    pthread_mutex_unlock(&registry_mu);
    int rc = fsdir_remove(d->path, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "gpt50b: warning: cannot remove swap folder %s: %s\n", d->path,
                strerror(-rc));
    close(d->lock_fd);
    free(d);
}

const char *swap_dir_path(const struct swap_dir *d)
{
    return d->path;
}

/* ---- files ---- */

static uint32_t header_bytes_for(uint32_t nblocks)
{
    return AIO_ALIGN + (uint32_t)round_up((uint64_t)nblocks * sizeof(struct swap_block), AIO_ALIGN);
}

static uint64_t header_checksum(const struct swap_header *h)
{
    struct swap_header c = *h;
    c.checksum = 0;
    return swap_checksum(&c, sizeof c);
}

static struct swap_file *file_new(struct aio_engine *e, struct aio_file *af,
                                  struct swap_header *hdr)
{
    struct swap_file *f = calloc(1, sizeof *f);
    CHECK(f);
    f->e = e;
    f->af = af;
    f->hdr = hdr;
    f->table = (struct swap_block *)((char *)hdr + AIO_ALIGN);
    f->busy = calloc(hdr->nblocks, 1);
    CHECK(f->busy);
    f->padded = round_up(hdr->data_bytes, AIO_ALIGN);
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

int swap_file_create(struct swap_dir *d, const char *name, uint64_t bytes, struct swap_file **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > SWAP_NAME_MAX || bytes == 0)
        return fail(-EINVAL, err, errlen,
                    "%s: swap file for tensor '%.64s' of %llu bytes: the name must have 1 to %d "
                    "bytes and the tensor at least one byte",
                    d->path, name, (unsigned long long)bytes, SWAP_NAME_MAX);
    uint64_t padded = round_up(bytes, AIO_ALIGN);
    uint64_t nblocks64 = (padded + SWAP_BLOCK_SIZE - 1) / SWAP_BLOCK_SIZE;
    if (nblocks64 > (UINT32_MAX - AIO_ALIGN) / sizeof(struct swap_block))
        return fail(-EINVAL, err, errlen,
                    "%s: tensor %s of %llu bytes is too large for one swap "
                    "file",
                    d->path, name, (unsigned long long)bytes);
    uint32_t nblocks = (uint32_t)nblocks64, hbytes = header_bytes_for(nblocks);

    /* File names keep to a portable set; a leading '.' would hide it and could meet .lock. */
    char fname[SWAP_NAME_MAX + 8];
    for (size_t i = 0; i < nlen; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && i > 0);
        fname[i] = ok ? c : '_';
    }
    memcpy(fname + nlen, ".swp", 5);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", d->path, fname);

    char aerr[AIO_ERR_SIZE];
    struct aio_file *af =
        aio_file_open(d->e, path, O_RDWR | O_CREAT | O_EXCL, 0600, aerr, sizeof aerr);
    if (!af) {
        int rc = -errno;
        if (rc == -EEXIST)
            return fail(rc, err, errlen,
                        "%s: swap file exists: tensor %s has the same file name as another "
                        "tensor; names differ only in characters outside [A-Za-z0-9._-]",
                        path, name);
        return fail(rc, err, errlen, "%s", aerr);
    }
    uint64_t total = hbytes + padded;
    int fd = aio_file_fd(af), rc = 0;
    if (fallocate(fd, 0, 0, (off_t)total) < 0) {
        rc = -errno;
        /* posix_fallocate emulates by writing bytes, which O_DIRECT refuses: use a plain fd. */
        if (rc == -EOPNOTSUPP) {
            int bfd = open(path, O_WRONLY | O_CLOEXEC);
            rc = bfd < 0 ? -errno : -posix_fallocate(bfd, 0, (off_t)total);
            if (bfd >= 0) close(bfd);
        }
    }
    if (rc < 0) {
        struct statvfs sv;
        unsigned long long avail =
            statvfs(d->path, &sv) == 0 ? (unsigned long long)sv.f_bavail * sv.f_frsize : 0;
        fail(rc, err, errlen,
             "%s: cannot preallocate the swap file of tensor %s: %s: needs %llu bytes, %llu "
             "bytes free there%s",
             d->path, name, strerror(-rc), (unsigned long long)total, avail,
             rc == -EFBIG ? " (a file size limit: ulimit -f, or the filesystem's maximum)"
                          : "; free space or choose another NVMe path");
        aio_file_close(af);
        unlink(path);
        return rc;
    }

    struct swap_header *hdr = aio_alloc_aligned(hbytes);
    CHECK(hdr);
    memset(hdr, 0, hbytes);
    memcpy(hdr->magic, SWAP_MAGIC, 8);
    hdr->version = SWAP_VERSION;
    hdr->header_bytes = hbytes;
    hdr->data_bytes = bytes;
    hdr->block_size = SWAP_BLOCK_SIZE;
    hdr->nblocks = nblocks;
    memcpy(hdr->name, name, nlen + 1);
    hdr->checksum = header_checksum(hdr);
    rc = write_full(fd, hdr, hbytes, 0);
    if (rc == 0) rc = aio_file_sync(af);
    if (rc < 0) {
        fail(rc, err, errlen, "%s: cannot write the swap file's header: %s", path, strerror(-rc));
        free(hdr);
        aio_file_close(af);
        unlink(path);
        return rc;
    }
    *out = file_new(d->e, af, hdr);
    (*out)->d = d;
    atomic_fetch_add(&d->nfiles, 1);
    return 0;
}

int swap_file_open(struct aio_engine *e, const char *path, struct swap_file **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    char aerr[AIO_ERR_SIZE];
    struct aio_file *af = aio_file_open(e, path, O_RDWR, 0, aerr, sizeof aerr);
    if (!af) return fail(-errno, err, errlen, "%s", aerr);
    int fd = aio_file_fd(af);
    struct swap_header *hdr = aio_alloc_aligned(AIO_ALIGN);
    CHECK(hdr);
    memset(hdr, 0, AIO_ALIGN);
    /* The size first: an O_DIRECT read past a short file's end would return EINVAL. */
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && st.st_size >= AIO_ALIGN) rc = read_full(fd, hdr, AIO_ALIGN, 0);
    uint64_t padded = round_up(hdr->data_bytes, AIO_ALIGN);
    const char *what = NULL;
    if (rc < 0)
        what = strerror(-rc);
    else if (st.st_size < AIO_ALIGN || memcmp(hdr->magic, SWAP_MAGIC, 8) != 0)
        what = "not a gpt50b swap file";
    else if (hdr->version != SWAP_VERSION)
        what = "swap file of another version; swap files live for one run: delete it";
    else if (hdr->checksum != header_checksum(hdr) || hdr->name[sizeof hdr->name - 1] != '\0')
        what = "header checksum mismatch: the swap file is corrupt";
    else if (hdr->block_size == 0 || hdr->block_size % AIO_ALIGN ||
             hdr->nblocks != (padded + hdr->block_size - 1) / hdr->block_size ||
             hdr->header_bytes != header_bytes_for(hdr->nblocks))
        what = "inconsistent sizes in the header: the swap file is corrupt";
    else if ((uint64_t)st.st_size < hdr->header_bytes + padded)
        what = "truncated swap file";
    if (what) {
        free(hdr);
        aio_file_close(af);
        return fail(rc < 0 ? rc : -EBADMSG, err, errlen, "%s: %s", path, what);
    }
    uint32_t hbytes = hdr->header_bytes;
    struct swap_header *full = aio_alloc_aligned(hbytes);
    CHECK(full);
    rc = read_full(fd, full, hbytes, 0);
    free(hdr);
    if (rc < 0) {
        free(full);
        aio_file_close(af);
        return fail(rc == -ENODATA ? -EBADMSG : rc, err, errlen,
                    "%s: cannot read the block table: %s", path, strerror(-rc));
    }
    struct swap_file *f = file_new(e, af, full);
    for (uint32_t i = 0; i < full->nblocks; i++) {
        const struct swap_block *b = &f->table[i];
        if (b->state > SWAP_BLOCK_VALID) {
            rc = fail(-EBADMSG, err, errlen, "%s: tensor %s: block %u has state %u: corrupt table",
                      path, full->name, i, b->state);
            break;
        }
        if (b->state == SWAP_BLOCK_DIRTY) {
            uint64_t lo = (uint64_t)i * full->block_size;
            rc = fail(-ENODATA, err, errlen,
                      "%s: tensor %s: incomplete write: block %u (bytes %llu..%llu) of generation "
                      "%llu was being written when its writer stopped; the data is not usable",
                      path, full->name, i, (unsigned long long)lo,
                      (unsigned long long)(lo + full->block_size),
                      (unsigned long long)b->generation);
            break;
        }
    }
    if (rc < 0) {
        swap_file_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void swap_file_close(struct swap_file *f)
{
    if (!f) return;
    CHECK_MSG(atomic_load(&f->nio) == 0, "swap_file_close with swap I/O not waited for");
    if (f->d) atomic_fetch_sub(&f->d->nfiles, 1);
    aio_file_close(f->af);
    pthread_mutex_destroy(&f->mu);
    free(f->busy);
    free(f->hdr);
    free(f);
}

const char *swap_file_path(const struct swap_file *f)
{
    return aio_file_path(f->af);
}

const char *swap_file_name(const struct swap_file *f)
{
    return f->hdr->name;
}

uint64_t swap_file_bytes(const struct swap_file *f)
{
    return f->hdr->data_bytes;
}

uint64_t swap_file_padded_bytes(const struct swap_file *f)
{
    return f->padded;
}

/* Writes the table pages holding blocks [b0, b0 + nb) from memory. Caller holds f->mu. */
static int table_store(struct swap_file *f, uint32_t b0, uint32_t nb)
{
    uint64_t lo = AIO_ALIGN + (uint64_t)b0 * sizeof(struct swap_block);
    uint64_t hi = AIO_ALIGN + (uint64_t)(b0 + nb) * sizeof(struct swap_block);
    lo = lo / AIO_ALIGN * AIO_ALIGN;
    hi = round_up(hi, AIO_ALIGN);
    return write_full(aio_file_fd(f->af), (char *)f->hdr + lo, hi - lo, (off_t)lo);
}

__attribute__((format(printf, 3, 4))) static void io_fail(struct swap_io *io, int rc,
                                                          const char *fmt, ...)
{
    if (io->rc) return;
    io->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(io->msg, sizeof io->msg, fmt, ap);
    va_end(ap);
}

/* A new io for [off, off + len); on bad arguments it comes back already failed (-EINVAL). */
static struct swap_io *io_new(struct swap_file *f, const void *buf, uint64_t off, size_t len,
                              bool write, uint64_t generation)
{
    uint32_t bs = f->hdr->block_size;
    bool ok = len > 0 && (uintptr_t)buf % AIO_ALIGN == 0 && off % bs == 0 && off <= f->padded &&
              len <= f->padded - off && (len % bs == 0 || off + len == f->padded) &&
              (!write || generation != SWAP_ANY_GENERATION);
    uint32_t b0 = ok ? (uint32_t)(off / bs) : 0, nb = ok ? (uint32_t)((len + bs - 1) / bs) : 0;
    struct swap_io *io = calloc(1, sizeof *io + nb * sizeof io->sums[0]);
    CHECK(io);
    *io = (struct swap_io){.f = f,
                           .write = write,
                           .b0 = b0,
                           .nb = nb,
                           .generation = generation,
                           .buf = buf,
                           .len = len,
                           .off = off};
    atomic_fetch_add(&f->nio, 1);
    if (!ok)
        io_fail(io, -EINVAL,
                "%s: tensor %s: %s of %zu bytes at offset %llu from %p: the buffer must be "
                "%d-aligned, the offset a multiple of %u, and the length a multiple of it or "
                "reaching the padded end %llu (a write's generation below 2^64-1)",
                swap_file_path(f), f->hdr->name, write ? "write" : "read", len,
                (unsigned long long)off, buf, AIO_ALIGN, bs, (unsigned long long)f->padded);
    return io;
}

struct swap_io *swap_write_submit(struct swap_file *f, const void *buf, uint64_t off, size_t len,
                                  uint64_t generation)
{
    struct swap_io *io = io_new(f, buf, off, len, true, generation);
    if (io->rc) return io;
    pthread_mutex_lock(&f->mu);
    for (uint32_t i = io->b0; i < io->b0 + io->nb; i++)
        if (f->busy[i]) {
            io_fail(io, -EBUSY, "%s: tensor %s: block %u is already being written",
                    swap_file_path(f), f->hdr->name, i);
            pthread_mutex_unlock(&f->mu);
            return io;
        }
    for (uint32_t i = io->b0; i < io->b0 + io->nb; i++) {
        f->busy[i] = 1;
        f->table[i].state = SWAP_BLOCK_DIRTY;
        f->table[i].generation = generation;
    }
    int rc = table_store(f, io->b0, io->nb);
    pthread_mutex_unlock(&f->mu);
    if (rc == 0) rc = aio_file_sync(f->af);
    if (rc < 0) {
        io_fail(io, rc, "%s: tensor %s: cannot mark blocks %u..%u dirty: %s", swap_file_path(f),
                f->hdr->name, io->b0, io->b0 + io->nb - 1, strerror(-rc));
        pthread_mutex_lock(&f->mu);
        memset(f->busy + io->b0, 0, io->nb);
        pthread_mutex_unlock(&f->mu);
        return io;
    }
    io->req = aio_submit_write(f->e, f->af, buf, len, (off_t)(f->hdr->header_bytes + off));
    /* The checksums are computed while the engine writes the same (unchanging) bytes. */
    uint32_t bs = f->hdr->block_size;
    for (uint32_t i = 0; i < io->nb; i++) {
        size_t lo = (size_t)i * bs, n = len - lo < bs ? len - lo : bs;
        io->sums[i] = swap_checksum(io->buf + lo, n);
    }
    return io;
}

/* Checks that blocks [io->b0, io->b0 + io->nb) hold readable data of generation expect (EMPTY
 * and DIRTY: -ENODATA, another generation: -ESTALE, being written: -EBUSY) and copies their
 * checksums into io->sums; the first failure goes into io. Caller holds f->mu. */
static void blocks_check(struct swap_file *f, struct swap_io *io, uint64_t expect)
{
    const char *path = swap_file_path(f), *name = f->hdr->name;
    uint64_t bs = f->hdr->block_size;
    for (uint32_t i = io->b0; i < io->b0 + io->nb && !io->rc; i++) {
        const struct swap_block *b = &f->table[i];
        unsigned long long lo = i * bs, g = b->generation;
        if (f->busy[i])
            io_fail(io, -EBUSY, "%s: tensor %s: block %u is being written", path, name, i);
        else if (b->state == SWAP_BLOCK_EMPTY)
            io_fail(io, -ENODATA, "%s: tensor %s: block %u (bytes %llu..%llu) was never written",
                    path, name, i, lo, lo + bs);
        else if (b->state == SWAP_BLOCK_DIRTY)
            io_fail(io, -ENODATA,
                    "%s: tensor %s: incomplete write: block %u (bytes %llu..%llu) of generation "
                    "%llu was not completely written; the data is not usable",
                    path, name, i, lo, lo + bs, g);
        else if (expect != SWAP_ANY_GENERATION && g != expect)
            io_fail(io, -ESTALE,
                    "%s: tensor %s: stale block %u (bytes %llu..%llu): generation %llu, expected "
                    "%llu",
                    path, name, i, lo, lo + bs, g, (unsigned long long)expect);
        io->sums[i - io->b0] = b->checksum;
    }
}

struct swap_io *swap_read_submit(struct swap_file *f, void *buf, uint64_t off, size_t len,
                                 uint64_t expect_generation)
{
    struct swap_io *io = io_new(f, buf, off, len, false, expect_generation);
    if (io->rc) return io;
    pthread_mutex_lock(&f->mu);
    blocks_check(f, io, expect_generation);
    pthread_mutex_unlock(&f->mu);
    if (!io->rc)
        io->req = aio_submit_read(f->e, f->af, buf, len, (off_t)(f->hdr->header_bytes + off));
    return io;
}

int swap_file_keep(struct swap_file *f, uint64_t off, size_t len, uint64_t from, uint64_t to,
                   char *err, size_t errlen)
{
    /* a write's argument rules (AIO_ALIGN-aligned buffer: none; `to` below ANY) */
    struct swap_io *io = io_new(f, NULL, off, len, true, to);
    if (!io->rc && from == SWAP_ANY_GENERATION)
        io_fail(io, -EINVAL, "%s: tensor %s: keep needs the generation the blocks hold",
                swap_file_path(f), f->hdr->name);
    if (!io->rc) {
        pthread_mutex_lock(&f->mu);
        blocks_check(f, io, from);
        for (uint32_t i = io->b0; i < io->b0 + io->nb && !io->rc; i++)
            f->table[i].generation = to;
        int rc = io->rc ? 0 : table_store(f, io->b0, io->nb);
        pthread_mutex_unlock(&f->mu);
        if (rc < 0)
            io_fail(io, rc, "%s: tensor %s: cannot record blocks %u..%u as generation %llu: %s",
                    swap_file_path(f), f->hdr->name, io->b0, io->b0 + io->nb - 1,
                    (unsigned long long)to, strerror(-rc));
        else if (!io->rc)
            atomic_fetch_add(&f->kept_bytes, len);
    }
    return swap_io_wait(io, err, errlen);
}

uint64_t swap_file_kept_bytes(const struct swap_file *f)
{
    return atomic_load(&f->kept_bytes);
}

static void write_finish(struct swap_io *io)
{
    struct swap_file *f = io->f;
    char aerr[AIO_ERR_SIZE];
    int rc = aio_wait(io->req, aerr, sizeof aerr);
    if (rc < 0) {
        io_fail(io, rc, "tensor %s: %s", f->hdr->name, aerr);
    } else if ((rc = aio_file_sync(f->af)) < 0) {
        io_fail(io, rc, "%s: tensor %s: fdatasync after the write failed: %s", swap_file_path(f),
                f->hdr->name, strerror(-rc));
    }
    /* The VALID record is not synced: if it is lost the blocks read as DIRTY, never as wrong. */
    pthread_mutex_lock(&f->mu);
    for (uint32_t i = 0; i < io->nb; i++) {
        struct swap_block *b = &f->table[io->b0 + i];
        f->busy[io->b0 + i] = 0;
        if (rc == 0) *b = (struct swap_block){io->sums[i], io->generation, SWAP_BLOCK_VALID, 0};
    }
    if (rc == 0 && (rc = table_store(f, io->b0, io->nb)) < 0)
        io_fail(io, rc, "%s: tensor %s: cannot record blocks %u..%u as written: %s",
                swap_file_path(f), f->hdr->name, io->b0, io->b0 + io->nb - 1, strerror(-rc));
    pthread_mutex_unlock(&f->mu);
}

static void read_finish(struct swap_io *io)
{
    struct swap_file *f = io->f;
    char aerr[AIO_ERR_SIZE];
    int rc = aio_wait(io->req, aerr, sizeof aerr);
    if (rc < 0) {
        io_fail(io, rc, "tensor %s: %s", f->hdr->name, aerr);
        return;
    }
    uint64_t bs = f->hdr->block_size;
    for (uint32_t i = 0; i < io->nb; i++) {
        size_t lo = (size_t)i * bs, n = io->len - lo < bs ? io->len - lo : bs;
        uint64_t got = swap_checksum(io->buf + lo, n);
        if (got == io->sums[i]) continue;
        unsigned long long at = io->off + lo;
        io_fail(io, -EBADMSG,
                "%s: tensor %s: checksum mismatch in block %u (bytes %llu..%llu): stored "
                "%016llx, read %016llx; the swap file is corrupt or was changed outside gpt50b",
                swap_file_path(f), f->hdr->name, io->b0 + i, at, at + n,
                (unsigned long long)io->sums[i], (unsigned long long)got);
        return;
    }
}

int swap_io_wait(struct swap_io *io, char *err, size_t errlen)
{
    if (io->req) {
        if (io->write)
            write_finish(io);
        else
            read_finish(io);
    }
    int rc = io->rc;
    if (rc < 0 && err) snprintf(err, errlen, "%s", io->msg);
    atomic_fetch_sub(&io->f->nio, 1);
    free(io);
    return rc;
}

bool swap_io_test(const struct swap_io *io)
{
    return !io->req || aio_test(io->req);
}

int swap_file_write(struct swap_file *f, const void *buf, uint64_t off, size_t len,
                    uint64_t generation, char *err, size_t errlen)
{
    return swap_io_wait(swap_write_submit(f, buf, off, len, generation), err, errlen);
}

int swap_file_read(struct swap_file *f, void *buf, uint64_t off, size_t len,
                   uint64_t expect_generation, char *err, size_t errlen)
{
    return swap_io_wait(swap_read_submit(f, buf, off, len, expect_generation), err, errlen);
}
