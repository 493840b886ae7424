/* aio.h: DeepNVMe, the asynchronous bulk I/O engine that moves optimizer state to and from NVMe.
 *
 * One request reads or writes one large contiguous buffer at one file offset. The engine cuts it
 * into block_size pieces, gives each of its threads a contiguous slice, and each thread keeps
 * queue_depth pieces in flight on its own libaio context: the shape of DeepSpeed's csrc/aio, and
 * its five "aio" knobs (block_size, queue_depth, thread_count, single_submit, overlap_events).
 * Files are opened with O_DIRECT, so data goes straight between the caller's buffer and the drive
 * and the page cache neither hides the drive's speed nor fills the host's memory. Where a
 * filesystem refuses O_DIRECT the file falls back to buffered pread/pwrite on the same threads,
 * with one warning per engine. Nothing here is NVMe-specific: any block device works.
 *
 * Alignment contract (O_DIRECT's, kept for buffered files too so that code tested on tmpfs runs
 * on a drive): the buffer address, the file offset and the length of every request are multiples
 * of AIO_ALIGN (4 KiB); anything else is rejected with -EINVAL. aio_alloc_aligned() gives such
 * buffers.
 *
 * Errors: every I/O error is recoverable and comes back as a negative errno from aio_wait() with
 * a one-line message naming the file, the offset and the cause; the caller decides what to do
 * (user_fail, retry, give up a checkpoint). Every completion is checked: a short transfer is
 * retried for its remainder, and one that makes no progress (end of file, a drive that stops)
 * ends as -EIO. Only internal failures (out of memory, a pthread call) abort through CHECK.
 *
 * Example:
 *     char err[AIO_ERR_SIZE];
 *     struct aio_engine *e = aio_engine_create(NULL, err, sizeof err);   // 1 MiB, QD 32, 2 thr
 *     if (!e) user_fail("%s", err);
 *     struct aio_file *f = aio_file_open(e, "/nvme/x.bin", O_RDWR | O_CREAT, 0600, err,
 *                                        sizeof err);
 *     if (!f) user_fail("%s", err);
 *     float *w = aio_alloc_aligned(n * sizeof(float));                   // n * 4 % 4096 == 0
 *     struct aio_request *r = aio_submit_write(e, f, w, n * sizeof(float), 0);
 *     ... compute while the write runs ...
 *     if (aio_wait(r, err, sizeof err) < 0) user_fail("%s", err);
 *     aio_file_close(f); aio_engine_destroy(e); free(w);
 *
 * Threads: the submit, wait and test calls may be used from any thread at once; a request is
 * waited for exactly once. Requests run in submission order per engine thread, not overall. */
#ifndef GPT50B_AIO_H
#define GPT50B_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "numa.h"

/* Alignment of buffers, offsets and lengths (the logical block size of every current drive). */
#define AIO_ALIGN 4096
/* Size of an error buffer that always holds a whole message (long paths are cut short). */
#define AIO_ERR_SIZE 512

/* DeepSpeed's "aio" section. A zero numeric field takes its default. */
struct aio_config {
    size_t block_size;   /* bytes per I/O, a multiple of AIO_ALIGN; default 1 MiB */
    int queue_depth;     /* I/Os in flight per thread, 1..1024; default 32 */
    int threads;         /* submitting threads (thread_count, intra_op_parallelism), 1..64;
                            default 2 */
    bool single_submit;  /* one io_submit per piece instead of one per batch; default false */
    bool overlap_events; /* refill a slot as soon as its I/O completes instead of waiting for
                            the whole batch; default true */
};

/* The defaults: 1 MiB, queue depth 32, 2 threads, single_submit false, overlap_events true. */
struct aio_config aio_config_default(void);

struct aio_engine;
struct aio_file;
struct aio_request;

/* Starts cfg->threads threads, each with a libaio context of cfg->queue_depth (NULL cfg: the
 * defaults). Returns NULL and writes one line into err on a bad configuration or when the kernel
 * refuses the contexts (io_setup: EAGAIN means /proc/sys/fs/aio-max-nr is too small). */
struct aio_engine *aio_engine_create(const struct aio_config *cfg, char *err, size_t errlen);
/* Stops the threads. Every request must have been waited for. Blocks until the threads exit. */
void aio_engine_destroy(struct aio_engine *e);
/* The configuration in use, defaults filled in. */
struct aio_config aio_engine_config(const struct aio_engine *e);
/* Places the engine's threads for the files of `folder` (numa.h): on a machine of several NUMA
 * nodes, binds them to the node of the drive that holds folder, else to fallback_node (the
 * pinned pool's, -1: none); one node: unbound. Returns the choice, which aio_engine_placement
 * keeps. Blocks for two hwloc topology loads (tens of ms). */
