/* timer.h: the one wall clock of the project. */
#ifndef GPT50B_TIMER_H
#define GPT50B_TIMER_H

/* Seconds on the monotonic clock since an arbitrary start: only differences mean anything. */
double timer_now_s(void);

#endif
