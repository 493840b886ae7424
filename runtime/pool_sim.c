/* pool_sim.c: pool.h in the simulation build. The capacity and the pieces are a real run's, but
 * each piece is its own folded allocation (host.h): one allocation of the whole pool would have to
 * fit this machine's RAM + swap (the kernel's overcommit heuristic), while the simulated pool of
 * a 50B model is hundreds of GB. Nothing is touched (folded pages read as zero) or pinned (pinned
 * copies are simulated as such: StarPU times every transfer by the platform's links). */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "host.h"

struct host_pool {
    struct host_pool_info info;
    void **pieces; /* [n], of sizes[n] bytes */
    size_t *sizes;
    int n, cap;
};

struct host_pool *host_pool_create(size_t capacity, char *err, size_t errlen)
{
    struct host_pool *p = calloc(1, sizeof *p);
    CHECK(p);
    p->info = (struct host_pool_info){host_pool_piece_bytes(capacity ? capacity : 1), 0, 1, -1};
    return p;
}

void host_pool_destroy(struct host_pool *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++)
        host_free(p->pieces[i], p->sizes[i]);
    free(p->pieces);
    free(p->sizes);
    free(p);
}

void *host_pool_alloc(struct host_pool *p, size_t bytes)
{
    size_t piece = host_pool_piece_bytes(bytes);
    if (piece > p->info.capacity - p->info.used) return NULL;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->pieces = realloc(p->pieces, p->cap * sizeof *p->pieces);
        p->sizes = realloc(p->sizes, p->cap * sizeof *p->sizes);
        CHECK(p->pieces && p->sizes);
    }
    void *out = host_alloc(piece);
    if (!out)
        user_fail("cannot reserve %zu bytes of address space for a piece of the simulated pinned "
                  "pool: one allocation must fit this machine's RAM + swap (the kernel's "
                  "overcommit heuristic)",
                  piece);
    p->pieces[p->n] = out;
    p->sizes[p->n++] = piece;
    p->info.used += piece;
    return out;
}

struct host_pool_info host_pool_info(const struct host_pool *p)
{
    return p->info;
}
