/* process_sim.c: process.h in the simulation build (see process.h for why not exit()). */
#include "process.h"

#include <stdio.h>
#include <unistd.h>

void process_exit(int code)
{
    fflush(NULL);
    _exit(code);
}
