/* test_safetensors.c: the safetensors reader and writer, and fs_write_atomic.
 *
 * Round trip of F32/F16/BF16/I32 tensors (a scalar, an empty one, one from a fill callback) with
 * metadata; a file laid out by the reference implementation; every corruption the reader must
 * reject with a message naming the file; writes that must fail cleanly (missing or unwritable
 * directory, a file-size limit standing in for a full disk, a failing fill callback) leaving the
 * destination untouched and no temporary file behind. Everything happens in a fresh directory
 * under $TMPDIR (or /tmp), removed at the end. */
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "../test_expect.h"

static char dir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

/* Bytes of path into a malloc'd buffer; *len its size. */
static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *p = malloc(*len + 1);
    if (!p || fread(p, 1, *len, fp) != *len) exit(1);
    fclose(fp);
    return p;
}

/* A file of the given header (padded with spaces to 8 bytes) and data bytes. */
static void write_file(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t n = strlen(header), padded = (n + 7) & ~(size_t)7;
    size_t len = 8 + padded + data_len;
    unsigned char *buf = malloc(len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, ' ', padded - n);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    write_bytes(path, buf, len);
    free(buf);
}

/* Entries of the test directory whose name contains ".tmp.": leftovers of a failed write. */
static int count_temporaries(void)
{
    DIR *d = opendir(dir);
    if (!d) exit(1);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Opening path must fail with rc, the message naming the file and containing what. */
static void expect_open_fails(const char *path, int rc, const char *what)
{
    struct safetensors_file f;
    char err[SAFETENSORS_ERR_SIZE] = "";
    int got = safetensors_open(&f, path, err, sizeof err);
    EXPECT(got == rc, "%s: got %d, want %d (%s)", path, got, rc, err);
    EXPECT(strstr(err, path) && strstr(err, what), "message '%s' lacks '%s' or the path", err,
           what);
    EXPECT(!strchr(err, '\n'), "message '%s' is not one line", err);
    if (got == 0) safetensors_close(&f);
}

static void expect_tensor(const struct safetensors_tensor *t, const char *name,
                          enum safetensors_dtype dtype, int ndim, const int64_t *shape,
                          const void *data, size_t nbytes)
{
    EXPECT(t != NULL, "tensor %s missing", name);
    if (!t) return;
    EXPECT(strcmp(t->name, name) == 0, "name %s, want %s", t->name, name);
    EXPECT(t->dtype == dtype, "%s: dtype %s, want %s", name, safetensors_dtype_name(t->dtype),
           safetensors_dtype_name(dtype));
    EXPECT(t->ndim == ndim, "%s: ndim %d, want %d", name, t->ndim, ndim);
    for (int i = 0; i < ndim && i < t->ndim; i++)
        EXPECT(t->shape[i] == shape[i], "%s: shape[%d] %lld, want %lld", name, i,
               (long long)t->shape[i], (long long)shape[i]);
    EXPECT(t->nbytes == nbytes, "%s: %zu bytes, want %zu", name, t->nbytes, nbytes);
    EXPECT(t->nbytes == nbytes && (nbytes == 0 || memcmp(t->data, data, nbytes) == 0),
           "%s: data differs", name);
    size_t align = safetensors_dtype_size(dtype);
    EXPECT((uintptr_t)t->data % align == 0, "%s: data misaligned for %zu-byte elements", name,
           align);
}

/* Fill callback: byte i of the tensor is (i * 7) & 0xff; ctx points at the failing errno or 0. */
static int fill_pattern(void *ctx, void *buf, size_t offset, size_t len)
{
    if (*(int *)ctx) return -*(int *)ctx;
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)buf)[i] = (unsigned char)((offset + i) * 7);
    return 0;
}

