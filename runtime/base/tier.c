/* tier.c: tier names (see tier.h). */
#include "tier.h"

const char *tier_name(enum tier t)
{
    static const char *const names[NTIERS] = {"GPU", "CPU", "NVMe"};
    return names[t];
}
