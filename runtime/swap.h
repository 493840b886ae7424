/* swap.h: swap files that hold tensors on NVMe for one run (fp32 master weights, Adam moments).
 *
 * Each run gets its own folder, <nvme_path>/gpt50b-swap-<pid>-<n>/, held by an flock on its
 * .lock file for as long as the process lives. swap_dir_open() removes the folders of earlier
 * runs that nobody holds any more (killed, crashed, out of memory), one line each on stderr, so
 * swap files never pile up; swap_dir_close() and a normal exit() remove the run's own folder.
 * swap_path_claim() makes nvme_path one run's alone (gpt50b.lock, an flock naming its PID).
 * The swap-in and swap-out tasks are codelets/swap.c's; which tensors swap, graph/state/'s.
 *
 * A swap file is one tensor: a header, then the data.
 *
 *     offset 0        struct swap_header (magic "GPT50BSW", version, sizes, tensor name,
 *                     xxh64 of the header); padded to 4 KiB
 *     offset 4096     block table: one struct swap_block per SWAP_BLOCK_SIZE bytes of data
 *                     (state, generation, xxh64 of the block); padded to 4 KiB
 *     header_bytes    the data, round_up(bytes, 4 KiB) long, so it stays O_DIRECT-aligned
 *
 * The file is preallocated whole at creation, so a full disk shows there (-ENOSPC naming the
 * folder, the bytes needed and the bytes free) and never in the middle of a training step.
 *
 * Integrity. A write marks its blocks DIRTY in the table and fdatasyncs that before the data
 * goes out, then records each block's checksum and generation as VALID. A reader therefore
 * never gets data silently wrong: a block whose write never finished (the process was killed
 * mid swap-out, or the write failed) is refused as an "incomplete write" (-ENODATA), a block
 * never written likewise, a block from another iteration than the one expected as stale
 * (-ESTALE), and a block whose bytes no longer match their checksum as corrupt (-EBADMSG). Each
 * message names the file, the tensor and the block. The checksum is XXH64 (seed 0), written here,
 * 5-10 GB/s on one core, a few times a drive's speed. It runs on the calling thread: for a write
 * inside swap_write_submit while the engine already moves the data, for a read in swap_io_wait
 * after it (so a read costs about len / 7 GB/s more than the transfer).
 *
 * Pieces. A tensor of 2-16 GiB is swapped in pieces (DeepSpeed's sub-groups): a write or read
 * covers [off, off + len) of the tensor, with off a multiple of SWAP_BLOCK_SIZE and len a
 * multiple of it too, or reaching the padded end (swap_file_padded_bytes). The buffer is
 * AIO_ALIGN-aligned and len bytes long, pad included. Pieces of one file may be in flight at
 * once from several threads, as long as no two overlap.
 *
 * Errors: every fallible call returns 0 or a negative errno and writes one line into err (at
 * most SWAP_ERR_SIZE bytes needed); the caller turns it into user_fail() or decides otherwise.
 *
 * Example (one sub-group of Adam's step, iteration it):
 *     struct swap_dir *d = swap_dir_open(engine, "/nvme", err, sizeof err);
 *     struct swap_file *m;
 *     if (!d || swap_file_create(d, "adam.m.group3", bytes, &m, err, sizeof err) < 0)
 *         user_fail("%s", err);
 *     ...
 *     if (swap_file_read(m, buf, off, len, it - 1, err, sizeof err) < 0) user_fail("%s", err);
 *     adam_update(buf, ...);
 *     struct swap_io *io = swap_write_submit(m, buf, off, len, it);
 *     ... next sub-group ...
 *     if (swap_io_wait(io, err, sizeof err) < 0) user_fail("%s", err);
 *     swap_file_close(m);
 *     swap_dir_close(d);                  // removes the folder and its files */
#ifndef GPT50B_SWAP_H
#define GPT50B_SWAP_H

#include <stddef.h>
#include <stdint.h>

#include "aio.h"

