/* loader.c: micro-batch windows over a token split (see loader.h). */
#include "loader.h"

#include <stdlib.h>

#include "check.h"
#include "rng.h"

void loader_init(struct loader *l, const struct dataset *d, size_t begin, size_t end, int B, int T,
                 enum data_order order, uint64_t seed, const char *what)
{
    size_t n = end - begin;
    if (end <= begin || n < (size_t)T + 2)
        user_fail("the %s split holds %zu tokens, fewer than one window of --seq-length %d + 2: "
                  "use more data, change --split or shorten the sequence",
                  what, end > begin ? n : 0, T);
    *l = (struct loader){.d = d,
                         .begin = begin,
                         .n = n,
                         .B = B,
                         .T = T,
                         .order = order,
                         .seed = seed,
                         .nwindows = (n - T - 1) / T + 1,
                         .perm_epoch = -1};
}

void loader_free(struct loader *l)
{
    free(l->perm);
    l->perm = NULL;
}

static void shuffle_epoch(struct loader *l, int64_t epoch)
{
    uint64_t s = l->seed ^ ((uint64_t)(epoch + 1) * 0xA24BAED4963EE407ull);
    if (!l->perm) {
        l->perm = malloc(l->nwindows * sizeof *l->perm);
        CHECK(l->perm);
    }
    for (size_t k = 0; k < l->nwindows; k++)
        l->perm[k] = k;
    for (size_t k = l->nwindows - 1; k > 0; k--) {
        size_t j = rng_next(&s) % (k + 1), t = l->perm[k];
        l->perm[k] = l->perm[j];
        l->perm[j] = t;
    }
    l->perm_epoch = epoch;
}

static size_t window_start(struct loader *l, int64_t i, int r)
{
    uint64_t g = (uint64_t)i * l->B + r;
    if (l->order == DATA_ORDER_SEQUENTIAL) return (size_t)((g * l->T) % (l->n - l->T - 1));
    int64_t epoch = (int64_t)(g / l->nwindows);
    if (epoch != l->perm_epoch) shuffle_epoch(l, epoch);
    return l->perm[g % l->nwindows] * (size_t)l->T;
}

void loader_batch(struct loader *l, int64_t i, int32_t *inputs, int32_t *targets)
{
    int32_t *window = malloc(((size_t)l->T + 1) * sizeof *window);
    CHECK(window);
    for (int r = 0; r < l->B; r++) {
        size_t s = window_start(l, i, r);
        dataset_read(l->d, l->begin + s, (size_t)l->T + 1, window);
        for (int t = 0; t < l->T; t++) {
            inputs[(size_t)r * l->T + t] = window[t];
            targets[(size_t)r * l->T + t] = window[t + 1];
        }
    }
    free(window);
}
