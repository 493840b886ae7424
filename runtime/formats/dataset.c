/* dataset.c: llm.c token files and Megatron indexed datasets behind one token-stream API.
 *
 * Both formats end up as one mmap of contiguous tokens of a fixed integer type: the llm.c file
 * after its 1 KiB header, or the whole Megatron .bin (whose sequences must lie back to back, as
 * Megatron's builder writes them). The .idx is only read at open to check it against the .bin. */
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define LLMC_MAGIC        20240520
#define LLMC_HEADER_BYTES (256 * sizeof(int32_t))
#define LLMC_FIX          "regenerate it with build/apps/tokenize"
#define MEGATRON_MAGIC    "MMIDIDX\0\0"
#define MEGATRON_HEADER   (9 + 8 + 1 + 8 + 8) /* magic, version, dtype, sequences, documents */
#define MEGATRON_FIX      "rebuild it with Megatron's tools/preprocess_data.py"

enum dataset_dtype {
    DATASET_DTYPE_U8,
    DATASET_DTYPE_I8,
    DATASET_DTYPE_I16,
    DATASET_DTYPE_I32,
    DATASET_DTYPE_I64,
    DATASET_DTYPE_U16,
};

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [DATASET_DTYPE_U8] = {"uint8", 1},  [DATASET_DTYPE_I8] = {"int8", 1},
    [DATASET_DTYPE_I16] = {"int16", 2}, [DATASET_DTYPE_I32] = {"int32", 4},
    [DATASET_DTYPE_I64] = {"int64", 8}, [DATASET_DTYPE_U16] = {"uint16", 2},
};

struct dataset {
    void *map; /* the mmap'd token file, NULL when it holds no tokens */
    size_t map_len;
    const void *tokens; /* first token inside map */
    size_t ntokens;
    enum dataset_dtype dtype;
    char format[32];
};

/* Writes the message, releases d, returns NULL: the one error exit of dataset_open. */
__attribute__((format(printf, 4, 5))) static struct dataset *
fail(struct dataset *d, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    dataset_close(d);
    return NULL;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Opens path read-only and returns the descriptor and its size, or -1 with errno set. */
static int open_sized(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return -1;
    int e = fstat(fd, &st)         ? errno
            : S_ISDIR(st.st_mode)  ? EISDIR
            : !S_ISREG(st.st_mode) ? EINVAL
                                   : 0;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    *size = (size_t)st.st_size;
    return fd;
}

/* mmaps len bytes of fd read-only (len > 0); NULL on failure. */
static void *map_file(int fd, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static bool starts_with_magic(int fd, size_t size, const void *magic, size_t n)
{
    char buf[16];
    return size >= n && pread(fd, buf, n, 0) == (ssize_t)n && !memcmp(buf, magic, n);
}

/* --- llm.c ------------------------------------------------------------------------------------ */

static struct dataset *open_llmc(struct dataset *d, const char *path, int fd, size_t size,
                                 char *err, size_t errlen)
{
    const char *fix = LLMC_FIX;
    if (size < LLMC_HEADER_BYTES)
        return fail(d, err, errlen,
                    "%s: truncated: %zu bytes, shorter than the %zu-byte header; %s", path, size,
                    LLMC_HEADER_BYTES, fix);
    d->map = map_file(fd, size);
    if (!d->map) return fail(d, err, errlen, "%s: cannot mmap: %s", path, strerror(errno));
    d->map_len = size;
    int32_t header[3];
    memcpy(header, d->map, sizeof header);
    if (header[1] != 1)
        return fail(d, err, errlen,
                    "%s: llm.c token file version %d is not supported (only version 1, uint16 "
                    "tokens); %s",
                    path, header[1], fix);
    if (header[2] < 0)
        return fail(d, err, errlen, "%s: corrupt header: token count %d; %s", path, header[2], fix);
    size_t held = (size - LLMC_HEADER_BYTES) / sizeof(uint16_t);
    if ((size_t)header[2] > held)
        return fail(d, err, errlen, "%s: truncated: header says %d tokens, file holds %zu; %s",
                    path, header[2], held, fix);
    if (size != LLMC_HEADER_BYTES + (size_t)header[2] * sizeof(uint16_t))
        return fail(d, err, errlen,
                    "%s: size mismatch: header says %d tokens, file is %zu bytes (expected %zu); "
                    "%s",
                    path, header[2], size, LLMC_HEADER_BYTES + (size_t)header[2] * sizeof(uint16_t),
                    fix);
    d->tokens = (const char *)d->map + LLMC_HEADER_BYTES;
    d->ntokens = (size_t)header[2];
    d->dtype = DATASET_DTYPE_U16;
    snprintf(d->format, sizeof d->format, "llm.c uint16");
    return d;
}

/* --- Megatron --------------------------------------------------------------------------------- */

static uint64_t load_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v); /* the .idx arrays start at odd offsets */
    return v;
}

