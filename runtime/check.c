/* check.c: the user-error exit shared by every program of the project. */
#include "check.h"

#include <stdarg.h>
#include <unistd.h>

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
    va_list ap;
    if (delay > 0) sleep((unsigned)delay);
    fprintf(stderr, "%s: error: ", program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_USER);
}
