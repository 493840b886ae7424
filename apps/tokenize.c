/* tokenize: turns UTF-8 text files into an llm.c token file with the GPT-2 BPE.
 *
 *     tokenize [--vocab encoder.json --merges vocab.bpe] -o OUT.bin [--append-eot] INPUT...
 *
 * --vocab and --merges default to GPT-2's files in the cache scripts/setup.sh fills
 * ($GPT50B_CACHE/gpt2/, by default ~/.cache/gpt50b/gpt2/).
 * Each input file is one document; documents are separated by <|endoftext|>, and --append-eot
 * ends the last one with it too (so that files written separately can be concatenated). The
 * output is llm.c's format (256 int32 header: 20240520, version 1, token count; then uint16
 * tokens), written to OUT.bin.tmp and renamed when complete. Inputs are mmap'd and encoded in
 * chunks cut after a newline that stands alone between two ASCII non-space characters, where
 * GPT-2's pre-tokenizer always cuts too, so memory stays small and the tokens equal those of the
 * whole text. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpe.h"
#include "check.h"
#include "timer.h"

#define LLMC_MAGIC   20240520
#define LLMC_VERSION 1
#define CHUNK_BYTES  (1u << 20)

static const char usage[] =
    "usage: tokenize [--vocab encoder.json --merges vocab.bpe] -o OUT.bin [--append-eot] INPUT...\n"
    "Encodes UTF-8 text files with the GPT-2 BPE into an llm.c token file (uint16, version 1).\n"
    "Each INPUT is one document; documents are separated by <|endoftext|> (50256).\n"
    "  --vocab PATH     encoder.json of GPT-2 (default: $GPT50B_CACHE/gpt2/encoder.json,\n"
    "                   ~/.cache/gpt50b/gpt2/ without GPT50B_CACHE; scripts/setup.sh fetches it)\n"
    "  --merges PATH    vocab.bpe of GPT-2 (default: beside the default encoder.json)\n"
    "  -o, --output PATH  token file to write (written to PATH.tmp, then renamed)\n"
    "  --append-eot     also end the last document with <|endoftext|>\n"
    "  --help           show this text\n";

struct writer {
    FILE *f;
    const char *path;
    uint64_t ntokens;
    uint16_t buf[1 << 16];
    size_t nbuf;
};

static void writer_flush(struct writer *w)
{
    if (w->nbuf && fwrite(w->buf, sizeof w->buf[0], w->nbuf, w->f) != w->nbuf)
        user_fail("%s: write failed: %s; check free disk space", w->path, strerror(errno));
    w->nbuf = 0;
}

static void writer_put(struct writer *w, const int32_t *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (w->nbuf == sizeof w->buf / sizeof w->buf[0]) writer_flush(w);
        w->buf[w->nbuf++] = (uint16_t)tokens[i];
    }
    w->ntokens += n;
    if (w->ntokens > INT32_MAX)
        user_fail("%s: more than %d tokens, the limit of one llm.c file; split the input into "
                  "several runs",
                  w->path, INT32_MAX);
}

static bool ascii_nonspace(char c)
{
    return (unsigned char)c < 0x80 && c != ' ' && (c < '\t' || c > '\r');
}

/* End of the chunk that starts at pos: about CHUNK_BYTES on, just after a lone '\n' between two
 * ASCII non-space characters (no pre-token spans it, and a whitespace run of one is matched alike
 * at the end of a text and inside it), or the end of the text. */
static size_t chunk_end(const char *s, size_t n, size_t pos)
{
    if (n - pos <= CHUNK_BYTES) return n;
    for (size_t i = pos + CHUNK_BYTES; i + 1 < n; i++)
        if (s[i] == '\n' && ascii_nonspace(s[i - 1]) && ascii_nonspace(s[i + 1])) return i + 1;
    return n;
}

static void encode_file(struct bpe *b, const char *path, struct writer *w)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) user_fail("%s: cannot open: %s", path, strerror(errno));
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return;
    }
    const char *text = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (text == MAP_FAILED) user_fail("%s: cannot mmap: %s", path, strerror(errno));
    madvise((void *)text, n, MADV_SEQUENTIAL);
    for (size_t pos = 0; pos < n;) {
        size_t end = chunk_end(text, n, pos);
        int32_t *tokens;
        size_t m = bpe_encode(b, text + pos, end - pos, &tokens);
        writer_put(w, tokens, m);
        free(tokens);
        pos = end;
    }
    munmap((void *)text, n);
}

