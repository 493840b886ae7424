/* loader.h: which tokens each micro-batch reads.
 *
 * A loader covers one split [begin, end) of a token stream. Order `sequential` is llm.c's and
 * exact: at iteration i (0-based), row r reads the window starting at
 *     s = ((i*B + r) * T) mod (N - T - 1)
 * of the split's N tokens; inputs are tokens[s, s+T), targets tokens[s+1, s+T+1). Order `shuffle`
 * cuts the split into windows at multiples of T and visits them in a permutation drawn per epoch
 * from the seed: deterministic for a given seed, data and batch shape. */
#ifndef GPT50B_LOADER_H
#define GPT50B_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

enum data_order {
    DATA_ORDER_SEQUENTIAL,
    DATA_ORDER_SHUFFLE,
};

struct loader {
    const struct dataset *d;
    size_t begin, n; /* the split */
    int B, T;
    enum data_order order;
    uint64_t seed;
    size_t nwindows;
    size_t *perm;       /* shuffle: the current epoch's permutation */
    int64_t perm_epoch; /* its epoch, -1 before the first */
};

/* User error (exit 2) when the split is too short for one window of T + 1 tokens. `what` names
 * the split in that message ("training", "validation"). */
void loader_init(struct loader *l, const struct dataset *d, size_t begin, size_t end, int B, int T,
                 enum data_order order, uint64_t seed, const char *what);
void loader_free(struct loader *l);
/* Fills inputs[B*T] and targets[B*T] for iteration i (0-based). */
void loader_batch(struct loader *l, int64_t i, int32_t *inputs, int32_t *targets);

#endif
