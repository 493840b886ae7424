/* safetensors.h: reader and writer of the Hugging Face safetensors format, and atomic file writes.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON, then the data.
 *
 *     {"__metadata__": {"format": "pt"},
 *      "transformer.wte.weight": {"dtype": "F32", "shape": [1000, 64], "data_offsets": [0,
 * 256000]},
 *      ...}
 *
 * data_offsets are [begin, end) in bytes from the start of the data; tensors are row-major and
 * little-endian. This is what model.save_pretrained() writes, so checkpoints and test fixtures
 * are exchanged with PyTorch in this format.
 *
 * The reader maps the file and validates all of it before returning (header length, JSON,
 * dtypes, shapes against sizes, offsets within the file and non-overlapping, unique names), so a
 * caller never meets a corrupt tensor later. The writer writes a temporary file next to the
 * destination, fsyncs it and renames it over the destination: a crash leaves either the old file
 * or the new one, never a partial one. It orders the data by element size, largest first, as the
 * reference implementation does, so every tensor of a file it writes is aligned to its element.
 *
 * Errors: every fallible call returns 0 or a negative errno and, when err is not NULL, writes a
 * one-line message naming the file and the problem into err (SAFETENSORS_ERR_SIZE bytes are
 * always enough to hold it whole). The caller turns it into user_fail() (exit 2).
 *
 *     char err[SAFETENSORS_ERR_SIZE];
 *     struct safetensors_file f;
 *     if (safetensors_open(&f, "model.safetensors", err, sizeof err) < 0)
 *         user_fail("%s", err);
 *     const struct safetensors_tensor *wte = safetensors_find(&f, "transformer.wte.weight");
 *     if (!wte || wte->dtype != SAFETENSORS_F32 || wte->ndim != 2)
 *         user_fail("model.safetensors: no fp32 matrix transformer.wte.weight");
 *     memcpy(dst, wte->data, wte->nbytes);
 *     safetensors_close(&f);
 *
 *     struct safetensors_writer w;
 *     safetensors_writer_init(&w);
 *     safetensors_writer_add(&w, "logits", SAFETENSORS_F32, 3, (int64_t[]){B, T, V}, logits);
 *     safetensors_writer_set_metadata(&w, "format", "pt");
 *     int rc = safetensors_writer_write(&w, "out.safetensors", err, sizeof err);
 *     safetensors_writer_free(&w);
 */
#ifndef GPT50B_SAFETENSORS_H
#define GPT50B_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* Size of an error buffer that always holds a whole message (long names are cut short). */
#define SAFETENSORS_ERR_SIZE 512
/* Most dimensions of a tensor; the format has no limit but no model needs more. */
#define SAFETENSORS_MAX_DIMS 8
/* Largest header accepted, as the reference implementation (guards against a corrupt length). */
#define SAFETENSORS_MAX_HEADER (100u << 20)

/* The dtypes of the format, with their spelling in the header. */
enum safetensors_dtype {
    SAFETENSORS_BOOL,    /* "BOOL" */
    SAFETENSORS_U8,      /* "U8" */
    SAFETENSORS_I8,      /* "I8" */
    SAFETENSORS_F8_E5M2, /* "F8_E5M2" */
    SAFETENSORS_F8_E4M3, /* "F8_E4M3" */
    SAFETENSORS_I16,     /* "I16" */
    SAFETENSORS_U16,     /* "U16" */
    SAFETENSORS_F16,     /* "F16" */
    SAFETENSORS_BF16,    /* "BF16" */
    SAFETENSORS_I32,     /* "I32" */
    SAFETENSORS_U32,     /* "U32" */
    SAFETENSORS_F32,     /* "F32" */
    SAFETENSORS_F64,     /* "F64" */
    SAFETENSORS_I64,     /* "I64" */
    SAFETENSORS_U64,     /* "U64" */
    SAFETENSORS_DTYPE_COUNT,
};

/* Bytes of one element. */
size_t safetensors_dtype_size(enum safetensors_dtype dt);
/* The header spelling, e.g. "BF16". */
const char *safetensors_dtype_name(enum safetensors_dtype dt);
/* The safetensors dtype of a project dtype (F32, F16, BF16). */
enum safetensors_dtype safetensors_dtype_of(enum dtype dt);
/* The project dtype of a safetensors dtype: 0 and *out set, or -1 for dtypes the model has no
 * use for (integers, F64, F8). */
int safetensors_dtype_to_dtype(enum safetensors_dtype st, enum dtype *out);

/* ---- Reader ---- */

