/* aio.c: the DeepNVMe engine (see aio.h): a queue of slices, worker threads, and two small static
 * backends behind one interface, as redis' ae.c over epoll and select.
 *
 * A request is cut into at most `threads` slices of whole blocks, pushed on one shared FIFO.
 * Each worker pops a slice and runs it through the backend of its file: libaio for O_DIRECT
 * files (queue_depth pieces in flight on the worker's own io_context), plain pread/pwrite for
 * files that fell back to buffered I/O (the page cache already absorbs writes, so a queue buys
 * nothing there). A slice that ends decrements its request; the last one wakes the waiters. */
#include "aio.h"

#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "timer.h"

/* A piece whose transfers make no progress this many times in a row ends as -EIO. */
#define AIO_MAX_STALLS 3

struct aio_file {
    int fd;
    bool direct;
    char path[];
};

struct aio_slice {
    struct aio_request *req;
    char *buf;
    size_t len;
    off_t off;
    struct aio_slice *next;
};

struct aio_request {
    struct aio_engine *e;
    struct aio_file *f;
    bool write;
    _Atomic int remaining; /* slices not finished; changed under e->mu for done_cv */
    _Atomic int rc;        /* first error (negative errno) or 0; first writer also writes msg */
    char msg[AIO_ERR_SIZE];
    int nslices;
    struct aio_slice slices[];
};

/* One libaio piece: a block of a slice, possibly the remainder of a short transfer. */
struct aio_piece {
    struct iocb cb;
    char *buf;
    size_t len;
    off_t off;
    int stalls;
};

struct aio_worker {
    struct aio_engine *e;
    pthread_t tid;
    io_context_t ctx;
    struct aio_piece *pieces; /* [queue_depth] */
    struct iocb **pending;    /* [queue_depth] pieces prepared, not yet accepted by io_submit */
    struct aio_piece **free;  /* [queue_depth] */
    struct io_event *events;  /* [queue_depth] */
};

struct aio_engine {
    struct aio_config cfg;
    struct aio_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct aio_slice *head, *tail; /* slices not yet taken by a worker */
    bool stopping;
    atomic_bool warned_direct;
    _Atomic int fault_kind;
    _Atomic long fault_countdown;
    _Atomic uint64_t bytes_read, bytes_written, retries;
    struct numa_io_choice place;
};

/* Records the first error of a request; later ones are dropped, so the message names the
 * cause rather than the cascade. */
__attribute__((format(printf, 3, 4))) static void req_fail(struct aio_request *r, int errnum,
                                                           const char *fmt, ...)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&r->rc, &expected, -errnum)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

static bool req_failed(struct aio_request *r)
{
    return atomic_load_explicit(&r->rc, memory_order_relaxed) != 0;
}

/* Whether the armed test fault is `kind` and this is the I/O it hits. One atomic load when none
 * is armed. */
static bool fault_fires(struct aio_engine *e, enum aio_fault kind)
{
    if (atomic_load_explicit(&e->fault_kind, memory_order_relaxed) != (int)kind) return false;
    if (atomic_fetch_sub(&e->fault_countdown, 1) != 0) return false;
    atomic_store(&e->fault_kind, AIO_FAULT_NONE);
    return true;
}

/* Bytes to hand the kernel for a piece of len: half of it when a short-transfer fault fires, so
 * that the kernel really transfers less and only a correct retry restores the data. */
static size_t fault_len(struct aio_engine *e, bool write, size_t len)
{
    if (len < 2 * AIO_ALIGN ||
        !fault_fires(e, write ? AIO_FAULT_SHORT_WRITE : AIO_FAULT_SHORT_READ))
        return len;
    return (len / 2) & ~(size_t)(AIO_ALIGN - 1);
}

/* A completion's result, or -EIO when an I/O-error fault fires. */
static long fault_res(struct aio_engine *e, bool write, long res)
{
    return fault_fires(e, write ? AIO_FAULT_EIO_WRITE : AIO_FAULT_EIO_READ) ? -EIO : res;
}

static const char *dir_name(bool write)
{
    return write ? "write" : "read";
}

/* Accounts for a transfer of `res` bytes of piece (buf, len, off). Returns the bytes to drop
 * from the front of the piece (0 with *stalls bumped when there was no progress), or -1 after
 * recording the request's error. `aligned` keeps a direct file's retry on AIO_ALIGN. */
