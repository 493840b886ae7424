/* dataset.h: read-only token streams for training, memory-mapped from disk.
 *
 * Two on-disk formats are recognised by their content, never by the file name:
 *
 *   llm.c token file   256 int32 header (header[0] = 20240520, header[1] = 1, header[2] = number
 *                      of tokens), then the tokens as uint16. Written by build/apps/tokenize and
 *                      by llm.c's dev/data scripts. Version 2 (uint32 tokens) is not supported.
 *   Megatron indexed   PREFIX.idx ("MMIDIDX\0\0", uint64 version 1, uint8 dtype code, uint64
 *   dataset            sequence count, uint64 document count, int32 sizes[], int64 byte
 *                      pointers[], int64 doc_idx[]) next to PREFIX.bin holding the sequences back
 *                      to back. The sequences, in order, form the token stream. Name PREFIX,
 *                      PREFIX.idx or PREFIX.bin.
 *
 * Example:
 *     char err[512];
 *     struct dataset *d = dataset_open("data/brown.bin", err, sizeof err);
 *     if (!d) user_fail("%s", err);
 *     int32_t batch[B * T + 1];
 *     dataset_read(d, start, B * T + 1, batch);   // inputs batch[0..BT), targets batch[1..BT]
 *     dataset_close(d);
 *
 * Opening validates everything a later read relies on, so reads cannot fail: sizes, offsets, and
 * for signed or 64-bit token types every value (one pass over the data, O(tokens)). Token ids are
 * not checked against a vocabulary: the caller knows V. */
#ifndef GPT50B_DATASET_H
#define GPT50B_DATASET_H

#include <stddef.h>
#include <stdint.h>

struct dataset;

/* Opens the dataset at path. Returns NULL and writes one line saying what is wrong and what to do
 * into err (missing file, truncated file, wrong magic or version, unknown dtype, .idx/.bin size
 * mismatch, negative or out-of-int32 token values). */
struct dataset *dataset_open(const char *path, char *err, size_t errlen);
void dataset_close(struct dataset *d);

/* Number of tokens in the stream. */
size_t dataset_ntokens(const struct dataset *d);

/* Token i of the stream; i < dataset_ntokens(d). O(1). */
int32_t dataset_token(const struct dataset *d, size_t i);

/* The position of the first token above max, or dataset_ntokens(d) when there is none: the
 * check of every token id against the model's vocabulary when the data is opened. O(tokens),
 * one sequential pass over the mapped file. */
size_t dataset_find_above(const struct dataset *d, int32_t max);

/* Copies tokens [start, start + n) into out; start + n <= dataset_ntokens(d). Touches the pages
 * it reads, so the first read of a range may wait for the disk. */
void dataset_read(const struct dataset *d, size_t start, size_t n, int32_t *out);

/* A short description of the format, e.g. "llm.c uint16" or "megatron int32". */
const char *dataset_format(const struct dataset *d);

#endif
