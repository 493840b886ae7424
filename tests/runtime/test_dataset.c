/* test_dataset.c: token datasets written by hand into a temporary directory, read back.
 *
 * Covers the llm.c format and Megatron indexed datasets (uint8, uint16, int32, int64 tokens,
 * opened by prefix, .bin and .idx), detection by content whatever the file name, and every error
 * dataset_open reports: each must return NULL with a one-line message naming the problem. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"

static int failures;
static char dir[] = "/tmp/test_dataset.XXXXXX";

static const char *path_in_dir(const char *name)
{
    static char path[4][320];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
        printf("FAIL: cannot write %s\n", path);
        exit(1);
    }
}

/* An llm.c file with the given header and ntok uint16 tokens tok[i] = 7 i mod 65536. */
static void write_llmc(const char *name, int32_t magic, int32_t version, int32_t count, size_t ntok)
{
    size_t len = 1024 + 2 * ntok;
    unsigned char *buf = calloc(1, len);
    int32_t header[3] = {magic, version, count};
    memcpy(buf, header, sizeof header);
    for (size_t i = 0; i < ntok; i++) {
        uint16_t t = (uint16_t)(7 * i);
        memcpy(buf + 1024 + 2 * i, &t, 2);
    }
    write_file(path_in_dir(name), buf, len);
    free(buf);
}

struct megatron {
    const char *magic;
    uint64_t version;
    uint8_t code;
    size_t item;             /* bytes per token */
    uint64_t nseq, ndoc;     /* header fields */
    const int32_t *sizes;    /* [nseq] */
    const int64_t *pointers; /* [nseq], NULL: back to back from 0 */
    size_t idx_cut;          /* bytes cut off the end of the .idx */
    const void *tokens;      /* .bin contents */
    size_t bin_bytes;
};

static void write_megatron(const char *prefix, const struct megatron *m)
{
    size_t len = 34 + 12 * m->nseq + 8 * m->ndoc;
    unsigned char *idx = calloc(1, len), *p = idx;
    memcpy(p, m->magic, 9);
    memcpy(p + 9, &m->version, 8);
    p[17] = m->code;
    memcpy(p + 18, &m->nseq, 8);
    memcpy(p + 26, &m->ndoc, 8);
    p += 34;
    int64_t at = 0;
    for (uint64_t k = 0; k < m->nseq; k++, p += 4)
        memcpy(p, &m->sizes[k], 4);
    for (uint64_t k = 0; k < m->nseq; k++, p += 8) {
        int64_t ptr = m->pointers ? m->pointers[k] : at;
        memcpy(p, &ptr, 8);
        at += m->sizes[k] * (int64_t)m->item;
    }
    for (uint64_t k = 0; k < m->ndoc; k++, p += 8) {
        int64_t doc = (int64_t)k;
        memcpy(p, &doc, 8);
    }
    char name[64];
    snprintf(name, sizeof name, "%s.idx", prefix);
    write_file(path_in_dir(name), idx, len - m->idx_cut);
    snprintf(name, sizeof name, "%s.bin", prefix);
    write_file(path_in_dir(name), m->tokens, m->bin_bytes);
    free(idx);
}

/* Opens name and checks it holds n tokens equal to ref[0..n) in the given format. */
static void expect_tokens(const char *name, const char *format, const int32_t *ref, size_t n)
{
    char err[512] = "";
    struct dataset *d = dataset_open(path_in_dir(name), err, sizeof err);
    if (!d) {
        printf("FAIL %s: does not open: %s\n", name, err);
        failures++;
        return;
    }
    if (strcmp(dataset_format(d), format) || dataset_ntokens(d) != n) {
        printf("FAIL %s: %s with %zu tokens, expected %s with %zu\n", name, dataset_format(d),
               dataset_ntokens(d), format, n);
        failures++;
        dataset_close(d);
        return;
    }
    int32_t *got = malloc((n + 1) * sizeof *got);
    dataset_read(d, 0, n, got);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != ref[i] || dataset_token(d, i) != ref[i]) {
            printf("FAIL %s: token %zu: read %d, token() %d, ref %d\n", name, i, got[i],
                   dataset_token(d, i), ref[i]);
            failures++;
            break;
        }
    }
    if (n > 3) {
        dataset_read(d, n - 3, 3, got);
        if (memcmp(got, ref + n - 3, 3 * sizeof *got)) {
            printf("FAIL %s: reading the last 3 tokens gives %d %d %d\n", name, got[0], got[1],
                   got[2]);
            failures++;
        }
    }
    free(got);
    dataset_close(d);
}