static void test_round_trip(void)
{
    enum { FILL_N = 3 << 20 }; /* over one fill chunk, not a multiple of it */
    float a[3][4];
    uint16_t h[5], bf[2][3];
    int32_t ids[7];
    float scalar = -3.5f;
    for (int i = 0; i < 12; i++)
        a[i / 4][i % 4] = 0.25f * (float)i - 1.0f;
    for (int i = 0; i < 5; i++)
        h[i] = dtype_f32_to_fp16((float)i * 1.5f - 2.0f);
    for (int i = 0; i < 6; i++)
        bf[i / 3][i % 3] = dtype_f32_to_bf16((float)i * 1e3f);
    for (int i = 0; i < 7; i++)
        ids[i] = i * 1000 - 3;
    unsigned char *pattern = malloc(FILL_N * 4);
    int no_error = 0;
    fill_pattern(&no_error, pattern, 0, FILL_N * 4);

    struct safetensors_writer w;
    safetensors_writer_init(&w);
    /* Inserted smallest element first so that the writer must reorder the data to align it. */
    EXPECT(safetensors_writer_add(&w, "h", SAFETENSORS_F16, 1, (int64_t[]){5}, h) == 0, "add");
    EXPECT(safetensors_writer_add(&w, "a", SAFETENSORS_F32, 2, (int64_t[]){3, 4}, a) == 0, "add");
    EXPECT(safetensors_writer_add(&w, "bf", SAFETENSORS_BF16, 2, (int64_t[]){2, 3}, bf) == 0,
           "add");
    EXPECT(safetensors_writer_add(&w, "ids", SAFETENSORS_I32, 1, (int64_t[]){7}, ids) == 0, "add");
    EXPECT(safetensors_writer_add(&w, "scalar", SAFETENSORS_F32, 0, NULL, &scalar) == 0, "add");
    EXPECT(safetensors_writer_add(&w, "empty", SAFETENSORS_F32, 2, (int64_t[]){0, 4}, NULL) == 0,
           "add");
    EXPECT(safetensors_writer_add_fill(&w, "filled", SAFETENSORS_F32, 1, (int64_t[]){FILL_N},
                                       fill_pattern, &no_error) == 0,
           "add_fill");
    EXPECT(safetensors_writer_set_metadata(&w, "format", "pt") == 0, "metadata");
    EXPECT(safetensors_writer_set_metadata(&w, "step", "9") == 0, "metadata");
    EXPECT(safetensors_writer_set_metadata(&w, "step", "10") == 0, "metadata");

    EXPECT(safetensors_writer_add(&w, "a", SAFETENSORS_F32, 1, (int64_t[]){1}, a) == -EEXIST,
           "duplicate name accepted");
    EXPECT(safetensors_writer_add(&w, "__metadata__", SAFETENSORS_F32, 1, (int64_t[]){1}, a) ==
               -EINVAL,
           "__metadata__ accepted as a tensor name");
    EXPECT(safetensors_writer_add(&w, "", SAFETENSORS_F32, 1, (int64_t[]){1}, a) == -EINVAL,
           "empty name accepted");
    EXPECT(safetensors_writer_add(&w, "neg", SAFETENSORS_F32, 1, (int64_t[]){-1}, a) == -EINVAL,
           "negative dimension accepted");
    EXPECT(safetensors_writer_add(&w, "deep", SAFETENSORS_F32, SAFETENSORS_MAX_DIMS + 1,
                                  (int64_t[SAFETENSORS_MAX_DIMS + 1]){0}, a) == -EINVAL,
           "too many dimensions accepted");
    EXPECT(safetensors_writer_add(&w, "null", SAFETENSORS_F32, 1, (int64_t[]){2}, NULL) == -EINVAL,
           "NULL data accepted");

    const char *path = tmp_path("rt.safetensors");
    char err[SAFETENSORS_ERR_SIZE] = "";
    int rc = safetensors_writer_write(&w, path, err, sizeof err);
    EXPECT(rc == 0, "write: %d %s", rc, err);
    safetensors_writer_free(&w);

    size_t len;
    unsigned char *raw = read_bytes(path, &len);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | raw[i];
    EXPECT(header_len % 8 == 0 && raw[8] == '{' &&
               (raw[8 + header_len - 1] == ' ' || raw[8 + header_len - 1] == '}'),
           "header of %llu bytes is not padded JSON", (unsigned long long)header_len);
    raw[8 + header_len] = 0;
    /* Insertion order in the header; metadata first as the reference writes it. */
    const char *json = (const char *)raw + 8;
    const char *order[] = {"\"__metadata__\"", "\"h\"",      "\"a\"",     "\"bf\"",
                           "\"ids\"",          "\"scalar\"", "\"empty\"", "\"filled\""};
    const char *prev = json;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(json, order[i]);
        EXPECT(at && at >= prev, "header out of insertion order at %s: %s", order[i], json);
        if (at) prev = at;
    }
    free(raw);

    struct safetensors_file f;
    rc = safetensors_open(&f, path, err, sizeof err);
    EXPECT(rc == 0, "open: %d %s", rc, err);
    if (rc < 0) return;
    EXPECT(f.n_tensors == 7, "%d tensors, want 7", f.n_tensors);
    expect_tensor(safetensors_find(&f, "a"), "a", SAFETENSORS_F32, 2, (int64_t[]){3, 4}, a,
                  sizeof a);
    expect_tensor(safetensors_find(&f, "h"), "h", SAFETENSORS_F16, 1, (int64_t[]){5}, h, sizeof h);
    expect_tensor(safetensors_find(&f, "bf"), "bf", SAFETENSORS_BF16, 2, (int64_t[]){2, 3}, bf,
                  sizeof bf);
    expect_tensor(safetensors_find(&f, "ids"), "ids", SAFETENSORS_I32, 1, (int64_t[]){7}, ids,
                  sizeof ids);
    expect_tensor(safetensors_find(&f, "scalar"), "scalar", SAFETENSORS_F32, 0, NULL, &scalar,
                  sizeof scalar);
    expect_tensor(safetensors_find(&f, "empty"), "empty", SAFETENSORS_F32, 2, (int64_t[]){0, 4},
                  NULL, 0);
    expect_tensor(safetensors_find(&f, "filled"), "filled", SAFETENSORS_F32, 1, (int64_t[]){FILL_N},
                  pattern, FILL_N * 4);
    EXPECT(safetensors_find(&f, "missing") == NULL, "found a tensor never written");
    EXPECT(safetensors_find(&f, "A") == NULL, "lookup is not case-sensitive");
    const char *fmt = safetensors_metadata(&f, "format"), *step = safetensors_metadata(&f, "step");
    EXPECT(fmt && strcmp(fmt, "pt") == 0, "metadata format = %s", fmt ? fmt : "(none)");
    EXPECT(step && strcmp(step, "10") == 0, "metadata step = %s", step ? step : "(none)");
    EXPECT(f.n_metadata == 2, "%d metadata entries, want 2", f.n_metadata);
    EXPECT(safetensors_metadata(&f, "missing") == NULL, "found metadata never written");
    enum dtype dt;
    EXPECT(safetensors_dtype_to_dtype(safetensors_find(&f, "bf")->dtype, &dt) == 0 &&
               dt == DTYPE_BF16 && safetensors_dtype_of(DTYPE_BF16) == SAFETENSORS_BF16,
           "BF16 does not map to DTYPE_BF16");
    EXPECT(safetensors_dtype_to_dtype(SAFETENSORS_I32, &dt) < 0, "I32 maps to a float dtype");
    safetensors_close(&f);

    /* Overwriting replaces the file whole. */
    safetensors_writer_init(&w);
    EXPECT(safetensors_writer_add(&w, "ids", SAFETENSORS_I32, 1, (int64_t[]){3}, ids) == 0, "add");
    rc = safetensors_writer_write(&w, path, err, sizeof err);
    EXPECT(rc == 0, "rewrite: %d %s", rc, err);
    safetensors_writer_free(&w);
    rc = safetensors_open(&f, path, err, sizeof err);
    EXPECT(rc == 0, "open: %d %s", rc, err);
    if (rc == 0) {
        EXPECT(f.n_tensors == 1 && f.n_metadata == 0, "rewritten file has %d tensors, %d metadata",
               f.n_tensors, f.n_metadata);
        expect_tensor(safetensors_find(&f, "ids"), "ids", SAFETENSORS_I32, 1, (int64_t[]){3}, ids,
                      3 * sizeof(int32_t));
        safetensors_close(&f);
    }
    EXPECT(count_temporaries() == 0, "temporary files left behind");
    free(pattern);
}