static long piece_progress(struct aio_request *r, long res, size_t len, off_t off, int *stalls,
                           bool aligned)
{
    const char *what = dir_name(r->write);
    if (res < 0) {
        req_fail(r, (int)-res, "%s: %s of %zu bytes at offset %lld failed: %s", r->f->path, what,
                 len, (long long)off, strerror((int)-res));
        return -1;
    }
    size_t done = (size_t)res;
    if (done > len) {
        req_fail(r, EIO, "%s: %s at offset %lld reported %zu bytes for a request of %zu",
                 r->f->path, what, (long long)off, done, len);
        return -1;
    }
    if (aligned) done &= ~(size_t)(AIO_ALIGN - 1);
    atomic_fetch_add_explicit(r->write ? &r->e->bytes_written : &r->e->bytes_read, done,
                              memory_order_relaxed);
    if (done < len) atomic_fetch_add_explicit(&r->e->retries, 1, memory_order_relaxed);
    if (done > 0) {
        *stalls = 0;
        return (long)done;
    }
    if (++*stalls >= AIO_MAX_STALLS) {
        req_fail(r, EIO,
                 "%s: short %s at offset %lld: %ld of %zu bytes, no progress after %d tries%s",
                 r->f->path, what, (long long)off, res, len, AIO_MAX_STALLS,
                 r->write ? "" : " (is the file shorter than the request?)");
        return -1;
    }
    return 0;
}

/* ---- backend: libaio, for O_DIRECT files ---- */

static void libaio_prep(struct aio_piece *p, struct aio_request *r)
{
    size_t n = fault_len(r->e, r->write, p->len);
    if (r->write)
        io_prep_pwrite(&p->cb, r->f->fd, p->buf, n, p->off);
    else
        io_prep_pread(&p->cb, r->f->fd, p->buf, n, p->off);
    p->cb.data = p;
}

/* Submits w->pending[0..*npending); keeps what the kernel did not take at the front. Returns
 * the number taken (now in flight); a refusal is recorded as the request's error. */
static int libaio_submit(struct aio_worker *w, struct aio_request *r, int *npending, int inflight)
{
    int taken = 0;
    while (taken < *npending) {
        int want = w->e->cfg.single_submit ? 1 : *npending - taken;
        int n = io_submit(w->ctx, want, w->pending + taken);
        if (n == -EINTR) continue;
        if (n == -EAGAIN && taken + inflight > 0) break; /* the context is full: reap first */
        if (n < 0) {
            struct aio_piece *p = w->pending[taken]->data;
            req_fail(r, -n, "%s: io_submit of a %zu-byte %s at offset %lld failed: %s", r->f->path,
                     p->len, dir_name(r->write), (long long)p->off, strerror(-n));
            break;
        }
        taken += n;
        if (n < want) break;
    }
    memmove(w->pending, w->pending + taken, (size_t)(*npending - taken) * sizeof *w->pending);
    *npending -= taken;
    return taken;
}

static void libaio_run(struct aio_worker *w, struct aio_slice *s)
{
    struct aio_request *r = s->req;
    int qd = w->e->cfg.queue_depth, nfree = qd, npending = 0, inflight = 0;
    for (int i = 0; i < qd; i++)
        w->free[i] = &w->pieces[i];
    size_t pos = 0;
    bool stop = false;
    for (;;) {
        stop = stop || req_failed(r);
        while (!stop && pos < s->len && nfree > 0) {
            struct aio_piece *p = w->free[--nfree];
            p->buf = s->buf + pos;
            p->off = s->off + (off_t)pos;
            p->len = s->len - pos < w->e->cfg.block_size ? s->len - pos : w->e->cfg.block_size;
            p->stalls = 0;
            libaio_prep(p, r);
            w->pending[npending++] = &p->cb;
            pos += p->len;
        }
        if (stop) {
            while (npending > 0)
                w->free[nfree++] = w->pending[--npending]->data;
        } else if (npending > 0) {
            inflight += libaio_submit(w, r, &npending, inflight);
        }
        if (inflight == 0) {
            if (stop || (pos == s->len && npending == 0)) break;
            continue;
        }
        /* overlap_events: reap one and refill at once; otherwise wait for the whole batch. */
        int min = w->e->cfg.overlap_events ? 1 : inflight;
        int n = io_getevents(w->ctx, min, qd, w->events, NULL);
        if (n == -EINTR) continue;
        CHECK_MSG(n > 0, "io_getevents failed on a live context");
        inflight -= n;
        for (int i = 0; i < n; i++) {
            struct aio_piece *p = w->events[i].data;
            long res = fault_res(w->e, r->write, (long)w->events[i].res);
            long done = piece_progress(r, res, p->len, p->off, &p->stalls, true);
            if (done < 0 || (size_t)done == p->len || stop) {
                stop = stop || done < 0;
                w->free[nfree++] = p;
                continue;
            }
            p->buf += done;
            p->off += done;
            p->len -= (size_t)done;
            libaio_prep(p, r);
            w->pending[npending++] = &p->cb;
        }
    }
}

