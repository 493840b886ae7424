/* sumsq.c: CPU reference of the sum of squares of a gradient, the input of the global norm.
 *
 * Accumulated in double over fixed chunks of SUMSQ_CHUNK elements, then the chunk sums in chunk
 * order: the chunking does not depend on the thread count, so neither do the bits. Squares of
 * inf or NaN stay non-finite, which is how the optimizer detects an fp16 overflow. */
#include <stdlib.h>

#include "f32_view.h"
#include "kernels_cpu.h"

#define SUMSQ_CHUNK 4096

void sumsq_cpu(float *out, const void *grad, size_t n, enum dtype dt)
{
    size_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *partial = malloc((nchunks ? nchunks : 1) * sizeof(double));
    CHECK_MSG(partial != NULL, "out of host memory in sumsq_cpu");
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t off = k * SUMSQ_CHUNK, len = n - off < SUMSQ_CHUNK ? n - off : SUMSQ_CHUNK;
        float tg[SUMSQ_CHUNK];
        const float *g = f32_in(dt, grad, off, len, tg);
        double s = 0.0;
        for (size_t i = 0; i < len; i++)
            s += (double)g[i] * g[i];
        partial[k] = s;
    }
    double total = out[0];
    for (size_t k = 0; k < nchunks; k++)
        total += partial[k];
    out[0] = (float)total;
    free(partial);
}

void sum_cpu(float *out, const float *in, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += in[i];
    out[0] = (float)s;
}