/* Generated by struct + json in the reference layout (data sorted by dtype then name, metadata
 * first, compact JSON padded with spaces):
 *   weight F32 [2,3] {0.5, -1, 2, 3.25, -0.125, 100}   ids I64 [3] {1, -2, 50256}
 *   half F16 [2] {1, -2.5}   bf BF16 [2] {1, 3.140625}   count I32 [2] {7, -7}
 *   scalar F32 [] 42         __metadata__ {"format": "pt"} */
static const unsigned char reference_file[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f, 0x6d, 0x65, 0x74, 0x61,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a, 0x7b, 0x22, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74,
    0x22, 0x3a, 0x22, 0x70, 0x74, 0x22, 0x7d, 0x2c, 0x22, 0x69, 0x64, 0x73, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x49, 0x36, 0x34, 0x22, 0x2c, 0x22, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f,
    0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x32, 0x34, 0x5d, 0x7d, 0x2c,
    0x22, 0x73, 0x63, 0x61, 0x6c, 0x61, 0x72, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65,
    0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a,
    0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73,
    0x22, 0x3a, 0x5b, 0x32, 0x34, 0x2c, 0x32, 0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x77, 0x65, 0x69, 0x67,
    0x68, 0x74, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33,
    0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c, 0x33, 0x5d,
    0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a,
    0x5b, 0x32, 0x38, 0x2c, 0x35, 0x32, 0x5d, 0x7d, 0x2c, 0x22, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x22,
    0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x49, 0x33, 0x32, 0x22, 0x2c,
    0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74,
    0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x35, 0x32, 0x2c, 0x36,
    0x30, 0x5d, 0x7d, 0x2c, 0x22, 0x62, 0x66, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65,
    0x22, 0x3a, 0x22, 0x42, 0x46, 0x31, 0x36, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22,
    0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65,
    0x74, 0x73, 0x22, 0x3a, 0x5b, 0x36, 0x30, 0x2c, 0x36, 0x34, 0x5d, 0x7d, 0x2c, 0x22, 0x68, 0x61,
    0x6c, 0x66, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x31,
    0x36, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x36,
    0x34, 0x2c, 0x36, 0x38, 0x5d, 0x7d, 0x7d, 0x20, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x50, 0xc4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x28, 0x42, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0xbf, 0x00, 0x00, 0x00, 0x40,
    0x00, 0x00, 0x50, 0x40, 0x00, 0x00, 0x00, 0xbe, 0x00, 0x00, 0xc8, 0x42, 0x07, 0x00, 0x00, 0x00,
    0xf9, 0xff, 0xff, 0xff, 0x80, 0x3f, 0x49, 0x40, 0x00, 0x3c, 0x00, 0xc1,
};