/* ---- backend: pread/pwrite, for files that refused O_DIRECT ---- */

static void psync_run(struct aio_worker *w, struct aio_slice *s)
{
    struct aio_request *r = s->req;
    size_t pos = 0;
    int stalls = 0;
    while (pos < s->len && !req_failed(r)) {
        size_t len = s->len - pos < w->e->cfg.block_size ? s->len - pos : w->e->cfg.block_size;
        off_t off = s->off + (off_t)pos;
        size_t sub = fault_len(w->e, r->write, len);
        ssize_t n = r->write ? pwrite(r->f->fd, s->buf + pos, sub, off)
                             : pread(r->f->fd, s->buf + pos, sub, off);
        if (n < 0 && errno == EINTR) continue;
        long res = fault_res(w->e, r->write, n < 0 ? -errno : (long)n);
        long done = piece_progress(r, res, len, off, &stalls, false);
        if (done < 0) return;
        pos += (size_t)done;
    }
}

/* The static backend table: one entry per kind of file. */
struct aio_backend {
    const char *name;
    void (*run)(struct aio_worker *w, struct aio_slice *s);
};
static const struct aio_backend backend_libaio = {"libaio", libaio_run};
static const struct aio_backend backend_psync = {"pread/pwrite", psync_run};

static void *worker_main(void *arg)
{
    struct aio_worker *w = arg;
    struct aio_engine *e = w->e;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->head && !e->stopping)
            pthread_cond_wait(&e->work_cv, &e->mu);
        struct aio_slice *s = e->head;
        if (!s) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        e->head = s->next;
        if (!e->head) e->tail = NULL;
        pthread_mutex_unlock(&e->mu);

        const struct aio_backend *b = s->req->f->direct ? &backend_libaio : &backend_psync;
        b->run(w, s);

        pthread_mutex_lock(&e->mu);
        if (--s->req->remaining == 0) pthread_cond_broadcast(&e->done_cv);
        pthread_mutex_unlock(&e->mu);
    }
}

struct aio_config aio_config_default(void)
{
    return (struct aio_config){.block_size = 1u << 20,
                               .queue_depth = 32,
                               .threads = 2,
                               .single_submit = false,
                               .overlap_events = true};
}

struct aio_engine *aio_engine_create(const struct aio_config *cfg, char *err, size_t errlen)
{
    struct aio_config c = cfg ? *cfg : aio_config_default();
    struct aio_config d = aio_config_default();
    if (!c.block_size) c.block_size = d.block_size;
    if (!c.queue_depth) c.queue_depth = d.queue_depth;
    if (!c.threads) c.threads = d.threads;
    if (c.block_size % AIO_ALIGN || c.block_size > (1u << 30)) {
        snprintf(err, errlen,
                 "aio block_size %zu is not a multiple of %d up to 1 GiB; use e.g. "
                 "1048576",
                 c.block_size, AIO_ALIGN);
        return NULL;
    }
    if (c.queue_depth < 1 || c.queue_depth > 1024 || c.threads < 1 || c.threads > 64) {
        snprintf(err, errlen, "aio queue_depth %d or thread_count %d out of range (1..1024, 1..64)",
                 c.queue_depth, c.threads);
        return NULL;
    }
    struct aio_engine *e = calloc(1, sizeof *e);
    CHECK(e);
    e->cfg = c;
    e->place = (struct numa_io_choice){-1, NUMA_IO_UNPLACED};
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    e->workers = calloc((size_t)c.threads, sizeof *e->workers);
    CHECK(e->workers);
    int started = 0, rc = 0;
    for (; started < c.threads; started++) {
        struct aio_worker *w = &e->workers[started];
        w->e = e;
        rc = io_setup(c.queue_depth, &w->ctx);
        if (rc < 0) break;
        w->pieces = calloc((size_t)c.queue_depth, sizeof *w->pieces);
        w->pending = calloc((size_t)c.queue_depth, sizeof *w->pending);
        w->free = calloc((size_t)c.queue_depth, sizeof *w->free);
        w->events = calloc((size_t)c.queue_depth, sizeof *w->events);
        CHECK(w->pieces && w->pending && w->free && w->events);
        CHECK(pthread_create(&w->tid, NULL, worker_main, w) == 0);
        pthread_setname_np(w->tid, "gpt50b-aio");
    }
    if (rc < 0) {
        snprintf(err, errlen, "io_setup(%d) for aio thread %d failed: %s%s", c.queue_depth, started,
                 strerror(-rc),
                 rc == -EAGAIN ? "; raise /proc/sys/fs/aio-max-nr or lower queue_depth x threads"
                               : "");
        e->cfg.threads = started;
        aio_engine_destroy(e);
        return NULL;
    }
    return e;
}

