/* bpe.c: GPT-2 byte-level BPE (see bpe.h for the contract and the Unicode approximation).
 *
 * encoder.json maps strings to ids, where each byte is spelled as one printable code point
 * (bytes_to_unicode in OpenAI's encoder.py). We undo that spelling once at load, so everything
 * after works on raw bytes and ids: a merge "A B" of vocab.bpe becomes the pair (id A, id B) with
 * its rank and the id of A+B, and BPE of a pre-token starts from its byte ids and merges the pair
 * of lowest rank until none is left. Since ids and token strings correspond one to one, this
 * gives encoder.py's tokens exactly. Words already seen come from a cache. */
#include "bpe.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The cache forgets everything past this many words, which bounds its memory on large corpora;
 * longer words are not cached (rare, and their key would dominate the arena). */
#define BPE_CACHE_MAX_WORDS (1u << 18)
#define BPE_CACHE_MAX_LEN   256

struct merge {
    uint64_t pair; /* id A << 32 | id B; UINT64_MAX marks an empty slot */
    int32_t rank;  /* line of vocab.bpe, 0 first: lower merges first */
    int32_t id;    /* id of A+B */
};

struct cache_entry {
    uint64_t hash; /* 0 marks an empty slot */
    uint32_t key_off, key_len, tok_off, ntok;
};

struct bpe {
    int32_t vocab_size;
    int32_t eot;
    int32_t byte_id[256];
    char *tok_bytes;     /* the bytes of every token, in encoder.json's order */
    uint32_t *tok_start; /* [vocab_size] offset of each id's bytes in tok_bytes */
    uint32_t *tok_len;   /* [vocab_size] */

    struct merge *merges; /* open addressing, merge_mask + 1 slots */
    uint64_t merge_mask;

    struct cache_entry *cache; /* open addressing, cache_mask + 1 slots */
    uint64_t cache_mask;
    uint32_t cache_words;
    char *cache_keys;
    size_t cache_keys_len, cache_keys_cap;
    int32_t *cache_toks;
    size_t cache_toks_len, cache_toks_cap;

    int32_t *sym, *rank; /* BPE scratch: symbols of the word and rank of (sym[i], sym[i+1]) */
    bool *dirty;
    size_t scratch_cap;
};

/* Grows *buf (element size elem) to hold at least need elements; doubling keeps appends O(1). */
static void grow(void *buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p = realloc(*(void **)buf, c * elem);
    CHECK_MSG(p, "out of memory");
    *(void **)buf = p;
    *cap = c;
}

/* --- byte <-> unicode spelling of encoder.json ------------------------------------------------ */

/* encoder.py's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * (controls, space, 0x7f-0xa0, 0xad) become code points 256, 257, ... in byte order. */
static void bytes_to_unicode(uint32_t cp[256])
{
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        cp[b] = printable ? (uint32_t)b : 256 + n++;
    }
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2; /* the spelling uses code points below 0x800 only */
}

/* Decodes one UTF-8 sequence at s[0..n) into *cp and returns its length; invalid or truncated
 * sequences read as the single byte (cp = the byte, length 1) so every input byte is consumed. */
static size_t utf8_get(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80                ? 1
                 : c >= 0xc2 && c < 0xe0 ? 2
                 : c >= 0xe0 && c < 0xf0 ? 3
                 : c >= 0xf0 && c < 0xf5 ? 4
                                         : 0;
    if (len == 1 || len == 0 || len > n) {
        *cp = c;
        return 1;
    }
    uint32_t v = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_cp[len] || v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
        *cp = c;
        return 1;
    }
    *cp = v;
    return len;
}

/* --- character classes of the pre-tokenizer -------------------------------------------------- */

enum char_class { CHAR_CLASS_SPACE, CHAR_CLASS_LETTER, CHAR_CLASS_NUMBER, CHAR_CLASS_OTHER };

/* Non-ASCII code points that are not \p{L}, sorted: whitespace is Unicode White_Space (what the
 * regex module's \s matches), the rest is checked against the regex module. Anything absent is
 * taken for a letter. */