static void test_reference_file(void)
{
    const char *path = tmp_path("reference.safetensors");
    write_bytes(path, reference_file, sizeof reference_file);
    struct safetensors_file f;
    char err[SAFETENSORS_ERR_SIZE] = "";
    int rc = safetensors_open(&f, path, err, sizeof err);
    EXPECT(rc == 0, "open: %d %s", rc, err);
    if (rc < 0) return;
    EXPECT(f.n_tensors == 6, "%d tensors, want 6", f.n_tensors);
    float weight[] = {0.5f, -1, 2, 3.25f, -0.125f, 100};
    int64_t ids[] = {1, -2, 50256};
    uint16_t half[] = {0x3c00, 0xc100}, bf[] = {0x3f80, 0x4049};
    int32_t count[] = {7, -7};
    float scalar = 42;
    expect_tensor(safetensors_find(&f, "weight"), "weight", SAFETENSORS_F32, 2, (int64_t[]){2, 3},
                  weight, sizeof weight);
    expect_tensor(safetensors_find(&f, "ids"), "ids", SAFETENSORS_I64, 1, (int64_t[]){3}, ids,
                  sizeof ids);
    expect_tensor(safetensors_find(&f, "half"), "half", SAFETENSORS_F16, 1, (int64_t[]){2}, half,
                  sizeof half);
    expect_tensor(safetensors_find(&f, "bf"), "bf", SAFETENSORS_BF16, 1, (int64_t[]){2}, bf,
                  sizeof bf);
    expect_tensor(safetensors_find(&f, "count"), "count", SAFETENSORS_I32, 1, (int64_t[]){2}, count,
                  sizeof count);
    expect_tensor(safetensors_find(&f, "scalar"), "scalar", SAFETENSORS_F32, 0, NULL, &scalar,
                  sizeof scalar);
    const struct safetensors_tensor *t = safetensors_find(&f, "bf");
    EXPECT(t && dtype_bf16_to_f32(((const uint16_t *)t->data)[1]) == 3.140625f, "bf[1] wrong");
    const char *fmt = safetensors_metadata(&f, "format");
    EXPECT(fmt && strcmp(fmt, "pt") == 0, "metadata format = %s", fmt ? fmt : "(none)");
    safetensors_close(&f);

    /* The same file cut short: the last tensors' offsets now run past the end. */
    const char *cut = tmp_path("cut.safetensors");
    write_bytes(cut, reference_file, sizeof reference_file - 10);
    expect_open_fails(cut, -EINVAL, "outside");
}