struct numa_io_choice aio_engine_place(struct aio_engine *e, const char *folder, int fallback_node);
/* The last aio_engine_place's choice; {-1, NUMA_IO_UNPLACED} before any. */
struct numa_io_choice aio_engine_placement(const struct aio_engine *e);
/* Binds the engine's threads to NUMA node `node` (numa_bind_threads: 0 or -errno). The threads
 * are named "gpt50b-aio" (top -H, /proc/PID/task/TID/comm). */
int aio_engine_bind(struct aio_engine *e, int node);

/* Opens path with flags (O_RDONLY, O_WRONLY or O_RDWR, and O_CREAT, O_EXCL, O_TRUNC) plus
 * O_DIRECT. If the filesystem refuses O_DIRECT (EINVAL at open: some network and FUSE
 * filesystems, tmpfs before Linux 6.6) the file is opened buffered and the first such file of
 * the engine prints one warning line on stderr. Returns NULL, writes one line into err and sets
 * errno when the open fails. */
struct aio_file *aio_file_open(struct aio_engine *e, const char *path, int flags, mode_t mode,
                               char *err, size_t errlen);
/* Closes the descriptor (no flush: see aio_file_sync). Returns 0 or -errno. */
int aio_file_close(struct aio_file *f);
/* fdatasync: O_DIRECT data has left the host but may sit in the drive's cache until then.
 * Returns 0 or -errno. Blocks for the flush (about a millisecond on NVMe). */
int aio_file_sync(struct aio_file *f);
int aio_file_fd(const struct aio_file *f);
const char *aio_file_path(const struct aio_file *f);
/* False when the file fell back to buffered I/O. */
bool aio_file_is_direct(const struct aio_file *f);

/* Queues a read of len bytes at file offset off into buf, or a write of buf, and returns at once
 * (O(threads) work, no system call). Never returns NULL: bad arguments (misaligned, negative
 * offset) make a request that is already complete with -EINVAL, so every error comes back
 * through aio_wait. buf must stay valid, and for a write unchanged, until the request is done. A
 * zero len completes at once with 0. */
struct aio_request *aio_submit_read(struct aio_engine *e, struct aio_file *f, void *buf, size_t len,
                                    off_t off);
struct aio_request *aio_submit_write(struct aio_engine *e, struct aio_file *f, const void *buf,
                                     size_t len, off_t off);
/* Blocks until req is done, frees it and returns 0 or -errno: the first error of any piece
 * (-EINVAL, -EIO for a transfer that stops making progress, -EFBIG, -ENOSPC, ...). On error,
 * writes one line naming the file, the offset and the cause into err when err is not NULL. The
 * other pieces of a failed request stop early; the buffer's contents are then unspecified. */
int aio_wait(struct aio_request *req, char *err, size_t errlen);
/* True when req is done (aio_wait will not block). Never blocks, O(1). */
bool aio_test(const struct aio_request *req);

/* Blocking forms: submit and wait. */
int aio_pread(struct aio_engine *e, struct aio_file *f, void *buf, size_t len, off_t off, char *err,
              size_t errlen);
int aio_pwrite(struct aio_engine *e, struct aio_file *f, const void *buf, size_t len, off_t off,
               char *err, size_t errlen);

/* Timed blocking forms at offset 0, as a measurement of the drive takes them: the seconds of
 * aio_pwrite and the file's sync (the drive's cache cannot flatter it), or of aio_pread; -1 with
 * one line in err on failure. */
double aio_timed_write(struct aio_engine *e, struct aio_file *f, const void *buf, size_t len,
                       char *err, size_t errlen);
double aio_timed_read(struct aio_engine *e, struct aio_file *f, void *buf, size_t len, char *err,
                      size_t errlen);

/* len bytes (rounded up to AIO_ALIGN) aligned to AIO_ALIGN; release with free(). NULL when out of
 * memory. The memory is not touched (not zeroed). */
void *aio_alloc_aligned(size_t len);

/* Totals since the engine was created: bytes moved, and transfers that came back short and were
 * retried (a healthy drive shows none). */
struct aio_stats {
    uint64_t bytes_read, bytes_written, retries;
};
struct aio_stats aio_engine_stats(const struct aio_engine *e);

/* Fault injection, for tests only. A one-shot fault skips after_n matching I/Os (counted from
 * this call, across the engine's threads, retries included) and hits the next one; a persistent
 * one holds until the next call. Reset with AIO_FAULT_NONE. */
enum aio_fault {
    AIO_FAULT_NONE,
    AIO_FAULT_SHORT_WRITE, /* one-shot: a write of 8 KiB or more is handed to the kernel with
                              half its length (rounded down to AIO_ALIGN), a real short write
                              that the engine must complete */
    AIO_FAULT_SHORT_READ,  /* one-shot: the same for a read */
    AIO_FAULT_EIO_WRITE,   /* one-shot: a write completes with -EIO */
    AIO_FAULT_EIO_READ,    /* one-shot: a read completes with -EIO */
    AIO_FAULT_NO_DIRECT,   /* persistent: aio_file_open acts as if O_DIRECT were refused */
};
void aio_engine_set_fault(struct aio_engine *e, enum aio_fault kind, long after_n);

#endif