static const struct {
    uint32_t lo, hi;
    enum char_class cls;
} unicode_classes[] = {
    {0x80, 0x84, CHAR_CLASS_OTHER},       {0x85, 0x85, CHAR_CLASS_SPACE},
    {0x86, 0x9f, CHAR_CLASS_OTHER},       {0xa0, 0xa0, CHAR_CLASS_SPACE},
    {0xa1, 0xa9, CHAR_CLASS_OTHER},       {0xab, 0xb1, CHAR_CLASS_OTHER},
    {0xb2, 0xb3, CHAR_CLASS_NUMBER},      {0xb4, 0xb4, CHAR_CLASS_OTHER},
    {0xb6, 0xb8, CHAR_CLASS_OTHER},       {0xb9, 0xb9, CHAR_CLASS_NUMBER},
    {0xbb, 0xbb, CHAR_CLASS_OTHER},       {0xbc, 0xbe, CHAR_CLASS_NUMBER},
    {0xbf, 0xbf, CHAR_CLASS_OTHER},       {0xd7, 0xd7, CHAR_CLASS_OTHER},
    {0xf7, 0xf7, CHAR_CLASS_OTHER},       {0x300, 0x36f, CHAR_CLASS_OTHER},
    {0x660, 0x669, CHAR_CLASS_NUMBER},    {0x6f0, 0x6f9, CHAR_CLASS_NUMBER},
    {0x966, 0x96f, CHAR_CLASS_NUMBER},    {0x1680, 0x1680, CHAR_CLASS_SPACE},
    {0x2000, 0x200a, CHAR_CLASS_SPACE},   {0x200b, 0x2027, CHAR_CLASS_OTHER},
    {0x2028, 0x2029, CHAR_CLASS_SPACE},   {0x202a, 0x202e, CHAR_CLASS_OTHER},
    {0x202f, 0x202f, CHAR_CLASS_SPACE},   {0x2030, 0x205e, CHAR_CLASS_OTHER},
    {0x205f, 0x205f, CHAR_CLASS_SPACE},   {0x2060, 0x206f, CHAR_CLASS_OTHER},
    {0x2070, 0x2070, CHAR_CLASS_NUMBER},  {0x2074, 0x2079, CHAR_CLASS_NUMBER},
    {0x207a, 0x207e, CHAR_CLASS_OTHER},   {0x2080, 0x2089, CHAR_CLASS_NUMBER},
    {0x208a, 0x208f, CHAR_CLASS_OTHER},   {0x20a0, 0x20ff, CHAR_CLASS_OTHER},
    {0x2150, 0x2182, CHAR_CLASS_NUMBER},  {0x2185, 0x2189, CHAR_CLASS_NUMBER},
    {0x218a, 0x245f, CHAR_CLASS_OTHER},   {0x2460, 0x249b, CHAR_CLASS_NUMBER},
    {0x249c, 0x24e9, CHAR_CLASS_OTHER},   {0x24ea, 0x24ff, CHAR_CLASS_NUMBER},
    {0x2500, 0x2775, CHAR_CLASS_OTHER},   {0x2776, 0x2793, CHAR_CLASS_NUMBER},
    {0x2794, 0x2bff, CHAR_CLASS_OTHER},   {0x3000, 0x3000, CHAR_CLASS_SPACE},
    {0x3001, 0x3004, CHAR_CLASS_OTHER},   {0x3007, 0x3007, CHAR_CLASS_NUMBER},
    {0x3008, 0x3020, CHAR_CLASS_OTHER},   {0x3021, 0x3029, CHAR_CLASS_NUMBER},
    {0x302a, 0x3030, CHAR_CLASS_OTHER},   {0xfe00, 0xfe6f, CHAR_CLASS_OTHER},
    {0xfeff, 0xfeff, CHAR_CLASS_OTHER},   {0xff00, 0xff0f, CHAR_CLASS_OTHER},
    {0xff10, 0xff19, CHAR_CLASS_NUMBER},  {0xff1a, 0xff20, CHAR_CLASS_OTHER},
    {0xff3b, 0xff40, CHAR_CLASS_OTHER},   {0xff5b, 0xff65, CHAR_CLASS_OTHER},
    {0x1f000, 0x1f0ff, CHAR_CLASS_OTHER}, {0x1f100, 0x1f10c, CHAR_CLASS_NUMBER},
    {0x1f10d, 0x1faff, CHAR_CLASS_OTHER}, {0xe0000, 0xe007f, CHAR_CLASS_OTHER},
};