static void test_corrupt_files(void)
{
    float data[4] = {1, 2, 3, 4};
    const char *p = tmp_path("bad.safetensors");

    expect_open_fails(tmp_path("does-not-exist.safetensors"), -ENOENT, "No such file");

    write_bytes(p, "\x10\0\0\0", 4);
    expect_open_fails(p, -EINVAL, "truncated");

    write_bytes(p, "\x00\x10\0\0\0\0\0\0{}      ", 16);
    expect_open_fails(p, -EINVAL, "past the end");

    write_bytes(p, "\xff\xff\xff\xff\xff\xff\xff\x7f{}      ", 16);
    expect_open_fails(p, -EINVAL, "header length");

    write_bytes(p, "\x00\0\0\0\0\0\0\0", 8);
    expect_open_fails(p, -EINVAL, "header length");

    write_file(p, "[1, 2]", NULL, 0);
    expect_open_fails(p, -EINVAL, "start with '{'");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], ", data, sizeof data);
    expect_open_fails(p, -EINVAL, "not valid JSON");

    write_file(p, "{\"a\": {\"dtype\": \"F32\"} } trailing", data, sizeof data);
    expect_open_fails(p, -EINVAL, "not valid JSON");

    write_file(p, "{\"a\": [1]}", data, sizeof data);
    expect_open_fails(p, -EINVAL, "not a JSON object");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4]}}", data, sizeof data);
    expect_open_fails(p, -EINVAL, "lacks");

    write_file(p, "{\"a\": {\"dtype\": \"F33\", \"shape\": [4], \"data_offsets\": [0, 16]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "unknown dtype 'F33'");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 12]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "need 16");

    write_file(p, "{\"a\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "need 8");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "non-negative");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "non-negative integer");

    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,4], "
               "\"data_offsets\": [0, 16]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "dimensions");

    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
               "\"data_offsets\": [0, 16]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "too large");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "outside");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "outside");

    write_file(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0]}}", data,
               sizeof data);
    expect_open_fails(p, -EINVAL, "two non-negative integers");

    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "overlap");

    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "duplicate");

    write_file(p,
               "{\"bad\\nname\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 8]}}",
               data, sizeof data);
    expect_open_fails(p, -EINVAL, "'bad?name'");

    write_file(p, "{\"__metadata__\": {\"format\": 1}}", NULL, 0);
    expect_open_fails(p, -EINVAL, "not a string");

    write_file(p, "{\"__metadata__\": [\"pt\"]}", NULL, 0);
    expect_open_fails(p, -EINVAL, "not a JSON object");

    /* Adjacent and empty tensors are not overlaps; an empty header is a valid empty file. */
    write_file(p,
               "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
               data, sizeof data);
    struct safetensors_file f;
    char err[SAFETENSORS_ERR_SIZE] = "";
    int rc = safetensors_open(&f, p, err, sizeof err);
    EXPECT(rc == 0 && f.n_tensors == 3, "adjacent tensors rejected: %d %s", rc, err);
    if (rc == 0) {
        const struct safetensors_tensor *b = safetensors_find(&f, "b");
        EXPECT(b && ((const float *)b->data)[1] == 4.0f, "b[1] wrong");
        safetensors_close(&f);
    }
    write_file(p, "{}", NULL, 0);
    rc = safetensors_open(&f, p, err, sizeof err);
    EXPECT(rc == 0 && f.n_tensors == 0 && safetensors_find(&f, "a") == NULL,
           "empty file rejected: %d %s", rc, err);
    if (rc == 0) safetensors_close(&f);
}

/* Writes one tensor to path; returns the writer's result and leaves the message in err. */
static int write_one(const char *path, const void *data, size_t n, safetensors_fill_fn fill,
                     void *ctx, char *err)
{
    struct safetensors_writer w;
    safetensors_writer_init(&w);
    int rc =
        fill ? safetensors_writer_add_fill(&w, "x", SAFETENSORS_F32, 1, (int64_t[]){(int64_t)n},
                                           fill, ctx)
             : safetensors_writer_add(&w, "x", SAFETENSORS_F32, 1, (int64_t[]){(int64_t)n}, data);
    if (rc == 0) rc = safetensors_writer_write(&w, path, err, SAFETENSORS_ERR_SIZE);
    safetensors_writer_free(&w);
    return rc;
}