#define SWAP_MAGIC   "GPT50BSW"
#define SWAP_VERSION 1
/* Bytes of data covered by one checksum; also the granularity of piece offsets. Small, so that
 * a tensor of a few KB (a LayerNorm weight, a bias) pads its regions to 64 KiB rather than 1 MiB;
 * the table costs 24 bytes per block (384 KiB for a 1 GiB tensor). A multiple of AIO_ALIGN, and
 * independent of the engine's request size (aio_config.block_size). */
#define SWAP_BLOCK_SIZE (64u << 10)
/* Longest tensor name, in bytes (the file name adds ".swp" and must fit NAME_MAX). */
#define SWAP_NAME_MAX 200
/* A message always fits. */
#define SWAP_ERR_SIZE (AIO_ERR_SIZE + 512)
/* Read without checking generations. */
#define SWAP_ANY_GENERATION UINT64_MAX

/* On-disk layout (little-endian, as every host this runs on). */
struct swap_header {
    char magic[8];         /* SWAP_MAGIC, no NUL */
    uint32_t version;      /* SWAP_VERSION */
    uint32_t header_bytes; /* offset of the data: 4096 + the table, rounded up to 4096 */
    uint64_t data_bytes;   /* the tensor's size in bytes */
    uint32_t block_size;   /* SWAP_BLOCK_SIZE when written */
    uint32_t nblocks;      /* ceil(round_up(data_bytes, 4096) / block_size) */
    char name[256];        /* NUL-terminated */
    uint64_t checksum;     /* XXH64 of this struct with checksum = 0 */
};

enum swap_block_state {
    SWAP_BLOCK_EMPTY = 0, /* never written (what preallocation leaves) */
    SWAP_BLOCK_DIRTY = 1, /* a write started and did not finish */
    SWAP_BLOCK_VALID = 2,
};

struct swap_block {
    uint64_t checksum;   /* XXH64 of the block's bytes when VALID */
    uint64_t generation; /* caller's counter (the iteration) of the last write started */
    uint32_t state;      /* enum swap_block_state */
    uint32_t reserved;
};

struct swap_dir;
struct swap_file;
struct swap_io;

/* Creates this run's folder under nvme_path (an existing directory) after removing the stale
 * folders of dead runs there, printing one line per folder removed. Returns NULL with one line
 * in err when nvme_path is missing, not a directory or not writable. The engine does every data
 * transfer of the folder's files and must outlive it. O(entries of nvme_path). */
struct swap_dir *swap_dir_open(struct aio_engine *e, const char *nvme_path, char *err,
                               size_t errlen);
/* Makes nvme_path this run's alone: an flock on nvme_path/gpt50b.lock, which names this
 * process's PID, held until the process exits (the file goes with a normal exit; a killed run's
 * is taken over). Take it once per run, node and folder (MPI processes of one run share a node's
 * folders, each in its own swap folder); a folder this process holds is taken again at no cost;
 * up to FSDIR_LIST_MAX folders. Returns 0, or -EBUSY with one line in err naming the PID of the
 * run that holds it, or another -errno (folder missing or not writable). O(folders held). */
int swap_path_claim(const char *nvme_path, char *err, size_t errlen);
/* Removes the folder and everything in it. Close its swap files first. */
void swap_dir_close(struct swap_dir *d);
const char *swap_dir_path(const struct swap_dir *d);

/* Creates and preallocates the swap file of tensor `name` (bytes > 0) in d; its blocks start
 * EMPTY. Errors: -EINVAL (empty or too long name, bytes 0), -EEXIST (a tensor of the same file
 * name: names are kept to [A-Za-z0-9._-], the rest becomes '_'), -ENOSPC or -EFBIG (the message
 * names the folder, the bytes needed and free); no file is left behind on error. Blocks for the
 * preallocation and one fdatasync. */
int swap_file_create(struct swap_dir *d, const char *name, uint64_t bytes, struct swap_file **out,
                     char *err, size_t errlen);