/* Checks every token of a signed or 64-bit dtype; returns the index of the first bad one, or
 * SIZE_MAX. O(n), one sequential pass over the mapping. */
static size_t first_bad_token(const struct dataset *d, int64_t *value)
{
    for (size_t i = 0; i < d->ntokens; i++) {
        int64_t v;
        switch (d->dtype) {
        case DATASET_DTYPE_I8:
            v = ((const int8_t *)d->tokens)[i];
            break;
        case DATASET_DTYPE_I16:
            v = ((const int16_t *)d->tokens)[i];
            break;
        case DATASET_DTYPE_I32:
            v = ((const int32_t *)d->tokens)[i];
            break;
        case DATASET_DTYPE_I64:
            v = ((const int64_t *)d->tokens)[i];
            break;
        default:
            return SIZE_MAX;
        }
        if (v < 0 || v > INT32_MAX) {
            *value = v;
            return i;
        }
    }
    return SIZE_MAX;
}

/* Validates the index idx[0..size) and sets d->dtype and *total_bytes, the .bin size it implies.
 * Returns false with a message in msg. O(sequences). */
static bool check_index(struct dataset *d, const unsigned char *idx, size_t size,
                        const char *idx_path, uint64_t *total_bytes, char *msg, size_t msglen)
{
    const char *fix = MEGATRON_FIX;
    if (size < MEGATRON_HEADER) {
        snprintf(msg, msglen, "%s: truncated: %zu bytes, shorter than the %d-byte header; %s",
                 idx_path, size, MEGATRON_HEADER, fix);
        return false;
    }
    if (memcmp(idx, MEGATRON_MAGIC, 9)) {
        snprintf(msg, msglen, "%s: wrong magic: not a Megatron index (MMIDIDX); %s", idx_path, fix);
        return false;
    }
    uint64_t version = load_u64(idx + 9), nseq = load_u64(idx + 18), ndoc = load_u64(idx + 26);
    unsigned code = idx[17];
    /* Megatron's DType codes; -2 marks the floating-point ones */
    static const int dtype_of_code[9] = {-1,
                                         DATASET_DTYPE_U8,
                                         DATASET_DTYPE_I8,
                                         DATASET_DTYPE_I16,
                                         DATASET_DTYPE_I32,
                                         DATASET_DTYPE_I64,
                                         -2,
                                         -2,
                                         DATASET_DTYPE_U16};
    if (version != 1) {
        snprintf(msg, msglen, "%s: index version %llu is not supported (only version 1); %s",
                 idx_path, (unsigned long long)version, fix);
        return false;
    }
    if (code >= 9 || dtype_of_code[code] == -1) {
        snprintf(msg, msglen,
                 "%s: unknown dtype code %u (known: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, "
                 "8 uint16); %s",
                 idx_path, code, fix);
        return false;
    }
    if (dtype_of_code[code] == -2) {
        snprintf(msg, msglen, "%s: dtype code %u is floating point, token ids must be integers; %s",
                 idx_path, code, fix);
        return false;
    }
    d->dtype = (enum dataset_dtype)dtype_of_code[code];
    size_t item = dtype_info[d->dtype].size;
    /* sizes int32[nseq], pointers int64[nseq], doc_idx int64[ndoc]; bounding the counts by the
     * file size first keeps the sum from overflowing */
    if (nseq > size || ndoc > size || MEGATRON_HEADER + 12 * nseq + 8 * ndoc > size) {
        snprintf(msg, msglen,
                 "%s: truncated: header says %llu sequences and %llu documents, the file holds "
                 "only %zu bytes; %s",
                 idx_path, (unsigned long long)nseq, (unsigned long long)ndoc, size, fix);
        return false;
    }
    const unsigned char *sizes = idx + MEGATRON_HEADER, *pointers = sizes + 4 * nseq;
    uint64_t total = 0;
    for (uint64_t k = 0; k < nseq; k++) {
        int32_t len;
        memcpy(&len, sizes + 4 * k, sizeof len);
        uint64_t ptr = load_u64(pointers + 8 * k);
        if (len < 0) {
            snprintf(msg, msglen, "%s: sequence %llu has negative size %d; %s", idx_path,
                     (unsigned long long)k, len, fix);
            return false;
        }
        if (ptr != total) {
            snprintf(msg, msglen,
                     "%s: sequence %llu starts at byte %llu, not %llu: sequences must be stored "
                     "back to back, as Megatron's builder writes them; %s",
                     idx_path, (unsigned long long)k, (unsigned long long)ptr,
                     (unsigned long long)total, fix);
            return false;
        }
        total += (uint64_t)len * item;
    }
    *total_bytes = total;
    return true;
}