static void expect_write_fails(int rc, int want, const char *err, const char *path)
{
    EXPECT(rc == want, "write %s: got %d, want %d (%s)", path, rc, want, err);
    EXPECT(strstr(err, path) != NULL, "message '%s' does not name %s", err, path);
}

static void test_write_failures(void)
{
    float data[16384] = {0};
    char err[SAFETENSORS_ERR_SIZE] = "";
    char path[300];

    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    expect_write_fails(write_one(path, data, 4, NULL, NULL, err), -ENOENT, err, path);

    const char *file = tmp_path("a-file");
    write_bytes(file, "x", 1);
    snprintf(path, sizeof path, "%s/x.safetensors", file);
    expect_write_fails(write_one(path, data, 4, NULL, NULL, err), -ENOTDIR, err, path);

    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/ro", dir);
        mkdir(path, 0555);
        snprintf(path, sizeof path, "%s/ro/x.safetensors", dir);
        expect_write_fails(write_one(path, data, 4, NULL, NULL, err), -EACCES, err, path);
        snprintf(path, sizeof path, "%s/ro", dir);
        rmdir(path);
    } else {
        printf("running as root: the read-only directory case is skipped (root writes anyway)\n");
    }

    /* The destination exists; failed rewrites must leave it byte for byte as it was. */
    const char *dst = tmp_path("keep.safetensors");
    float old[4] = {1, 2, 3, 4};
    EXPECT(write_one(dst, old, 4, NULL, NULL, err) == 0, "write %s: %s", dst, err);
    size_t before_len, after_len;
    unsigned char *before = read_bytes(dst, &before_len);

    /* A file-size limit makes write() fail part-way as a full disk would (EFBIG for ENOSPC). */
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {.rlim_cur = 4096, .rlim_max = saved.rlim_max};
    EXPECT(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit: %s", strerror(errno));
    int rc = write_one(dst, data, 16384, NULL, NULL, err);
    setrlimit(RLIMIT_FSIZE, &saved);
    expect_write_fails(rc, -EFBIG, err, dst);
    small.rlim_cur = 0;
    setrlimit(RLIMIT_FSIZE, &small);
    rc = fs_write_atomic(dst, "{\"n_layer\": 2}", 14, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &saved);
    expect_write_fails(rc, -EFBIG, err, dst);

    int eio = EIO;
    expect_write_fails(write_one(dst, NULL, 16384, fill_pattern, &eio, err), -EIO, err, dst);

    unsigned char *after = read_bytes(dst, &after_len);
    EXPECT(before_len == after_len && memcmp(before, after, before_len) == 0,
           "a failed write changed %s", dst);
    free(before);
    free(after);
    EXPECT(count_temporaries() == 0, "temporary files left behind");
}

static void test_write_atomic(void)
{
    const char *path = tmp_path("config.json");
    char err[SAFETENSORS_ERR_SIZE] = "";
    const char *v1 = "{\"n_layer\": 2}\n", *v2 = "{\"n_layer\": 24, \"n_head\": 16}\n";
    EXPECT(fs_write_atomic(path, v1, strlen(v1), err, sizeof err) == 0, "%s", err);
    EXPECT(fs_write_atomic(path, v2, strlen(v2), err, sizeof err) == 0, "%s", err);
    size_t len;
    unsigned char *got = read_bytes(path, &len);
    EXPECT(len == strlen(v2) && memcmp(got, v2, len) == 0, "config.json holds '%.*s'", (int)len,
           got);
    free(got);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/config.json", dir);
    int rc = fs_write_atomic(bad, v1, strlen(v1), err, sizeof err);
    EXPECT(rc == -ENOENT && strstr(err, bad), "got %d '%s'", rc, err);
    EXPECT(count_temporaries() == 0, "temporary files left behind");
}

int main(void)
{
    test_dir_make(dir, sizeof dir, NULL, "test_safetensors");
    test_round_trip();
    test_reference_file();
    test_corrupt_files();
    test_write_failures();
    test_write_atomic();
    test_dir_remove(dir);
    return test_finish("test_safetensors");
}
