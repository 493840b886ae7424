/* check.c: the user-error exit shared by every program of the project. */
#include "check.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#include "process.h"

static const char *program = "gpt50b";
static int delay;

void check_set_delay(int seconds)
{
    delay = seconds;
}

void check_set_program(const char *name)
{
    program = name;
}

void user_fail(const char *fmt, ...)
{
    /* Errors found in tasks come from several worker threads at once: the first reports and
     * exits; the others wait for that exit, so the user reads one line and exit() runs once. */
    static atomic_flag failing = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&failing))
        for (;;)
            pause();
    va_list ap;
    if (delay > 0) sleep((unsigned)delay);
    fprintf(stderr, "%s: error: ", program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    process_exit(EXIT_USER);
}