static struct dataset *open_megatron(struct dataset *d, const char *prefix, char *err,
                                     size_t errlen)
{
    char idx_path[4096], bin_path[4096];
    snprintf(idx_path, sizeof idx_path, "%s.idx", prefix);
    snprintf(bin_path, sizeof bin_path, "%s.bin", prefix);

    size_t size;
    int fd = open_sized(idx_path, &size);
    if (fd < 0)
        return fail(d, err, errlen, "%s: cannot open: %s; a Megatron dataset needs %s and %s",
                    idx_path, strerror(errno), idx_path, bin_path);
    unsigned char *idx = size > 0 ? map_file(fd, size) : NULL;
    close(fd);
    if (size > 0 && !idx)
        return fail(d, err, errlen, "%s: cannot mmap: %s", idx_path, strerror(errno));
    uint64_t total_bytes = 0;
    bool ok = check_index(d, idx, size, idx_path, &total_bytes, err, errlen);
    if (idx) munmap(idx, size);
    if (!ok) {
        dataset_close(d);
        return NULL;
    }

    fd = open_sized(bin_path, &size);
    if (fd < 0)
        return fail(d, err, errlen, "%s: cannot open: %s; a Megatron dataset needs %s and %s",
                    bin_path, strerror(errno), idx_path, bin_path);
    if (size != total_bytes) {
        close(fd);
        return fail(d, err, errlen,
                    "%s: idx/bin size mismatch: %s describes %llu bytes of %s tokens, %s holds "
                    "%zu; the two files must come from the same run; %s",
                    prefix, idx_path, (unsigned long long)total_bytes, dtype_info[d->dtype].name,
                    bin_path, size, MEGATRON_FIX);
    }
    if (size > 0) {
        d->map = map_file(fd, size);
        d->map_len = size;
    }
    close(fd);
    if (size > 0 && !d->map)
        return fail(d, err, errlen, "%s: cannot mmap: %s", bin_path, strerror(errno));
    d->tokens = d->map;
    d->ntokens = size / dtype_info[d->dtype].size;
    int64_t bad_value;
    size_t bad = first_bad_token(d, &bad_value);
    if (bad != SIZE_MAX)
        return fail(d, err, errlen, "%s: token %zu is %lld, %s; %s", bin_path, bad,
                    (long long)bad_value, bad_value < 0 ? "negative" : "which does not fit int32",
                    MEGATRON_FIX);
    snprintf(d->format, sizeof d->format, "megatron %s", dtype_info[d->dtype].name);
    return d;
}

/* --- dispatch --------------------------------------------------------------------------------- */