void aio_engine_destroy(struct aio_engine *e)
{
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    CHECK_MSG(!e->head, "aio_engine_destroy with requests still queued");
    e->stopping = true;
    pthread_cond_broadcast(&e->work_cv);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->cfg.threads; i++) {
        struct aio_worker *w = &e->workers[i];
        pthread_join(w->tid, NULL);
        io_destroy(w->ctx);
        free(w->pieces);
        free(w->pending);
        free(w->free);
        free(w->events);
    }
    free(e->workers);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->done_cv);
    free(e);
}

struct aio_config aio_engine_config(const struct aio_engine *e)
{
    return e->cfg;
}

int aio_engine_bind(struct aio_engine *e, int node)
{
    pthread_t tids[64]; /* threads <= 64, checked at creation */
    for (int i = 0; i < e->cfg.threads; i++)
        tids[i] = e->workers[i].tid;
    return numa_bind_threads(tids, e->cfg.threads, node);
}

struct numa_io_choice aio_engine_place(struct aio_engine *e, const char *folder, int fallback_node)
{
    struct numa_io_choice c =
        numa_io_choose(numa_node_count(), numa_path_node(folder), fallback_node);
    if (c.node >= 0 && aio_engine_bind(e, c.node) < 0) c.why = NUMA_IO_REFUSED;
    e->place = c;
    return c;
}

struct numa_io_choice aio_engine_placement(const struct aio_engine *e)
{
    return e->place;
}

struct aio_stats aio_engine_stats(const struct aio_engine *e)
{
    return (struct aio_stats){.bytes_read = atomic_load(&e->bytes_read),
                              .bytes_written = atomic_load(&e->bytes_written),
                              .retries = atomic_load(&e->retries)};
}

void aio_engine_set_fault(struct aio_engine *e, enum aio_fault kind, long after_n)
{
    atomic_store(&e->fault_countdown, after_n);
    atomic_store(&e->fault_kind, (int)kind);
}

struct aio_file *aio_file_open(struct aio_engine *e, const char *path, int flags, mode_t mode,
                               char *err, size_t errlen)
{
    bool refuse = atomic_load(&e->fault_kind) == AIO_FAULT_NO_DIRECT;
    int fd = refuse ? (errno = EINVAL, -1) : open(path, flags | O_DIRECT | O_CLOEXEC, mode);
    bool direct = fd >= 0;
    if (fd < 0 && errno == EINVAL) {
        /* The refused open may have created the file already, so O_EXCL would now fail. */
        int again = (flags & O_CREAT) && !refuse ? flags & ~O_EXCL : flags;
        fd = open(path, again | O_CLOEXEC, mode);
        if (fd >= 0 && !atomic_exchange(&e->warned_direct, true))
            fprintf(stderr,
                    "%s: O_DIRECT not supported by this filesystem (tmpfs?): falling back to "
                    "buffered I/O, slower and using the page cache\n",
                    path);
    }
    if (fd < 0) {
        int saved = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return NULL;
    }
    size_t n = strlen(path);
    struct aio_file *f = malloc(sizeof *f + n + 1);
    CHECK(f);
    f->fd = fd;
    f->direct = direct;
    memcpy(f->path, path, n + 1);
    return f;
}

int aio_file_close(struct aio_file *f)
{
    if (!f) return 0;
    int rc = close(f->fd) < 0 ? -errno : 0;
    free(f);
    return rc;
}

int aio_file_sync(struct aio_file *f)
{
    return fdatasync(f->fd) < 0 ? -errno : 0;
}

int aio_file_fd(const struct aio_file *f)
{
    return f->fd;
}

const char *aio_file_path(const struct aio_file *f)
{
    return f->path;
}

bool aio_file_is_direct(const struct aio_file *f)
{
    return f->direct;
}

