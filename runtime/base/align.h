/* align.h: rounding sizes up to a multiple. */
#ifndef GPT50B_ALIGN_H
#define GPT50B_ALIGN_H

#include <stdint.h>

/* The smallest multiple of `to` (> 0) that is >= x. */
static inline uint64_t round_up(uint64_t x, uint64_t to)
{
    return (x + to - 1) / to * to;
}

#endif