struct dataset *dataset_open(const char *path, char *err, size_t errlen)
{
    struct dataset *d = calloc(1, sizeof *d);
    CHECK_MSG(d, "out of memory");
    char prefix[4096];
    size_t size;
    int fd = open_sized(path, &size);
    if (fd < 0) {
        int e = errno;
        snprintf(prefix, sizeof prefix, "%s.idx", path);
        if (e == ENOENT && access(prefix, F_OK) == 0) return open_megatron(d, path, err, errlen);
        return fail(d, err, errlen,
                    "%s: cannot open: %s; give an llm.c token file (build/apps/tokenize writes "
                    "one) or a Megatron dataset prefix",
                    path, strerror(e));
    }
    int32_t magic = LLMC_MAGIC;
    if (starts_with_magic(fd, size, &magic, sizeof magic)) {
        struct dataset *r = open_llmc(d, path, fd, size, err, errlen);
        close(fd);
        return r;
    }
    bool is_idx = starts_with_magic(fd, size, MEGATRON_MAGIC, 9);
    close(fd);
    if (is_idx) {
        if (!has_suffix(path, ".idx"))
            return fail(d, err, errlen,
                        "%s: a Megatron index whose name does not end in .idx; rename it "
                        "PREFIX.idx next to PREFIX.bin",
                        path);
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(path) - 4), path);
        return open_megatron(d, prefix, err, errlen);
    }
    /* a Megatron .bin has no header of its own: recognise it by the index beside it */
    if (has_suffix(path, ".bin")) {
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(path) - 4), path);
        char idx_path[4096 + 4];
        snprintf(idx_path, sizeof idx_path, "%s.idx", prefix);
        int ifd = open_sized(idx_path, &size);
        bool megatron = ifd >= 0 && starts_with_magic(ifd, size, MEGATRON_MAGIC, 9);
        if (ifd >= 0) close(ifd);
        if (megatron) return open_megatron(d, prefix, err, errlen);
    }
    return fail(
        d, err, errlen,
        "%s: wrong magic: neither an llm.c token file (expected header[0] = %d) nor a Megatron "
        "dataset (PREFIX.idx starting with MMIDIDX); %s",
        path, LLMC_MAGIC, LLMC_FIX);
}

void dataset_close(struct dataset *d)
{
    if (!d) return;
    if (d->map) munmap(d->map, d->map_len);
    free(d);
}

size_t dataset_ntokens(const struct dataset *d)
{
    return d->ntokens;
}

const char *dataset_format(const struct dataset *d)
{
    return d->format;
}

size_t dataset_find_above(const struct dataset *d, int32_t max)
{
    for (size_t i = 0; i < d->ntokens; i++)
        if (dataset_token(d, i) > max) return i;
    return d->ntokens;
}

int32_t dataset_token(const struct dataset *d, size_t i)
{
    CHECK_MSG(i < d->ntokens, "token index past the end of the dataset");
    switch (d->dtype) {
    case DATASET_DTYPE_U8:
        return ((const uint8_t *)d->tokens)[i];
    case DATASET_DTYPE_I8:
        return ((const int8_t *)d->tokens)[i];
    case DATASET_DTYPE_I16:
        return ((const int16_t *)d->tokens)[i];
    case DATASET_DTYPE_I32:
        return ((const int32_t *)d->tokens)[i];
    case DATASET_DTYPE_I64:
        return (int32_t)((const int64_t *)d->tokens)[i];
    case DATASET_DTYPE_U16:
        return ((const uint16_t *)d->tokens)[i];
    }
    CHECK_MSG(0, "unknown dtype");
    return -1;
}

void dataset_read(const struct dataset *d, size_t start, size_t n, int32_t *out)
{
    CHECK_MSG(start <= d->ntokens && n <= d->ntokens - start, "read past the end of the dataset");
    /* one loop per type so each compiles to a widening copy */
    switch (d->dtype) {
#define DATASET_COPY(enum_value, type)                                                             \
    case enum_value:                                                                               \
        for (size_t i = 0; i < n; i++)                                                             \
            out[i] = (int32_t)((const type *)d->tokens)[start + i];                                \
        return;
        DATASET_COPY(DATASET_DTYPE_U8, uint8_t)
        DATASET_COPY(DATASET_DTYPE_I8, int8_t)
        DATASET_COPY(DATASET_DTYPE_I16, int16_t)
        DATASET_COPY(DATASET_DTYPE_I32, int32_t)
        DATASET_COPY(DATASET_DTYPE_I64, int64_t)
        DATASET_COPY(DATASET_DTYPE_U16, uint16_t)
#undef DATASET_COPY
    }
}
