/* crossentropy.c: CPU reference of the softmax cross-entropy over the real vocabulary.
 *
 * Rows are independent and run in parallel. Only columns [0, V) take part in the softmax;
 * the padding columns [V, Vp) of the logits are never read and get a zero gradient. The backward
 * may run in place (dlogits == logits): for fp32 each element is read before it is overwritten,
 * for fp16/bf16 the row is widened into scratch first. */
#include <math.h>
#include <stdlib.h>

#include "f32_view.h"
#include "kernels_cpu.h"

/* the largest of l[0:V], the shift that keeps exp() finite */
static float row_max(const float *l, int V)
{
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
        m = l[i] > m ? l[i] : m;
    return m;
}

void crossentropy_forward_cpu(float *losses, const void *logits, const int32_t *targets, int N,
                              int V, int Vp, enum dtype dt)
{
#pragma omp parallel
    {
        float *tl = f32_scratch(dt, V);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            CHECK_MSG(targets[n] >= 0 && targets[n] < V, "target token outside the vocabulary");
            const float *l = f32_in(dt, logits, (size_t)n * Vp, V, tl);
            float maxv = row_max(l, V), sum = 0.0f;
            for (int i = 0; i < V; i++)
                sum += expf(l[i] - maxv);
            losses[n] = logf(sum) + maxv - l[targets[n]];
        }
        free(tl);
    }
}

void crossentropy_backward_cpu(void *dlogits, const void *logits, const int32_t *targets,
                               float dloss, int N, int V, int Vp, enum dtype dt)
{
#pragma omp parallel
    {
        float *tl = f32_scratch(dt, Vp);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            CHECK_MSG(targets[n] >= 0 && targets[n] < V, "target token outside the vocabulary");
            const float *l = f32_in(dt, logits, (size_t)n * Vp, V, tl);
            float *d = f32_out(dt, dlogits, (size_t)n * Vp, tl);
            /* the exponentials go straight into d (one expf per element, the row's main cost),
             * each read of l[i] coming before the write of d[i] */
            float maxv = row_max(l, V), sum = 0.0f;
            for (int i = 0; i < V; i++) {
                d[i] = expf(l[i] - maxv);
                sum += d[i];
            }
            float scale = dloss / sum;
            for (int i = 0; i < V; i++)
                d[i] *= scale;
            d[targets[n]] -= dloss;
            for (int i = V; i < Vp; i++)
                d[i] = 0.0f;
            f32_store(dt, dlogits, (size_t)n * Vp, Vp, d);
        }
        free(tl);
    }
}
