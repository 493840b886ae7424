/* timer.c: the monotonic wall clock (see timer.h). */
#include "timer.h"

#include <time.h>

double timer_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
