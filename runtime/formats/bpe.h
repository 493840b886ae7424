/* bpe.h: the GPT-2 byte-level BPE tokenizer (OpenAI's encoder.py, in C).
 *
 * Text is cut into pre-tokens by GPT-2's pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * and each pre-token's UTF-8 bytes are merged pairwise by rank (vocab.bpe, line order) into ids of
 * encoder.json. The result equals encoder.py's for ASCII text. Outside ASCII the Unicode classes
 * are approximated: whitespace (Unicode White_Space), Latin-1 digits and fractions, and the common
 * punctuation and symbol blocks (Latin-1 signs, general punctuation, currency, arrows, math, box
 * drawing, dingbats, CJK punctuation, emoji, combining marks) are classified as GPT-2 does; every
 * other code point, and every byte of invalid UTF-8, counts as a letter. The literal text
 * "<|endoftext|>" is encoded as ordinary text; the end-of-text id comes from bpe_eot().
 *
 * Example:
 *     char err[256];
 *     struct bpe *b = bpe_load("gpt2/encoder.json", "gpt2/vocab.bpe", err, sizeof err);
 *     if (!b) user_fail("%s", err);
 *     int32_t *ids;
 *     size_t n = bpe_encode(b, "Hello world", 11, &ids);    // n == 2, ids == {15496, 995}
 *     char *text = bpe_decode(b, ids, n, NULL);             // "Hello world"
 *     free(text); free(ids); bpe_free(b);
 *
 * A struct bpe caches the tokens of every pre-token it has seen, so encoding mutates it: use one
 * per thread. Decoding does not touch the cache. */
#ifndef GPT50B_BPE_H
#define GPT50B_BPE_H

#include <stddef.h>
#include <stdint.h>

struct bpe;

/* Loads encoder.json (token string -> id) and vocab.bpe (merges, highest priority first). Returns
 * NULL and writes a one-line reason into err on failure (missing file, bad JSON, a merge whose
 * parts or result are not in the vocabulary). Takes about 0.1 s. */
struct bpe *bpe_load(const char *encoder_json, const char *vocab_bpe, char *err, size_t errlen);
void bpe_free(struct bpe *b);

/* Number of ids (50257 for GPT-2): every id is in [0, bpe_vocab_size). */
int32_t bpe_vocab_size(const struct bpe *b);

/* Id of "<|endoftext|>" (50256 for GPT-2), or -1 when the vocabulary has none. */
int32_t bpe_eot(const struct bpe *b);

/* Encodes text[0..len) (UTF-8, need not be NUL-terminated) into a new malloc'd array *tokens
 * (caller frees; NULL when the result is empty) and returns its length. O(len) once the cache
 * holds the text's words; a new pre-token of k bytes costs O(k^2). */
size_t bpe_encode(struct bpe *b, const char *text, size_t len, int32_t **tokens);

/* The bytes of one id (not NUL-terminated; a token may hold part of a UTF-8 character), or NULL
 * when id is outside [0, bpe_vocab_size). */
const char *bpe_token_bytes(const struct bpe *b, int32_t id, size_t *len);

/* Concatenates the bytes of tokens[0..n) into a new malloc'd NUL-terminated string (caller frees)
 * and stores its length in *len when len is not NULL. Returns NULL when an id is out of range. */
char *bpe_decode(const struct bpe *b, const int32_t *tokens, size_t n, size_t *len);

#endif
