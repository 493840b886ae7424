/* progress.h: what a long phase has done, for the person waiting on it.
 *
 * At the SC21 sizes start-up touches tens of GB of pinned memory and initialises 50 billion
 * weights, swap files of hundreds of GB are preallocated and a checkpoint is 100 GB or more, each
 * for minutes. A phase reports in bytes:
 * - on a terminal (stdout is a tty), one line that updates in place at most 4 times a second,
 *   "> writing model.safetensors: 12.31 GB of 27.46 GB, 1.81 GB/s, 8 s left";
 * - in a log (stdout is not a tty), nothing until the phase ends;
 * - either way, one line at the end: "> wrote model.safetensors: 27.46 GB in 15.2 s (1.81 GB/s)";
 * - a phase of 0 bytes, nothing.
 * Megatron-style iteration lines are not touched. progress_add may be called from any thread (an
 * OpenMP loop's, a StarPU worker's); the others are for the thread that began the phase. */
#ifndef GPT50B_PROGRESS_H
#define GPT50B_PROGRESS_H

#include <stdatomic.h>
#include <stdint.h>

struct progress {
    const char *doing, *done_verb; /* "writing", "wrote" */
    char what[96];                 /* "model.safetensors" */
    int64_t total;                 /* bytes */
    _Atomic int64_t done;
    double t0, last_print; /* seconds */
    atomic_flag printing;
    int tty, quiet; /* quiet: a phase of 0 bytes prints nothing */
};

/* Starts a phase of total_bytes: doing/done_verb are string literals ("writing", "wrote"), what
 * names the object (copied). On a terminal prints the first line at once. */
void progress_begin(struct progress *p, const char *doing, const char *done_verb, const char *what,
                    int64_t total_bytes);
/* bytes more done; on a terminal updates the line when 0.25 s have passed since the last. */
void progress_add(struct progress *p, int64_t bytes);
/* Ends the phase with its line: bytes done, seconds, rate. */
void progress_end(struct progress *p);

#endif
