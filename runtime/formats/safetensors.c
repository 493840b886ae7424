/* safetensors.c: the safetensors reader (mmap + jansson, validating everything up front), the
 * writer, and the atomic temporary-file-then-rename write both the writer and fs_write_atomic use.
 * See safetensors.h for the format and the contracts. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsdir.h"
#include "progress.h"

static const struct {
    const char *name;
    size_t size;
} dtype_table[SAFETENSORS_DTYPE_COUNT] = {
    [SAFETENSORS_BOOL] = {"BOOL", 1},       [SAFETENSORS_U8] = {"U8", 1},
    [SAFETENSORS_I8] = {"I8", 1},           [SAFETENSORS_F8_E5M2] = {"F8_E5M2", 1},
    [SAFETENSORS_F8_E4M3] = {"F8_E4M3", 1}, [SAFETENSORS_I16] = {"I16", 2},
    [SAFETENSORS_U16] = {"U16", 2},         [SAFETENSORS_F16] = {"F16", 2},
    [SAFETENSORS_BF16] = {"BF16", 2},       [SAFETENSORS_I32] = {"I32", 4},
    [SAFETENSORS_U32] = {"U32", 4},         [SAFETENSORS_F32] = {"F32", 4},
    [SAFETENSORS_F64] = {"F64", 8},         [SAFETENSORS_I64] = {"I64", 8},
    [SAFETENSORS_U64] = {"U64", 8},
};

size_t safetensors_dtype_size(enum safetensors_dtype dt)
{
    return dtype_table[dt].size;
}

const char *safetensors_dtype_name(enum safetensors_dtype dt)
{
    return dtype_table[dt].name;
}

enum safetensors_dtype safetensors_dtype_of(enum dtype dt)
{
    switch (dt) {
    case DTYPE_FP32:
        return SAFETENSORS_F32;
    case DTYPE_FP16:
        return SAFETENSORS_F16;
    case DTYPE_BF16:
        return SAFETENSORS_BF16;
    }
    abort();
}

int safetensors_dtype_to_dtype(enum safetensors_dtype st, enum dtype *out)
{
    switch (st) {
    case SAFETENSORS_F32:
        *out = DTYPE_FP32;
        return 0;
    case SAFETENSORS_F16:
        *out = DTYPE_FP16;
        return 0;
    case SAFETENSORS_BF16:
        *out = DTYPE_BF16;
        return 0;
    default:
        return -1;
    }
}

/* Writes the message into err (if any) and returns rc, so failures read `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t err_size, int rc,
                                                      const char *fmt, ...)
{
    if (err && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
        /* Tensor names come from the file and may hold control characters: keep one line. */
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20) *c = '?';
    }
    return rc;
}

/* ---- Reader ---- */

static int dtype_parse(const char *s, enum safetensors_dtype *out)
{
    for (int i = 0; i < SAFETENSORS_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_table[i].name) == 0) {
            *out = (enum safetensors_dtype)i;
            return 0;
        }
    return -1;
}