/* GPT-2's BPE file `name` in the cache scripts/setup.sh fills, into buf; a user error naming the
 * flag to pass when it is not there. */
static const char *cache_file(const char *name, const char *flag, char *buf, size_t size)
{
    const char *cache = getenv("GPT50B_CACHE"), *home = getenv("HOME");
    if (cache && *cache)
        snprintf(buf, size, "%s/gpt2/%s", cache, name);
    else
        snprintf(buf, size, "%s/.cache/gpt50b/gpt2/%s", home ? home : "", name);
    if (access(buf, R_OK) != 0)
        user_fail("no %s given and %s is missing: run scripts/setup.sh (it fetches GPT-2's BPE "
                  "files there) or pass --vocab and --merges",
                  flag, buf);
    return buf;
}

int main(int argc, char **argv)
{
    check_set_program("tokenize");
    const char *vocab = NULL, *merges = NULL, *output = NULL;
    bool append_eot = false;
    static const struct option options[] = {
        {"vocab", required_argument, NULL, 'v'},  {"merges", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'}, {"append-eot", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":o:", options, NULL)) != -1;) {
        switch (c) {
        case 'v':
            vocab = optarg;
            break;
        case 'm':
            merges = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'e':
            append_eot = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            user_fail("option %s needs a value; run tokenize --help for usage", argv[optind - 1]);
        default:
            user_fail("unknown option '%s'; run tokenize --help for usage", argv[optind - 1]);
        }
    }
    char vocab_buf[4096], merges_buf[4096];
    if (!vocab) vocab = cache_file("encoder.json", "--vocab", vocab_buf, sizeof vocab_buf);
    if (!merges) merges = cache_file("vocab.bpe", "--merges", merges_buf, sizeof merges_buf);
    if (!output) user_fail("-o/--output is required; run tokenize --help for usage");
    if (optind == argc) user_fail("no input files; run tokenize --help for usage");
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st)) user_fail("%s: cannot open: %s", argv[i], strerror(errno));
        if (!S_ISREG(st.st_mode)) user_fail("%s: not a regular file; give text files", argv[i]);
    }

    char err[512];
    struct bpe *b = bpe_load(vocab, merges, err, sizeof err);
    if (!b) user_fail("%s", err);
    int32_t eot = bpe_eot(b);
    if (eot < 0) user_fail("%s: no <|endoftext|> token; use GPT-2's encoder.json", vocab);
    if (bpe_vocab_size(b) > UINT16_MAX + 1)
        user_fail("%s: %d tokens do not fit the uint16 llm.c format", vocab, bpe_vocab_size(b));

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", output);
    static struct writer w; /* 128 KiB buffer: keep it off the stack */
    w.path = tmp;
    w.f = fopen(tmp, "wb");
    if (!w.f) user_fail("%s: cannot create: %s", tmp, strerror(errno));
    int32_t header[256] = {LLMC_MAGIC, LLMC_VERSION, 0};
    if (fwrite(header, sizeof header, 1, w.f) != 1)
        user_fail("%s: write failed: %s", tmp, strerror(errno));

    double t0 = timer_now_s();
    for (int i = optind; i < argc; i++) {
        if (i > optind) writer_put(&w, &eot, 1);
        encode_file(b, argv[i], &w);
    }
    if (append_eot) writer_put(&w, &eot, 1);
    writer_flush(&w);
    double t1 = timer_now_s();

    header[2] = (int32_t)w.ntokens;
    if (fseek(w.f, 0, SEEK_SET) || fwrite(header, sizeof header, 1, w.f) != 1 || fclose(w.f))
        user_fail("%s: write failed: %s; check free disk space", tmp, strerror(errno));
    if (rename(tmp, output)) user_fail("cannot rename %s to %s: %s", tmp, output, strerror(errno));
    bpe_free(b);
    printf("%s: %llu tokens from %d documents, encoded in %.2f s\n", output,
           (unsigned long long)w.ntokens, argc - optind, t1 - t0);
    return 0;
}