static enum char_class unicode_class(uint32_t cp)
{
    size_t lo = 0, hi = sizeof unicode_classes / sizeof unicode_classes[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp > unicode_classes[mid].hi)
            lo = mid + 1;
        else if (cp < unicode_classes[mid].lo)
            hi = mid;
        else
            return unicode_classes[mid].cls;
    }
    return CHAR_CLASS_LETTER;
}

/* Class of the character at s[0..n) (n >= 1); stores its length in bytes in *len. */
static enum char_class char_class(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *len = 1;
        if (c == ' ' || (c >= '\t' && c <= '\r')) return CHAR_CLASS_SPACE;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CHAR_CLASS_LETTER;
        if (c >= '0' && c <= '9') return CHAR_CLASS_NUMBER;
        return CHAR_CLASS_OTHER;
    }
    uint32_t cp;
    *len = utf8_get(s, n, &cp);
    return *len == 1 ? CHAR_CLASS_LETTER : unicode_class(cp);
}

/* End of the pre-token that starts at s[i] (i < n): one match of GPT-2's pattern, whose
 * alternatives are tried in order, the first that matches winning. */
static size_t pretoken_end(const unsigned char *s, size_t n, size_t i)
{
    if (s[i] == '\'' && i + 1 < n) {
        unsigned c = s[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n && ((c == 'r' && s[i + 2] == 'e') || (c == 'v' && s[i + 2] == 'e') ||
                          (c == 'l' && s[i + 2] == 'l')))
            return i + 3;
    }
    size_t len, start = i;
    enum char_class cls = char_class(s + i, n - i, &len);
    if (s[i] == ' ' && i + 1 < n) {
        /* " ?\p{L}+" and friends: a single space leads a run of any non-space class */
        size_t len2;
        enum char_class next = char_class(s + i + 1, n - i - 1, &len2);
        if (next != CHAR_CLASS_SPACE) {
            cls = next;
            start = i + 1;
            len = len2;
        }
    }
    if (cls != CHAR_CLASS_SPACE) {
        size_t j = start + len;
        while (j < n && char_class(s + j, n - j, &len) == cls)
            j += len;
        return j;
    }
    /* "\s+(?!\S)|\s+": a whitespace run, less its last character when a non-space follows and
     * the run has more than one, so that the last space can lead the next word. */
    size_t j = i, last = i;
    while (j < n && char_class(s + j, n - j, &len) == CHAR_CLASS_SPACE) {
        last = j;
        j += len;
    }
    return j < n && last > i ? last : j;
}

/* --- merges ----------------------------------------------------------------------------------- */

static uint64_t hash64(uint64_t x)
{
    return x * 0x9e3779b97f4a7c15ull;
}

static struct merge *merge_slot(const struct bpe *b, int32_t a, int32_t c)
{
    uint64_t pair = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
    for (uint64_t h = hash64(pair) >> 20;; h++) {
        struct merge *m = &b->merges[h & b->merge_mask];
        if (m->pair == pair || m->pair == UINT64_MAX) return m;
    }
}

static int32_t merge_rank(const struct bpe *b, int32_t a, int32_t c)
{
    const struct merge *m = merge_slot(b, a, c);
    return m->pair == UINT64_MAX ? INT32_MAX : m->rank;
}

/* BPE of one word: fills b->sym[0..return) with its ids. Each round finds the lowest-ranked
 * adjacent pair and merges its occurrences left to right, as encoder.py does; only the ranks
 * next to a merge are looked up again. O(k) per round, at most k rounds. */