/* Opens name and checks it fails with a one-line message containing word. */
static void expect_error(const char *name, const char *word)
{
    char err[512] = "";
    struct dataset *d = dataset_open(path_in_dir(name), err, sizeof err);
    if (d || !strcasestr(err, word) || strchr(err, '\n')) {
        printf("FAIL %s: expected an error about \"%s\", got %s: \"%s\"\n", name, word,
               d ? "a dataset" : "NULL", err);
        failures++;
        dataset_close(d);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }

    /* llm.c: round trip, and detection by content under any name */
    enum { N = 1000 };
    int32_t ref[N];
    for (size_t i = 0; i < N; i++)
        ref[i] = (uint16_t)(7 * i);
    write_llmc("tokens.bin", 20240520, 1, N, N);
    write_llmc("tokens.idx", 20240520, 1, N, N);
    write_llmc("tokens", 20240520, 1, N, N);
    write_llmc("empty.bin", 20240520, 1, 0, 0);
    expect_tokens("tokens.bin", "llm.c uint16", ref, N);
    expect_tokens("tokens.idx", "llm.c uint16", ref, N);
    expect_tokens("tokens", "llm.c uint16", ref, N);
    expect_tokens("empty.bin", "llm.c uint16", ref, 0);

    /* Megatron: three sequences (one empty) of 5 + 0 + 7 tokens, in several dtypes */
    static const int32_t sizes[3] = {5, 0, 7};
    enum { M = 12 };
    int32_t ref32[M];
    uint16_t u16[M];
    uint8_t u8[M];
    int64_t i64[M];
    for (int i = 0; i < M; i++) {
        ref32[i] = 1000 * i * i + 3; /* beyond uint16 for the int32 and int64 files */
        u16[i] = (uint16_t)(50000 + i);
        u8[i] = (uint8_t)(250 - i);
        i64[i] = ref32[i];
    }
    struct megatron m = {"MMIDIDX\0\0", 1, 8, 2, 3, 2, sizes, NULL, 0, u16, sizeof u16};
    write_megatron("mega16", &m);
    m.code = 4, m.item = 4, m.tokens = ref32, m.bin_bytes = sizeof ref32;
    write_megatron("mega32", &m);
    m.code = 5, m.item = 8, m.tokens = i64, m.bin_bytes = sizeof i64;
    write_megatron("mega64", &m);
    m.code = 1, m.item = 1, m.tokens = u8, m.bin_bytes = sizeof u8;
    write_megatron("mega8", &m);
    int32_t ref16[M], ref8[M];
    for (int i = 0; i < M; i++)
        ref16[i] = u16[i], ref8[i] = u8[i];
    expect_tokens("mega16", "megatron uint16", ref16, M);
    expect_tokens("mega16.bin", "megatron uint16", ref16, M);
    expect_tokens("mega16.idx", "megatron uint16", ref16, M);
    expect_tokens("mega32", "megatron int32", ref32, M);
    expect_tokens("mega32.bin", "megatron int32", ref32, M);
    expect_tokens("mega64.idx", "megatron int64", ref32, M);
    expect_tokens("mega8", "megatron uint8", ref8, M);

    /* llm.c errors */
    expect_error("missing.bin", "no such file");
    write_llmc("short.bin", 20240520, 1, 1000, 512);
    expect_error("short.bin", "truncated");
    static const int32_t stub[25] = {20240520, 1, 0}; /* 100 bytes, less than the header */
    write_file(path_in_dir("stub.bin"), stub, sizeof stub);
    expect_error("stub.bin", "truncated");
    write_llmc("long.bin", 20240520, 1, 10, 20);
    expect_error("long.bin", "mismatch");
    write_llmc("v2.bin", 20240520, 2, N, N);
    expect_error("v2.bin", "version");
    write_llmc("magic.bin", 20240521, 1, N, N);
    expect_error("magic.bin", "magic");
    write_file(path_in_dir("tiny"), "ab", 2);
    expect_error("tiny", "magic");

    /* Megatron errors, each a variant of the valid uint16 pair */
    struct megatron bad = {"MMIDIDX\0\0", 1, 8, 2, 3, 2, sizes, NULL, 0, u16, sizeof u16};
    bad.magic = "MMIDIDY\0\0";
    write_megatron("badmagic", &bad);
    expect_error("badmagic.idx", "magic");
    bad.magic = "MMIDIDX\0\0", bad.version = 2;
    write_megatron("badversion", &bad);
    expect_error("badversion", "version");
    bad.version = 1, bad.code = 9;
    write_megatron("badcode", &bad);
    expect_error("badcode", "dtype");
    bad.code = 7;
    write_megatron("floatcode", &bad);
    expect_error("floatcode", "dtype");
    bad.code = 8, bad.bin_bytes = sizeof u16 - 2;
    write_megatron("shortbin", &bad);
    expect_error("shortbin", "mismatch");
    bad.bin_bytes = sizeof u16, bad.idx_cut = 9;
    write_megatron("shortidx", &bad);
    expect_error("shortidx.idx", "truncated");
    static const int64_t gap[3] = {0, 12, 12};
    bad.idx_cut = 0, bad.pointers = gap;
    write_megatron("gap", &bad);
    expect_error("gap", "back to back");
    bad.pointers = NULL;
    write_megatron("nobin", &bad);
    unlink(path_in_dir("nobin.bin"));
    expect_error("nobin", "no such file");
    int32_t negative[M];
    memcpy(negative, ref32, sizeof negative);
    negative[6] = -5;
    bad.code = 4, bad.item = 4, bad.tokens = negative, bad.bin_bytes = sizeof negative;
    write_megatron("negative", &bad);
    expect_error("negative", "negative");
    int64_t huge[M];
    memcpy(huge, i64, sizeof huge);
    huge[11] = (int64_t)1 << 40;
    bad.code = 5, bad.item = 8, bad.tokens = huge, bad.bin_bytes = sizeof huge;
    write_megatron("huge", &bad);
    expect_error("huge", "int32");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    if (failures) return 1;
    printf("ok: llm.c and Megatron datasets read back, every error reported\n");
    return 0;
}
