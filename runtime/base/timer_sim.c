/* timer_sim.c: timer.h in the simulation build: the simulated clock. StarPU on SimGrid keeps
 * clock_gettime() real, so the log lines, --metrics' elapsed_ms and the phases' timings read
 * SimGrid's clock through StarPU instead (microseconds since the simulation started). */
#include "timer.h"

#include <starpu.h>

double timer_now_s(void)
{
    return starpu_timing_now() * 1e-6;
}
