/* check.h: error reporting shared by every layer.
 *
 * Two kinds of failure exist. A user error (bad flag, missing or corrupt file, impossible
 * configuration) ends the program with one line on stderr saying what is wrong and what to do,
 * and exit code 2: user_fail(). An internal error (a CUDA or StarPU call that should not fail)
 * reports file and line and aborts: CHECK() and friends. Both stay on in release builds. */
#ifndef GPT50B_CHECK_H
#define GPT50B_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Exit code of every user error. */
#define EXIT_USER 2

/* Prints "gpt50b: error: <message>" and exits with EXIT_USER. Never returns. Thread-safe: when
 * several threads fail at once, the first prints and exits, the others wait for its exit. */
__attribute__((noreturn, format(printf, 1, 2))) void user_fail(const char *fmt, ...);

/* With `seconds` > 0, user_fail waits that long before it prints and exits. For the processes
 * other than 0 of an MPI run while they check what every process checks alike (the flags):
 * process 0 finds the same error, prints it and exits at once, and mpirun ends the job before the
 * others print, so the user reads one line; a process alone with its error still reports it. */
void check_set_delay(int seconds);

/* Sets the program name printed by user_fail (default "gpt50b"). */
void check_set_program(const char *name);

/* Aborts with file, line and the failed expression; a hint tells the user what to look at. */
#define CHECK_MSG(cond, hint)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: internal error: %s (%s)\n", __FILE__, __LINE__, #cond, hint);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK(cond) CHECK_MSG(cond, "please report this bug")

#endif
