/* timer.h: the one wall clock of the project: the monotonic clock (timer.c), or in the simulation
 * build the simulated machine's (timer_sim.c). */
#ifndef GPT50B_TIMER_H
#define GPT50B_TIMER_H

/* Seconds on the clock since an arbitrary start: only differences mean anything. */
double timer_now_s(void);

#endif