/* Opens an existing swap file, e.g. one a killed run left, and checks its header and table:
 * -EBADMSG for a foreign, corrupt or other-version file, -ENODATA when a write into it never
 * finished ("incomplete write", naming the first such block). O(nblocks). */
int swap_file_open(struct aio_engine *e, const char *path, struct swap_file **out, char *err,
                   size_t errlen);
/* Closes the file (keeps it on disk). Every swap_io of it must have been waited for. */
void swap_file_close(struct swap_file *f);
const char *swap_file_path(const struct swap_file *f);
const char *swap_file_name(const struct swap_file *f);
uint64_t swap_file_bytes(const struct swap_file *f);
/* round_up(bytes, 4096): the end a last piece reaches, and the size its buffer needs. */
uint64_t swap_file_padded_bytes(const struct swap_file *f);

/* Starts writing buf[0..len) to [off, off + len) of the tensor, tagged with `generation` (below
 * SWAP_ANY_GENERATION). Before returning, marks the blocks DIRTY on disk (one small write and an
 * fdatasync), queues the data on the engine and computes the blocks' checksums while it moves
 * (O(len)).
 * Never returns NULL: argument errors (-EINVAL), a piece overlapping one in flight (-EBUSY) or a
 * failed DIRTY mark come back from swap_io_wait. buf stays untouched until then. */
struct swap_io *swap_write_submit(struct swap_file *f, const void *buf, uint64_t off, size_t len,
                                  uint64_t generation);
/* Starts reading [off, off + len) of the tensor into buf. Blocks that are EMPTY or DIRTY
 * (-ENODATA), of a generation other than expect (-ESTALE; SWAP_ANY_GENERATION accepts all), or
 * being written (-EBUSY) fail here without I/O. The checksums are checked at swap_io_wait. */
struct swap_io *swap_read_submit(struct swap_file *f, void *buf, uint64_t off, size_t len,
                                 uint64_t expect_generation);
/* Records that [off, off + len) of the tensor (the same rules as a write's piece), unchanged
 * since it was written as generation `from`, now stands for generation `to`: an optimizer step
 * that was skipped (an fp16 overflow) leaves its state as it was, so its swap-out retags the
 * blocks instead of writing the same bytes again. Every block must be VALID with generation
 * `from` (-ENODATA, -ESTALE, -EBUSY as swap_read_submit says). No data moves: one write of the
 * table's pages, not synced; if it is lost (a kill), the blocks read as stale (generation
 * `from`) where `to` is expected, never as wrong data. Counted by swap_file_kept_bytes. Returns
 * 0 or -errno with one line in err. O(len / SWAP_BLOCK_SIZE). */
int swap_file_keep(struct swap_file *f, uint64_t off, size_t len, uint64_t from, uint64_t to,
                   char *err, size_t errlen);
/* Bytes that swap_file_keep did not have to write, since the file was created or opened. */
uint64_t swap_file_kept_bytes(const struct swap_file *f);

/* Blocks until io is done and frees it. For a write: fdatasyncs the data, then records the
 * blocks VALID (one small write, not synced: losing it only leaves them DIRTY). For a read:
 * verifies every block's checksum, O(len); -EBADMSG names the first bad block. Returns 0 or the
 * first error, with one line in err. After a failed write the blocks stay DIRTY until rewritten. */
int swap_io_wait(struct swap_io *io, char *err, size_t errlen);
/* True when swap_io_wait would not wait for I/O. O(1). */
bool swap_io_test(const struct swap_io *io);

/* Blocking forms: submit and wait. */
int swap_file_write(struct swap_file *f, const void *buf, uint64_t off, size_t len,
                    uint64_t generation, char *err, size_t errlen);
int swap_file_read(struct swap_file *f, void *buf, uint64_t off, size_t len,
                   uint64_t expect_generation, char *err, size_t errlen);

/* XXH64 of p[0..n) with seed 0, the checksum of every block and header. O(n). */
uint64_t swap_checksum(const void *p, size_t n);

#endif