/* A JSON integer in [0, INT64_MAX], as the format's sizes and offsets must be. */
static bool json_is_size(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* Fills t from the header entry v; the message names the tensor. data_size bounds the offsets. */
static int tensor_parse(struct safetensors_tensor *t, const char *name, json_t *v, size_t data_size,
                        const char *path, char *err, size_t err_size)
{
    if (!json_is_object(v))
        return fail(err, err_size, -EINVAL, "%s: tensor '%.200s' is not a JSON object", path, name);
    json_t *jdtype = json_object_get(v, "dtype");
    json_t *jshape = json_object_get(v, "shape");
    json_t *joffsets = json_object_get(v, "data_offsets");
    if (!json_is_string(jdtype) || !json_is_array(jshape) || !json_is_array(joffsets))
        return fail(err, err_size, -EINVAL,
                    "%s: tensor '%.200s' lacks a string \"dtype\", an array \"shape\" or an "
                    "array \"data_offsets\"",
                    path, name);
    if (dtype_parse(json_string_value(jdtype), &t->dtype) < 0)
        return fail(err, err_size, -EINVAL, "%s: tensor '%.200s' has unknown dtype '%.40s'", path,
                    name, json_string_value(jdtype));

    size_t ndim = json_array_size(jshape);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return fail(err, err_size, -EINVAL, "%s: tensor '%.200s' has %zu dimensions, more than %d",
                    path, name, ndim, SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    size_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(jshape, i);
        if (!json_is_size(d))
            return fail(err, err_size, -EINVAL,
                        "%s: tensor '%.200s' has a shape entry that is not a non-negative integer",
                        path, name);
        t->shape[i] = json_integer_value(d);
        if (__builtin_mul_overflow(numel, (size_t)t->shape[i], &numel))
            return fail(err, err_size, -EINVAL, "%s: tensor '%.200s' has a shape too large", path,
                        name);
    }
    t->numel = numel;
    if (__builtin_mul_overflow(numel, safetensors_dtype_size(t->dtype), &t->nbytes))
        return fail(err, err_size, -EINVAL, "%s: tensor '%.200s' has a shape too large", path,
                    name);

    json_t *jbegin = json_array_get(joffsets, 0);
    json_t *jend = json_array_get(joffsets, 1);
    if (json_array_size(joffsets) != 2 || !json_is_size(jbegin) || !json_is_size(jend))
        return fail(err, err_size, -EINVAL,
                    "%s: tensor '%.200s' has data_offsets that are not two non-negative integers",
                    path, name);
    uint64_t begin = (uint64_t)json_integer_value(jbegin);
    uint64_t end = (uint64_t)json_integer_value(jend);
    if (end < begin || end > data_size)
        return fail(err, err_size, -EINVAL,
                    "%s: tensor '%.200s' has data_offsets [%llu, %llu] outside the %zu data bytes "
                    "of the file (truncated or corrupt)",
                    path, name, (unsigned long long)begin, (unsigned long long)end, data_size);
    if (end - begin != t->nbytes)
        return fail(err, err_size, -EINVAL,
                    "%s: tensor '%.200s' spans %llu bytes but its shape and dtype %s need %zu",
                    path, name, (unsigned long long)(end - begin), safetensors_dtype_name(t->dtype),
                    t->nbytes);
    t->offset = (size_t)begin;
    return 0;
}

static int metadata_parse(struct safetensors_file *f, json_t *v, char *err, size_t err_size)
{
    if (!json_is_object(v))
        return fail(err, err_size, -EINVAL, "%s: \"__metadata__\" is not a JSON object", f->path);
    size_t n = json_object_size(v);
    f->metadata_keys = calloc(n + 1, sizeof(char *));
    f->metadata_values = calloc(n + 1, sizeof(char *));
    if (!f->metadata_keys || !f->metadata_values)
        return fail(err, err_size, -ENOMEM, "%s: out of memory reading the header", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val))
            return fail(err, err_size, -EINVAL,
                        "%s: \"__metadata__\" entry '%.200s' is not a string", f->path, key);
        f->metadata_keys[f->n_metadata] = strdup(key);
        f->metadata_values[f->n_metadata] = strdup(json_string_value(val));
        f->n_metadata++;
        if (!f->metadata_keys[f->n_metadata - 1] || !f->metadata_values[f->n_metadata - 1])
            return fail(err, err_size, -ENOMEM, "%s: out of memory reading the header", f->path);
    }
    return 0;
}