static size_t bpe_word(struct bpe *b, const unsigned char *w, size_t k)
{
    if (k > b->scratch_cap) {
        b->scratch_cap = k;
        b->sym = realloc(b->sym, k * sizeof *b->sym);
        b->rank = realloc(b->rank, k * sizeof *b->rank);
        b->dirty = realloc(b->dirty, k * sizeof *b->dirty);
        CHECK_MSG(b->sym && b->rank && b->dirty, "out of memory");
    }
    int32_t *sym = b->sym, *rank = b->rank;
    bool *dirty = b->dirty;
    size_t m = k;
    for (size_t i = 0; i < m; i++)
        sym[i] = b->byte_id[w[i]];
    for (size_t i = 0; i + 1 < m; i++)
        rank[i] = merge_rank(b, sym[i], sym[i + 1]);
    rank[m - 1] = INT32_MAX;
    for (;;) {
        int32_t best = INT32_MAX;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < best) best = rank[i], at = i;
        if (best == INT32_MAX) break;
        int32_t merged = merge_slot(b, sym[at], sym[at + 1])->id;
        /* ranks are unique per pair, so rank[i] == best marks the occurrences */
        size_t out = 0;
        for (size_t i = 0; i < m; out++) {
            dirty[out] = false;
            if (i + 1 < m && rank[i] == best) {
                sym[out] = merged;
                dirty[out] = true;
                if (out > 0) dirty[out - 1] = true;
                i += 2;
            } else {
                sym[out] = sym[i];
                rank[out] = rank[i];
                i++;
            }
        }
        m = out;
        for (size_t i = 0; i < m; i++)
            if (dirty[i]) rank[i] = i + 1 < m ? merge_rank(b, sym[i], sym[i + 1]) : INT32_MAX;
    }
    return m;
}

/* --- word cache ------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const unsigned char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h | 1; /* 0 marks empty slots */
}

static struct cache_entry *cache_slot(const struct bpe *b, uint64_t h, const unsigned char *w,
                                      size_t k)
{
    for (uint64_t i = h;; i++) {
        struct cache_entry *e = &b->cache[i & b->cache_mask];
        if (e->hash == 0) return e;
        if (e->hash == h && e->key_len == k && !memcmp(b->cache_keys + e->key_off, w, k)) return e;
    }
}

static void cache_reset(struct bpe *b, uint64_t slots)
{
    free(b->cache);
    b->cache = calloc(slots, sizeof *b->cache);
    CHECK_MSG(b->cache, "out of memory");
    b->cache_mask = slots - 1;
    b->cache_words = 0;
    b->cache_keys_len = 0;
    b->cache_toks_len = 0;
}

static void cache_insert(struct bpe *b, uint64_t h, const unsigned char *w, size_t k,
                         const int32_t *toks, size_t ntok)
{
    if (b->cache_words >= BPE_CACHE_MAX_WORDS) cache_reset(b, b->cache_mask + 1);
    if (2 * (b->cache_words + 1) > b->cache_mask + 1) {
        struct cache_entry *old = b->cache;
        uint64_t old_slots = b->cache_mask + 1;
        b->cache = calloc(2 * old_slots, sizeof *b->cache);
        CHECK_MSG(b->cache, "out of memory");
        b->cache_mask = 2 * old_slots - 1;
        for (uint64_t i = 0; i < old_slots; i++)
            if (old[i].hash) {
                uint64_t j = old[i].hash;
                while (b->cache[j & b->cache_mask].hash)
                    j++;
                b->cache[j & b->cache_mask] = old[i];
            }
        free(old);
    }
    grow(&b->cache_keys, &b->cache_keys_cap, b->cache_keys_len + k, 1);
    grow(&b->cache_toks, &b->cache_toks_cap, b->cache_toks_len + ntok, sizeof *toks);
    struct cache_entry *e = cache_slot(b, h, w, k);
    *e = (struct cache_entry){h, (uint32_t)b->cache_keys_len, (uint32_t)k,
                              (uint32_t)b->cache_toks_len, (uint32_t)ntok};
    memcpy(b->cache_keys + b->cache_keys_len, w, k);
    memcpy(b->cache_toks + b->cache_toks_len, toks, ntok * sizeof *toks);
    b->cache_keys_len += k;
    b->cache_toks_len += ntok;
    b->cache_words++;
}