/* One tensor of an open file. Valid until safetensors_close(). */
struct safetensors_tensor {
    const char *name;
    enum safetensors_dtype dtype;
    int ndim;                            /* 0 for a scalar */
    int64_t shape[SAFETENSORS_MAX_DIMS]; /* shape[ndim..] are 0 */
    size_t numel;                        /* product of the shape, 1 for a scalar */
    size_t nbytes;                       /* numel * dtype size = end - begin */
    size_t offset;                       /* begin, from the start of the data */
    const void *data;                    /* into the read-only mapping; aligned to the element
                                            size when the writer aligned it (ours does; copy
                                            with memcpy when unsure) */
};

/* An open file. Fields are read-only to callers. */
struct safetensors_file {
    char *path;
    void *map; /* the whole file, mapped read-only */
    size_t map_size;
    const uint8_t *data_start; /* map + 8 + header length */
    size_t data_size;
    int n_tensors;
    struct safetensors_tensor *tensors; /* in header order */
    int n_metadata;
    char **metadata_keys; /* "__metadata__" entries, in header order */
    char **metadata_values;
    int *by_name; /* indices of tensors sorted by name, for safetensors_find */
};

/* Maps and validates path. Returns 0, or a negative errno (-ENOENT, -EINVAL for a corrupt file,
 * -ENOMEM ...) with the message in err; f needs no close on failure. O(n log n) in tensors. */
int safetensors_open(struct safetensors_file *f, const char *path, char *err, size_t err_size);
/* Unmaps; every pointer obtained from f becomes invalid. Safe on a zeroed struct. */
void safetensors_close(struct safetensors_file *f);
/* The tensor called name, or NULL. O(log n). */
const struct safetensors_tensor *safetensors_find(const struct safetensors_file *f,
                                                  const char *name);
/* The "__metadata__" value of key, or NULL. O(n) in metadata entries. */
const char *safetensors_metadata(const struct safetensors_file *f, const char *key);

/* ---- Writer ---- */

/* Produces the bytes of a tensor the writer could not hold in memory (a tensor on NVMe, say):
 * fills buf with len bytes starting at byte offset of the tensor. Returns 0 or a negative
 * errno, which aborts the write. Called with increasing offsets covering the tensor once. */
typedef int (*safetensors_fill_fn)(void *ctx, void *buf, size_t offset, size_t len);

struct safetensors_writer_entry {
    char *name;
    enum safetensors_dtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t nbytes;
    const void *data; /* or NULL when fill is set */
    safetensors_fill_fn fill;
    void *fill_ctx;
};

/* Collects tensors and metadata, then writes them in one go. Fields are private. */
struct safetensors_writer {
    int n_entries, cap_entries;
    struct safetensors_writer_entry *entries; /* in insertion order, which the header keeps */
    int n_metadata, cap_metadata;
    char **metadata_keys;
    char **metadata_values;
};

void safetensors_writer_init(struct safetensors_writer *w);
/* Adds a tensor of shape[ndim] (row-major) whose bytes are at data. data is NOT copied: it must
 * stay valid until safetensors_writer_write() returns. The name is copied. Returns 0, -EINVAL
 * (empty name, "__metadata__", bad ndim or negative dimension), -EEXIST (name already added) or
 * -ENOMEM. */
int safetensors_writer_add(struct safetensors_writer *w, const char *name,
                           enum safetensors_dtype dtype, int ndim, const int64_t *shape,
                           const void *data);
/* As safetensors_writer_add, the bytes coming from fill(ctx, ...) at write time. */
int safetensors_writer_add_fill(struct safetensors_writer *w, const char *name,
                                enum safetensors_dtype dtype, int ndim, const int64_t *shape,
                                safetensors_fill_fn fill, void *ctx);
/* Sets a "__metadata__" entry, replacing an earlier value of key. Both are copied. Returns 0 or
 * -ENOMEM. */
int safetensors_writer_set_metadata(struct safetensors_writer *w, const char *key,
                                    const char *value);
/* Writes everything to path atomically (see fs_write_atomic). Returns 0 or a negative errno
 * (-ENOENT for a missing directory, -EACCES, -ENOSPC, an error of a fill callback ...) with the
 * message in err; on failure path is untouched and no temporary file remains (but see
 * fs_write_atomic on the directory fsync). Blocks until the data is on disk. O(total bytes).
 * The writer can be written again. */
int safetensors_writer_write(const struct safetensors_writer *w, const char *path, char *err,
                             size_t err_size);
/* Releases what the writer holds (not the tensors' data). */
void safetensors_writer_free(struct safetensors_writer *w);

/* ---- Atomic file write ---- */

/* Replaces path with the len bytes at data, crash-safely: writes "<path>.tmp.<pid>.<n>" in the
 * same directory, checks every write, fsyncs and closes it, renames it over path and fsyncs the
 * directory. Returns 0 or a negative errno with the message in err. A failure before the rename
 * leaves path untouched and removes the temporary file; a failing fsync of the directory after
 * it is reported too (the new file is in place but its rename may not survive a power loss).
 * For small files such as a checkpoint's config.json. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t err_size);

#endif
