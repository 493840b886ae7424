/* test_expect.h: what the runtime tests share: a failure counter, EXPECT, a fresh temporary
 * directory and its removal, a seeded byte pattern, and the closing "ok" / "N failures" line.
 *
 * EXPECT records a failure and goes on, so one run reports every broken check; test_finish turns
 * the count into the exit code. Header-only (static functions) so each test stays one
 * self-contained program. */
#ifndef GPT50B_TEST_EXPECT_H
#define GPT50B_TEST_EXPECT_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

/* Counts a failure and prints "FAIL line N: cond: message" when cond is false. */
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL line %d: %s: ", __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Makes a fresh directory parent/prefix.XXXXXX and writes its path to out. A NULL parent means
 * $TMPDIR, or /tmp where that is unset or empty. Exits 1 when it cannot be made: no test can
 * run without it. */
static inline void test_dir_make(char *out, size_t size, const char *parent, const char *prefix)
{
    if (!parent) parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(out, size, "%s/%s.XXXXXX", parent, prefix);
    if (!mkdtemp(out)) {
        perror(out);
        exit(1);
    }
}

static inline int test_dir_remove_entry(const char *path, const struct stat *st, int type,
                                        struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes path and everything below it, children first; symbolic links are removed, not
 * followed. Best effort: what cannot be removed stays. */
static inline void test_dir_remove(const char *path)
{
    nftw(path, test_dir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fills p with bytes that differ from block to block and from seed to seed, so a piece written to
 * the wrong offset or left out shows. */
static inline void test_fill_pattern(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, n - i < 8 ? n - i : 8);
    }
}

/* Compares got with what test_fill_pattern(seed) gives; reports the first differing byte. */
static inline void expect_pattern(const unsigned char *got, size_t n, uint64_t seed,
                                  const char *what)
{
    unsigned char *ref = malloc(n ? n : 1);
    if (!ref) exit(1);
    test_fill_pattern(ref, n, seed);
    size_t i = 0;
    while (i < n && got[i] == ref[i])
        i++;
    EXPECT(i == n, "%s: first difference at byte %zu of %zu: got 0x%02x, ref 0x%02x", what, i, n,
           i < n ? got[i] : 0, i < n ? ref[i] : 0);
    free(ref);
}

/* Prints "name: ok" or "name: N failures"; returns the exit code, 0 or 1. */
static inline int test_finish(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d failures\n", name, test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