/* --- loading ---------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %m; run scripts/fetch-data.sh to get it", path);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        grow(&buf, &cap, n + 65536 + 1, 1);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error; check the file and the disk", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Id of key[0..n) in the encoder object, or -1. */
static int32_t vocab_id(json_t *enc, const char *key, size_t n)
{
    json_t *v = json_object_getn(enc, key, n);
    return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

static bool load_vocab(struct bpe *b, const char *path, json_t *enc, char *err, size_t errlen)
{
    if (!json_is_object(enc) || json_object_size(enc) == 0 || json_object_size(enc) > (1u << 24)) {
        snprintf(err, errlen, "%s: not a GPT-2 encoder.json (expected an object of token -> id)",
                 path);
        return false;
    }
    uint32_t cp_of_byte[256];
    int byte_of_cp[512];
    bytes_to_unicode(cp_of_byte);
    memset(byte_of_cp, -1, sizeof byte_of_cp);
    for (int c = 0; c < 256; c++)
        byte_of_cp[cp_of_byte[c]] = c;

    b->vocab_size = (int32_t)json_object_size(enc);
    b->tok_start = malloc((size_t)b->vocab_size * sizeof *b->tok_start);
    b->tok_len = malloc((size_t)b->vocab_size * sizeof *b->tok_len);
    CHECK_MSG(b->tok_start && b->tok_len, "out of memory");
    memset(b->tok_len, 0xff, (size_t)b->vocab_size * sizeof *b->tok_len); /* UINT32_MAX: unseen */
    size_t cap = 0, used = 0;
    const char *key;
    json_t *val;
    json_object_foreach(enc, key, val)
    {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= b->vocab_size || b->tok_len[id] != UINT32_MAX) {
            snprintf(err, errlen, "%s: token \"%s\" has id %lld, not a fresh id in [0, %d)", path,
                     key, (long long)id, b->vocab_size);
            return false;
        }
        const unsigned char *s = (const unsigned char *)key;
        size_t n = strlen(key);
        grow(&b->tok_bytes, &cap, used + n, 1); /* the byte spelling is never longer */
        b->tok_start[id] = (uint32_t)used;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += utf8_get(s + i, n - i, &cp);
            if (cp >= 512 || byte_of_cp[cp] < 0) {
                snprintf(err, errlen, "%s: token \"%s\" holds U+%04X, not a GPT-2 byte character",
                         path, key, cp);
                return false;
            }
            b->tok_bytes[used++] = (char)byte_of_cp[cp];
        }
        b->tok_len[id] = (uint32_t)(used - b->tok_start[id]);
    }
    for (int c = 0; c < 256; c++) {
        char spelled[2];
        size_t n = utf8_put(spelled, cp_of_byte[c]);
        b->byte_id[c] = vocab_id(enc, spelled, n);
        if (b->byte_id[c] < 0) {
            snprintf(err, errlen, "%s: byte 0x%02x has no token; not a GPT-2 byte-level vocabulary",
                     path, c);
            return false;
        }
    }
    b->eot = vocab_id(enc, "<|endoftext|>", 13);
    return true;
}

/* Reads vocab.bpe: an optional "#version" line, then one merge "A B" per line, A and B spelled
 * as in encoder.json. */
static bool load_merges(struct bpe *b, const char *path, json_t *enc, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return false;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    uint64_t slots = 1024;
    while (slots < 2 * lines)
        slots *= 2;
    b->merges = malloc(slots * sizeof *b->merges);
    CHECK_MSG(b->merges, "out of memory");
    for (uint64_t i = 0; i < slots; i++)
        b->merges[i].pair = UINT64_MAX;
    b->merge_mask = slots - 1;

    char joined[1024];
    int32_t rank = 0;
    size_t lineno = 0;
    bool ok = true;
    for (char *line = text, *next; line < text + len && ok; line = next) {
        next = memchr(line, '\n', (size_t)(text + len - line));
        next = next ? next + 1 : text + len;
        lineno++;
        size_t n = (size_t)(next - line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0 || (lineno == 1 && !strncmp(line, "#version", 8))) continue;
        char *sp = memchr(line, ' ', n);
        size_t na = sp ? (size_t)(sp - line) : 0, nb = sp ? n - na - 1 : 0;
        int32_t a = sp ? vocab_id(enc, line, na) : -1;
        int32_t c = sp ? vocab_id(enc, sp + 1, nb) : -1;
        int32_t ab = -1;
        if (a >= 0 && c >= 0 && na + nb <= sizeof joined) {
            memcpy(joined, line, na);
            memcpy(joined + na, sp + 1, nb);
            ab = vocab_id(enc, joined, na + nb);
        }
        if (ab < 0) {
            snprintf(err, errlen,
                     "%s:%zu: \"%.*s\" is not a merge of two tokens into a token of the "
                     "vocabulary; use the vocab.bpe that comes with this encoder.json",
                     path, lineno, (int)(n < 60 ? n : 60), line);
            ok = false;
            break;
        }
        /* a repeated pair keeps its last rank, as encoder.py's dict does */
        *merge_slot(b, a, c) =
            (struct merge){(uint64_t)(uint32_t)a << 32 | (uint32_t)c, rank++, ab};
    }
    free(text);
    return ok;
}