static struct aio_request *submit(struct aio_engine *e, struct aio_file *f, char *buf, size_t len,
                                  off_t off, bool write)
{
    size_t bs = e->cfg.block_size;
    size_t nblocks = (len + bs - 1) / bs;
    int nslices = nblocks < (size_t)e->cfg.threads ? (int)nblocks : e->cfg.threads;
    struct aio_request *r = calloc(1, sizeof *r + (size_t)nslices * sizeof r->slices[0]);
    CHECK(r);
    r->e = e;
    r->f = f;
    r->write = write;
    if ((uintptr_t)buf % AIO_ALIGN || len % AIO_ALIGN || off < 0 || off % AIO_ALIGN) {
        req_fail(r, EINVAL,
                 "%s: %s of %zu bytes at offset %lld from %p: buffer, offset and length must be "
                 "multiples of %d (O_DIRECT); allocate with aio_alloc_aligned",
                 f->path, dir_name(write), len, (long long)off, (void *)buf, AIO_ALIGN);
        return r;
    }
    /* Slice i gets blocks [i*nblocks/nslices, (i+1)*nblocks/nslices): contiguous, balanced. */
    for (int i = 0; i < nslices; i++) {
        size_t b0 = nblocks * (size_t)i / (size_t)nslices;
        size_t b1 = nblocks * (size_t)(i + 1) / (size_t)nslices;
        size_t end = b1 * bs < len ? b1 * bs : len;
        r->slices[i] = (struct aio_slice){
            .req = r, .buf = buf + b0 * bs, .len = end - b0 * bs, .off = off + (off_t)(b0 * bs)};
    }
    r->nslices = nslices;
    if (nslices == 0) return r;
    pthread_mutex_lock(&e->mu);
    r->remaining = nslices;
    for (int i = 0; i < nslices; i++) {
        if (e->tail)
            e->tail->next = &r->slices[i];
        else
            e->head = &r->slices[i];
        e->tail = &r->slices[i];
    }
    pthread_cond_broadcast(&e->work_cv);
    pthread_mutex_unlock(&e->mu);
    return r;
}

struct aio_request *aio_submit_read(struct aio_engine *e, struct aio_file *f, void *buf, size_t len,
                                    off_t off)
{
    return submit(e, f, buf, len, off, false);
}

struct aio_request *aio_submit_write(struct aio_engine *e, struct aio_file *f, const void *buf,
                                     size_t len, off_t off)
{
    /* The engine never writes into a write request's buffer; the cast only shares the slice. */
    return submit(e, f, (char *)buf, len, off, true);
}

int aio_wait(struct aio_request *req, char *err, size_t errlen)
{
    struct aio_engine *e = req->e;
    pthread_mutex_lock(&e->mu);
    while (req->remaining > 0)
        pthread_cond_wait(&e->done_cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    int rc = atomic_load(&req->rc);
    if (rc < 0 && err) snprintf(err, errlen, "%s", req->msg);
    free(req);
    return rc;
}

bool aio_test(const struct aio_request *req)
{
    return atomic_load(&req->remaining) == 0;
}

int aio_pread(struct aio_engine *e, struct aio_file *f, void *buf, size_t len, off_t off, char *err,
              size_t errlen)
{
    return aio_wait(aio_submit_read(e, f, buf, len, off), err, errlen);
}

int aio_pwrite(struct aio_engine *e, struct aio_file *f, const void *buf, size_t len, off_t off,
               char *err, size_t errlen)
{
    return aio_wait(aio_submit_write(e, f, buf, len, off), err, errlen);
}

double aio_timed_write(struct aio_engine *e, struct aio_file *f, const void *buf, size_t len,
                       char *err, size_t errlen)
{
    double t0 = timer_now_s();
    int rc = aio_pwrite(e, f, buf, len, 0, err, errlen);
    if (rc == 0 && (rc = aio_file_sync(f)) != 0)
        snprintf(err, errlen, "%s: sync: %s", aio_file_path(f), strerror(-rc));
    return rc ? -1 : timer_now_s() - t0;
}

double aio_timed_read(struct aio_engine *e, struct aio_file *f, void *buf, size_t len, char *err,
                      size_t errlen)
{
    double t0 = timer_now_s();
    return aio_pread(e, f, buf, len, 0, err, errlen) ? -1 : timer_now_s() - t0;
}

void *aio_alloc_aligned(size_t len)
{
    void *p = NULL;
    size_t n = (len + AIO_ALIGN - 1) & ~(size_t)(AIO_ALIGN - 1);
    if (posix_memalign(&p, AIO_ALIGN, n ? n : AIO_ALIGN) != 0) return NULL;
    return p;
}
