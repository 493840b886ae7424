/* progress.c: progress lines of long phases (see progress.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "timer.h"

#define PROGRESS_PERIOD_S 0.25

/* "12.31 GB" / "5.24 MB" / "900 B" */
static void progress_bytes(int64_t b, char *buf, size_t size)
{
    if (b >= 1000000000)
        snprintf(buf, size, "%.2f GB", b / 1e9);
    else if (b >= 1000000)
        snprintf(buf, size, "%.2f MB", b / 1e6);
    else
        snprintf(buf, size, "%lld B", (long long)b);
}

/* The in-place line: \r, the text, clear to the end of the line. */
static void progress_print(struct progress *p, double t)
{
    char done[32], total[32];
    int64_t d = atomic_load(&p->done);
    double rate = t > p->t0 ? d / (t - p->t0) : 0;
    progress_bytes(d, done, sizeof done);
    progress_bytes(p->total, total, sizeof total);
    printf("\r> %s %s: %s of %s", p->doing, p->what, done, total);
    if (rate > 0) printf(", %.2f GB/s, %.0f s left", rate / 1e9, (p->total - d) / rate);
    printf("\033[K");
    fflush(stdout);
    p->last_print = t;
}

void progress_begin(struct progress *p, const char *doing, const char *done_verb, const char *what,
                    int64_t total_bytes)
{
    p->doing = doing;
    p->done_verb = done_verb;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total_bytes;
    atomic_store(&p->done, 0);
    atomic_flag_clear(&p->printing);
    p->quiet = total_bytes <= 0; /* nothing to wait for, nothing to say */
    p->tty = !p->quiet && isatty(STDOUT_FILENO);
    p->t0 = timer_now_s();
    if (p->tty) progress_print(p, p->t0);
}

void progress_add(struct progress *p, int64_t bytes)
{
    atomic_fetch_add(&p->done, bytes);
    if (!p->tty) return;
    double t = timer_now_s();
    /* one thread prints; the others go on (the next call prints their bytes) */
    if (t - p->last_print >= PROGRESS_PERIOD_S && !atomic_flag_test_and_set(&p->printing)) {
        progress_print(p, t);
        atomic_flag_clear(&p->printing);
    }
}

void progress_end(struct progress *p)
{
    if (p->quiet) return;
    char done[32];
    double s = timer_now_s() - p->t0;
    int64_t d = atomic_load(&p->done);
    progress_bytes(d, done, sizeof done);
    printf("%s> %s %s: %s in %.1f s (%.2f GB/s)%s\n", p->tty ? "\r" : "", p->done_verb, p->what,
           done, s, s > 0 ? d / s / 1e9 : 0.0, p->tty ? "\033[K" : "");
    fflush(stdout);
}