static int compare_name(const void *a, const void *b)
{
    const struct safetensors_tensor *x = *(const struct safetensors_tensor *const *)a;
    const struct safetensors_tensor *y = *(const struct safetensors_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int compare_offset(const void *a, const void *b)
{
    const struct safetensors_tensor *x = *(const struct safetensors_tensor *const *)a;
    const struct safetensors_tensor *y = *(const struct safetensors_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Builds f->by_name and checks that no two tensors share a byte. O(n log n). */
static int index_build(struct safetensors_file *f, char *err, size_t err_size)
{
    int n = f->n_tensors;
    const struct safetensors_tensor **order = malloc((size_t)(n ? n : 1) * sizeof(*order));
    f->by_name = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!order || !f->by_name) {
        free(order);
        return fail(err, err_size, -ENOMEM, "%s: out of memory reading the header", f->path);
    }
    for (int i = 0; i < n; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof(*order), compare_offset);
    const struct safetensors_tensor *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (order[i]->nbytes == 0) continue;
        if (prev && order[i]->offset < prev->offset + prev->nbytes) {
            int rc = fail(err, err_size, -EINVAL,
                          "%s: tensors '%.200s' and '%.200s' overlap in the data (corrupt file)",
                          f->path, prev->name, order[i]->name);
            free(order);
            return rc;
        }
        prev = order[i];
    }
    qsort(order, (size_t)n, sizeof(*order), compare_name);
    for (int i = 0; i < n; i++)
        f->by_name[i] = (int)(order[i] - f->tensors);
    free(order);
    return 0;
}

static int header_parse(struct safetensors_file *f, const char *header, size_t len, char *err,
                        size_t err_size)
{
    /* The reference rejects a header not opening an object before parsing; so do we, which also
     * turns a random binary file into a clear message. */
    if (header[0] != '{')
        return fail(err, err_size, -EINVAL,
                    "%s: header does not start with '{' (not a safetensors file?)", f->path);
    json_error_t jerr;
    json_t *root = json_loadb(header, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(err, err_size, -EINVAL, "%s: header is not valid JSON: %s (byte %d)", f->path,
                    jerr.text, jerr.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = fail(err, err_size, -EINVAL, "%s: header is not a JSON object", f->path);
        goto out;
    }
    size_t n = json_object_size(root);
    f->tensors = calloc(n + 1, sizeof(*f->tensors));
    if (!f->tensors) {
        rc = fail(err, err_size, -ENOMEM, "%s: out of memory reading the header", f->path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if ((rc = metadata_parse(f, val, err, err_size)) < 0) goto out;
            continue;
        }
        struct safetensors_tensor *t = &f->tensors[f->n_tensors];
        if ((rc = tensor_parse(t, key, val, f->data_size, f->path, err, err_size)) < 0) goto out;
        if (!(t->name = strdup(key))) {
            rc = fail(err, err_size, -ENOMEM, "%s: out of memory reading the header", f->path);
            goto out;
        }
        t->data = f->data_start + t->offset;
        f->n_tensors++;
    }
    rc = index_build(f, err, err_size);
out:
    json_decref(root);
    return rc;
}

int safetensors_open(struct safetensors_file *f, const char *path, char *err, size_t err_size)
{
    memset(f, 0, sizeof(*f));
    f->map = MAP_FAILED;
    int rc;
    if (!(f->path = strdup(path))) {
        rc = fail(err, err_size, -ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = fail(err, err_size, -errno, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        rc = fail(err, err_size, -EINVAL, "%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    f->map_size = (size_t)sb.st_size;
    if (f->map_size < 8) {
        rc = fail(err, err_size, -EINVAL,
                  "%s: truncated: %zu bytes, fewer than the 8-byte header length", path,
                  f->map_size);
        close(fd);
        goto fail;
    }
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (f->map == MAP_FAILED) {
        rc = fail(err, err_size, -map_errno, "cannot map %s: %s", path, strerror(map_errno));
        goto fail;
    }

    const uint8_t *bytes = f->map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | bytes[i];
    if (header_len < 2 || header_len > SAFETENSORS_MAX_HEADER) {
        rc = fail(err, err_size, -EINVAL,
                  "%s: header length %llu is not in [2, %u] (not a safetensors file?)", path,
                  (unsigned long long)header_len, SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (header_len > f->map_size - 8) {
        rc = fail(err, err_size, -EINVAL,
                  "%s: header length %llu runs past the end of the %zu-byte file (truncated)", path,
                  (unsigned long long)header_len, f->map_size);
        goto fail;
    }
    f->data_start = bytes + 8 + header_len;
    f->data_size = f->map_size - 8 - (size_t)header_len;
    if ((rc = header_parse(f, (const char *)bytes + 8, (size_t)header_len, err, err_size)) < 0)
        goto fail;
    return 0;
fail:
    safetensors_close(f);
    return rc;
}

void safetensors_close(struct safetensors_file *f)
{
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->map_size);
    for (int i = 0; i < f->n_tensors; i++)
        free((char *)f->tensors[i].name);
    for (int i = 0; i < f->n_metadata; i++) {
        free(f->metadata_keys[i]);
        free(f->metadata_values[i]);
    }
    free(f->tensors);
    free(f->metadata_keys);
    free(f->metadata_values);
    free(f->by_name);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

const struct safetensors_tensor *safetensors_find(const struct safetensors_file *f,
                                                  const char *name)
{
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const struct safetensors_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *safetensors_metadata(const struct safetensors_file *f, const char *key)
{
    for (int i = 0; i < f->n_metadata; i++)
        if (strcmp(f->metadata_keys[i], key) == 0) return f->metadata_values[i];
    return NULL;
}

/* ---- Atomic file write ---- */

struct atomic_file {
    const char *path;
    char *tmp_path;
    int fd;
};

/* Creates the temporary file next to path (same filesystem, so the rename is atomic). */
static int atomic_begin(struct atomic_file *af, const char *path, char *err, size_t err_size)
{
    static atomic_uint counter;
    af->path = path;
    af->fd = -1;
    size_t len = strlen(path) + 64;
    if (!(af->tmp_path = malloc(len)))
        return fail(err, err_size, -ENOMEM, "cannot write %s: out of memory", path);
    /* O_EXCL: a stale temporary of a crashed run with the same pid is skipped, never reused. */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(af->tmp_path, len, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&counter, 1));
        af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0) return 0;
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(af->tmp_path);
    af->tmp_path = NULL;
    return fail(err, err_size, -e, "cannot write %s: creating a temporary file: %s", path,
                strerror(e));
}

static int atomic_write(struct atomic_file *af, const void *buf, size_t len, char *err,
                        size_t err_size)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(af->fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return fail(err, err_size, -errno, "cannot write %s: %s", af->path, strerror(errno));
        /* A write that makes no progress has no errno; a full disk is the usual cause. */
        if (n == 0)
            return fail(err, err_size, -ENOSPC, "cannot write %s: %s", af->path, strerror(ENOSPC));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void atomic_abort(struct atomic_file *af)
{
    if (af->fd >= 0) close(af->fd);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    af->tmp_path = NULL;
    af->fd = -1;
}

/* fsync + close (both can report a deferred write error, e.g. ENOSPC on NFS), rename, then
 * fsync the directory so the rename itself survives a crash. Aborts on any failure. */
static int atomic_commit(struct atomic_file *af, char *err, size_t err_size)
{
    int rc = 0;
    if (fsync(af->fd) < 0)
        rc = fail(err, err_size, -errno, "cannot write %s: fsync: %s", af->path, strerror(errno));
    int fd = af->fd;
    af->fd = -1;
    if (close(fd) < 0 && rc == 0)
        rc = fail(err, err_size, -errno, "cannot write %s: close: %s", af->path, strerror(errno));
    if (rc == 0 && rename(af->tmp_path, af->path) < 0)
        rc = fail(err, err_size, -errno, "cannot write %s: rename: %s", af->path, strerror(errno));
    if (rc < 0) {
        atomic_abort(af);
        return rc;
    }
    free(af->tmp_path);
    af->tmp_path = NULL;

    char *copy = strdup(af->path);
    if (!copy) return fail(err, err_size, -ENOMEM, "cannot write %s: out of memory", af->path);
    int e = fsdir_sync(dirname(copy));
    if (e < 0)
        rc = fail(err, err_size, e, "cannot write %s: fsync of its directory: %s", af->path,
                  strerror(-e));
    free(copy);
    return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t err_size)
{
    struct atomic_file af;
    int rc = atomic_begin(&af, path, err, err_size);
    if (rc < 0) return rc;
    if ((rc = atomic_write(&af, data, len, err, err_size)) < 0) {
        atomic_abort(&af);
        return rc;
    }
    return atomic_commit(&af, err, err_size);
}

/* ---- Writer ---- */

/* Chunk of a fill callback: large enough for NVMe bandwidth, small next to host memory. */
#define FILL_CHUNK (8u << 20)

void safetensors_writer_init(struct safetensors_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void safetensors_writer_free(struct safetensors_writer *w)
{
    for (int i = 0; i < w->n_entries; i++)
        free(w->entries[i].name);
    for (int i = 0; i < w->n_metadata; i++) {
        free(w->metadata_keys[i]);
        free(w->metadata_values[i]);
    }
    free(w->entries);
    free(w->metadata_keys);
    free(w->metadata_values);
    memset(w, 0, sizeof(*w));
}

static int entry_add(struct safetensors_writer *w, const char *name, enum safetensors_dtype dtype,
                     int ndim, const int64_t *shape, const void *data, safetensors_fill_fn fill,
                     void *ctx)
{
    if (!name[0] || strcmp(name, "__metadata__") == 0 || ndim < 0 || ndim > SAFETENSORS_MAX_DIMS ||
        (unsigned)dtype >= SAFETENSORS_DTYPE_COUNT)
        return -EINVAL;
    size_t nbytes = safetensors_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(nbytes, (size_t)shape[i], &nbytes))
            return -EINVAL;
    if (nbytes > 0 && !data && !fill) return -EINVAL;
    /* O(n) per add: a model has thousands of tensors at most, written once per checkpoint. */
    for (int i = 0; i < w->n_entries; i++)
        if (strcmp(w->entries[i].name, name) == 0) return -EEXIST;
    if (w->n_entries == w->cap_entries) {
        int cap = w->cap_entries ? 2 * w->cap_entries : 16;
        void *p = realloc(w->entries, (size_t)cap * sizeof(*w->entries));
        if (!p) return -ENOMEM;
        w->entries = p;
        w->cap_entries = cap;
    }
    struct safetensors_writer_entry *e = &w->entries[w->n_entries];
    memset(e, 0, sizeof(*e));
    if (!(e->name = strdup(name))) return -ENOMEM;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->nbytes = nbytes;
    e->data = data;
    e->fill = fill;
    e->fill_ctx = ctx;
    w->n_entries++;
    return 0;
}

int safetensors_writer_add(struct safetensors_writer *w, const char *name,
                           enum safetensors_dtype dtype, int ndim, const int64_t *shape,
                           const void *data)
{
    return entry_add(w, name, dtype, ndim, shape, data, NULL, NULL);
}

int safetensors_writer_add_fill(struct safetensors_writer *w, const char *name,
                                enum safetensors_dtype dtype, int ndim, const int64_t *shape,
                                safetensors_fill_fn fill, void *ctx)
{
    return entry_add(w, name, dtype, ndim, shape, NULL, fill, ctx);
}

int safetensors_writer_set_metadata(struct safetensors_writer *w, const char *key,
                                    const char *value)
{
    char *v = strdup(value);
    if (!v) return -ENOMEM;
    for (int i = 0; i < w->n_metadata; i++)
        if (strcmp(w->metadata_keys[i], key) == 0) {
            free(w->metadata_values[i]);
            w->metadata_values[i] = v;
            return 0;
        }
    if (w->n_metadata == w->cap_metadata) {
        int cap = w->cap_metadata ? 2 * w->cap_metadata : 8;
        char **keys = realloc(w->metadata_keys, (size_t)cap * sizeof(char *));
        if (keys) w->metadata_keys = keys;
        char **values = realloc(w->metadata_values, (size_t)cap * sizeof(char *));
        if (values) w->metadata_values = values;
        if (!keys || !values) {
            free(v);
            return -ENOMEM;
        }
        w->cap_metadata = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    w->metadata_keys[w->n_metadata] = k;
    w->metadata_values[w->n_metadata] = v;
    w->n_metadata++;
    return 0;
}

/* Data order: element size descending, insertion order within a size. The header is padded to
 * a multiple of 8 and each group's sizes are multiples of its element size, so every tensor
 * starts aligned to its element, as in files of the reference implementation. */
static int compare_entry_size(const void *a, const void *b)
{
    const struct safetensors_writer_entry *x = *(const struct safetensors_writer_entry *const *)a;
    const struct safetensors_writer_entry *y = *(const struct safetensors_writer_entry *const *)b;
    size_t sx = safetensors_dtype_size(x->dtype), sy = safetensors_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return x < y ? -1 : x > y; /* same array: address order is insertion order */
}

/* The padded JSON header of w with data in the given order, or NULL when out of memory. Every
 * jansson *_set_new and *_append_new steals its value even when it fails (and fails on a NULL
 * container), so checking each result is enough to neither leak nor crash under OOM. */
static char *header_build(const struct safetensors_writer *w,
                          const struct safetensors_writer_entry **order, size_t *len)
{
    json_t *root = json_object();
    bool ok = root != NULL;
    if (w->n_metadata > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < w->n_metadata; i++)
            ok &= json_object_set_new(meta, w->metadata_keys[i],
                                      json_string(w->metadata_values[i])) == 0;
        ok &= json_object_set_new(root, "__metadata__", meta) == 0;
    }

    /* Offsets follow the data order, while the header keeps insertion order. */
    size_t *begin = malloc((size_t)(w->n_entries ? w->n_entries : 1) * sizeof(size_t));
    ok &= begin != NULL;
    size_t at = 0;
    for (int i = 0; ok && i < w->n_entries; i++) {
        begin[order[i] - w->entries] = at;
        at += order[i]->nbytes;
    }
    for (int i = 0; ok && i < w->n_entries; i++) {
        const struct safetensors_writer_entry *e = &w->entries[i];
        json_t *t = json_object(), *shape = json_array(), *offsets = json_array();
        for (int d = 0; d < e->ndim; d++)
            ok &= json_array_append_new(shape, json_integer(e->shape[d])) == 0;
        ok &= json_array_append_new(offsets, json_integer((json_int_t)begin[i])) == 0;
        ok &= json_array_append_new(offsets, json_integer((json_int_t)(begin[i] + e->nbytes))) == 0;
        ok &= json_object_set_new(t, "dtype", json_string(safetensors_dtype_name(e->dtype))) == 0;
        ok &= json_object_set_new(t, "shape", shape) == 0;
        ok &= json_object_set_new(t, "data_offsets", offsets) == 0;
        ok &= json_object_set_new(root, e->name, t) == 0;
    }
    free(begin);
    char *json = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!json) return NULL;
    size_t n = strlen(json);
    size_t padded = (n + 7) & ~(size_t)7;
    char *header = realloc(json, 8 + padded);
    if (!header) {
        free(json);
        return NULL;
    }
    memmove(header + 8, header, n);
    memset(header + 8 + n, ' ', padded - n);
    for (int i = 0; i < 8; i++)
        header[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xff);
    *len = 8 + padded;
    return header;
}

static int entry_write(struct atomic_file *af, const struct safetensors_writer_entry *e,
                       void **chunk, struct progress *pr, char *err, size_t err_size)
{
    if (!e->fill) {
        progress_add(pr, (int64_t)e->nbytes);
        return atomic_write(af, e->data, e->nbytes, err, err_size);
    }
    if (!*chunk && !(*chunk = malloc(FILL_CHUNK)))
        return fail(err, err_size, -ENOMEM, "cannot write %s: out of memory", af->path);
    for (size_t off = 0; off < e->nbytes; off += FILL_CHUNK) {
        size_t len = e->nbytes - off < FILL_CHUNK ? e->nbytes - off : FILL_CHUNK;
        int rc = e->fill(e->fill_ctx, *chunk, off, len);
        if (rc < 0)
            return fail(err, err_size, rc, "cannot write %s: reading tensor '%.200s': %s", af->path,
                        e->name, strerror(-rc));
        if ((rc = atomic_write(af, *chunk, len, err, err_size)) < 0) return rc;
        progress_add(pr, (int64_t)len);
    }
    return 0;
}

int safetensors_writer_write(const struct safetensors_writer *w, const char *path, char *err,
                             size_t err_size)
{
    const struct safetensors_writer_entry **order =
        malloc((size_t)(w->n_entries ? w->n_entries : 1) * sizeof(*order));
    if (!order) return fail(err, err_size, -ENOMEM, "cannot write %s: out of memory", path);
    for (int i = 0; i < w->n_entries; i++)
        order[i] = &w->entries[i];
    qsort(order, (size_t)w->n_entries, sizeof(*order), compare_entry_size);
    size_t header_len;
    char *header = header_build(w, order, &header_len);
    if (!header) {
        free(order);
        return fail(err, err_size, -ENOMEM, "cannot write %s: out of memory building the header",
                    path);
    }

    struct atomic_file af;
    struct progress pr;
    void *chunk = NULL;
    int64_t total = 0;
    for (int i = 0; i < w->n_entries; i++)
        total += (int64_t)w->entries[i].nbytes;
    const char *base = strrchr(path, '/');
    progress_begin(&pr, "writing", "wrote", base ? base + 1 : path, total);
    int rc = atomic_begin(&af, path, err, err_size);
    if (rc == 0) rc = atomic_write(&af, header, header_len, err, err_size);
    for (int i = 0; rc == 0 && i < w->n_entries; i++)
        rc = entry_write(&af, order[i], &chunk, &pr, err, err_size);
    if (rc == 0)
        rc = atomic_commit(&af, err, err_size);
    else
        atomic_abort(&af);
    progress_end(&pr);
    free(chunk);
    free(header);
    free(order);
    return rc;
}
