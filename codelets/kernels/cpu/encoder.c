/* encoder.c: CPU reference of the token + position embedding (llm.c's encoder_forward/backward).
 *
 * The backward is a scatter: rows of dout land on dwte rows chosen by token. To stay
 * deterministic without atomics the rows are grouped by token (a sort of the keys token:n) and
 * each token's row is summed by one thread, in increasing n; distinct tokens run in parallel.
 * dwpe is a sum over the batch, parallel over positions. */
#include <stdlib.h>

#include "check.h"
#include "f32_view.h"
#include "kernels_cpu.h"

void encoder_forward_cpu(void *out, const int32_t *tokens, const void *wte, const void *wpe, int B,
                         int T, int C, enum dtype dt)
{
#pragma omp parallel
    {
        float *tw = f32_scratch(dt, C), *tp = f32_scratch(dt, C), *to = f32_scratch(dt, C);
#pragma omp for schedule(static)
        for (int n = 0; n < B * T; n++) {
            const float *w = f32_in(dt, wte, (size_t)tokens[n] * C, C, tw);
            const float *p = f32_in(dt, wpe, (size_t)(n % T) * C, C, tp);
            float *o = f32_out(dt, out, (size_t)n * C, to);
            for (int c = 0; c < C; c++)
                o[c] = w[c] + p[c];
            f32_store(dt, out, (size_t)n * C, C, o);
        }
        free(tw);
        free(tp);
        free(to);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void encoder_backward_cpu(void *dwte, void *dwpe, const void *dout, const int32_t *tokens, int B,
                          int T, int C, enum dtype dt)
{
    int N = B * T;
    /* key = token << 32 | n: sorting groups rows by token and keeps n increasing within a group */
    uint64_t *key = malloc((size_t)N * sizeof(uint64_t));
    int *group = malloc(((size_t)N + 1) * sizeof(int)); /* index in key of each group's start */
    CHECK_MSG(key != NULL && group != NULL, "out of host memory in encoder_backward_cpu");
    for (int n = 0; n < N; n++)
        key[n] = (uint64_t)(uint32_t)tokens[n] << 32 | (uint32_t)n;
    qsort(key, N, sizeof(uint64_t), cmp_u64);
    int ngroups = 0;
    for (int i = 0; i < N; i++)
        if (i == 0 || key[i] >> 32 != key[i - 1] >> 32) group[ngroups++] = i;
    group[ngroups] = N;

#pragma omp parallel
    {
        float *tw = f32_scratch(dt, C), *td = f32_scratch(dt, C);
#pragma omp for schedule(static)
        for (int g = 0; g < ngroups; g++) {
            size_t tok = key[group[g]] >> 32;
            float *w = f32_inout(dt, dwte, tok * C, C, tw);
            for (int i = group[g]; i < group[g + 1]; i++) {
                const float *d = f32_in(dt, dout, (size_t)(uint32_t)key[i] * C, C, td);
                for (int c = 0; c < C; c++)
                    w[c] += d[c];
            }
            f32_store(dt, dwte, tok * C, C, w);
        }
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++) {
            float *p = f32_inout(dt, dwpe, (size_t)t * C, C, tw);
            for (int b = 0; b < B; b++) {
                const float *d = f32_in(dt, dout, ((size_t)b * T + t) * C, C, td);
                for (int c = 0; c < C; c++)
                    p[c] += d[c];
            }
            f32_store(dt, dwpe, (size_t)t * C, C, p);
        }
        free(tw);
        free(td);
    }
    free(key);
    free(group);
}