struct bpe *bpe_load(const char *encoder_json, const char *vocab_bpe, char *err, size_t errlen)
{
    struct bpe *b = calloc(1, sizeof *b);
    CHECK_MSG(b, "out of memory");
    json_error_t jerr;
    json_t *enc = json_load_file(encoder_json, 0, &jerr);
    if (!enc) {
        if (jerr.line < 0)
            snprintf(err, errlen, "%s: %s; run scripts/fetch-data.sh to get it", encoder_json,
                     jerr.text);
        else
            snprintf(err, errlen, "%s:%d: bad JSON: %s; fetch it again with scripts/fetch-data.sh",
                     encoder_json, jerr.line, jerr.text);
        free(b);
        return NULL;
    }
    bool ok = load_vocab(b, encoder_json, enc, err, errlen) &&
              load_merges(b, vocab_bpe, enc, err, errlen);
    json_decref(enc);
    if (!ok) {
        bpe_free(b);
        return NULL;
    }
    cache_reset(b, 1u << 16);
    return b;
}

void bpe_free(struct bpe *b)
{
    if (!b) return;
    free(b->tok_bytes);
    free(b->tok_start);
    free(b->tok_len);
    free(b->merges);
    free(b->cache);
    free(b->cache_keys);
    free(b->cache_toks);
    free(b->sym);
    free(b->rank);
    free(b->dirty);
    free(b);
}

int32_t bpe_vocab_size(const struct bpe *b)
{
    return b->vocab_size;
}

int32_t bpe_eot(const struct bpe *b)
{
    return b->eot;
}

/* --- encode and decode ------------------------------------------------------------------------ */

size_t bpe_encode(struct bpe *b, const char *text, size_t len, int32_t **tokens)
{
    const unsigned char *s = (const unsigned char *)text;
    int32_t *out = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < len;) {
        size_t end = pretoken_end(s, len, i), k = end - i;
        const unsigned char *w = s + i;
        i = end;
        uint64_t h = 0;
        if (k <= BPE_CACHE_MAX_LEN) {
            h = hash_bytes(w, k);
            const struct cache_entry *e = cache_slot(b, h, w, k);
            if (e->hash) {
                grow(&out, &cap, n + e->ntok, sizeof *out);
                memcpy(out + n, b->cache_toks + e->tok_off, e->ntok * sizeof *out);
                n += e->ntok;
                continue;
            }
        }
        size_t m = bpe_word(b, w, k);
        grow(&out, &cap, n + m, sizeof *out);
        memcpy(out + n, b->sym, m * sizeof *out);
        n += m;
        if (k <= BPE_CACHE_MAX_LEN) cache_insert(b, h, w, k, b->sym, m);
    }
    *tokens = out;
    return n;
}

const char *bpe_token_bytes(const struct bpe *b, int32_t id, size_t *len)
{
    if (id < 0 || id >= b->vocab_size) return NULL;
    *len = b->tok_len[id];
    return b->tok_bytes + b->tok_start[id];
}

char *bpe_decode(const struct bpe *b, const int32_t *tokens, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= b->vocab_size) return NULL;
        total += b->tok_len[tokens[i]];
    }
    char *s = malloc(total + 1);
    CHECK_MSG(s, "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + at, b->tok_bytes + b->tok_start[tokens[i]], b->tok_len[tokens[i]]);
        at += b->tok_len[tokens[i]];
    }
    s[at] = '\0';
    if (len) *len = at;
    return s;
}
