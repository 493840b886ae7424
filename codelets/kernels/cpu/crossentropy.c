/* crossentropy.c: CPU softmax cross-entropy over the real vocabulary, and the dispatch to its
 * vector row kernels.
 *
 * Rows are independent and run in parallel; a row is never split, so any thread count gives the
 * same bits. Only columns [0, V) take part in the softmax; the padding columns [V, Vp) of the
 * logits are never read and get a zero gradient. Each row costs one exp per logit, which is why
 * the exp runs on the fastest ISA of this CPU (crossentropy_simd.c, chosen by cpu_isa.h); the
 * scalar code here is the same computation one element at a time (fmaf for the vector fused
 * multiply-adds, 16 partial sums for the lanes), so every ISA gives the same bits. The forward
 * reads a row twice (max, sum of exp), the backward three times (max, exp into dlogits with their
 * sum, scale).
 *
 * The backward may run in place (dlogits == logits): for fp32 each element is read before it is
 * overwritten, for fp16/bf16 the row is widened into scratch first. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crossentropy_simd.h"
#include "f32_view.h"
#include "kernels_cpu.h"

static float max_scalar(const float *l, int V)
{
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
        m = l[i] > m ? l[i] : m;
    return m;
}

/* crossentropy_simd.c's vector exp, one lane: the same correctly rounded operations in the same
 * order (fnmadd(a, b, c) is fmaf(-a, b, c)). */
static float exp_poly(float x)
{
    if (x < CE_EXP_LOMIN) return 0.0f;
    float fx = nearbyintf(x * CE_EXP_LOG2E);
    float r = fmaf(-fx, CE_EXP_C1, x);
    r = fmaf(-fx, CE_EXP_C2, r);
    float p = CE_EXP_P0;
    p = fmaf(p, r, CE_EXP_P1);
    p = fmaf(p, r, CE_EXP_P2);
    p = fmaf(p, r, CE_EXP_P3);
    p = fmaf(p, r, CE_EXP_P4);
    p = fmaf(p, r, CE_EXP_P5);
    float y = fmaf(p, r * r, r) + 1.0f;
    if (isnan(y)) return y;
    /* fx is in [-126, 0] here, so 2^fx is a normal number */
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float e;
    memcpy(&e, &bits, sizeof e);
    return y * e;
}

float ce_fold16(const float s[16])
{
    float a[8], b[4];
    for (int j = 0; j < 8; j++)
        a[j] = s[j] + s[j + 8];
    for (int j = 0; j < 4; j++)
        b[j] = a[j] + a[j + 4];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

static float sumexp_scalar(const float *l, int V, float maxv)
{
    float s[16] = {0};
    for (int i = 0; i < V; i++)
        s[i % 16] += exp_poly(l[i] - maxv);
    return ce_fold16(s);
}

static float exp_scalar(float *d, const float *l, int V, float maxv)
{
    float s[16] = {0};
    for (int i = 0; i < V; i++) {
        d[i] = exp_poly(l[i] - maxv);
        s[i % 16] += d[i];
    }
    return ce_fold16(s);
}

const struct ce_row_ops ce_row_scalar = {max_scalar, sumexp_scalar, exp_scalar};

static const struct ce_row_ops *row_ops(enum cpu_isa isa)
{
    CHECK_MSG(cpu_isa_supported(isa), "crossentropy: this CPU does not run that ISA");
    switch (isa) {
    case CPU_ISA_AVX512:
        return &ce_row_avx512;
    case CPU_ISA_AVX2:
        return &ce_row_avx2;
    default:
        return &ce_row_scalar;
    }
}

void crossentropy_forward_cpu_isa(enum cpu_isa isa, float *losses, const void *logits,
                                  const int32_t *targets, int N, int V, int Vp, enum dtype dt)
{
    const struct ce_row_ops *ops = row_ops(isa);
#pragma omp parallel
    {
        float *tl = f32_scratch(dt, V);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            CHECK_MSG(targets[n] >= 0 && targets[n] < V, "target token outside the vocabulary");
            const float *l = f32_in(dt, logits, (size_t)n * Vp, V, tl);
            float maxv = ops->max(l, V);
            losses[n] = logf(ops->sumexp(l, V, maxv)) + maxv - l[targets[n]];
        }
        free(tl);
    }
}

void crossentropy_backward_cpu_isa(enum cpu_isa isa, void *dlogits, const void *logits,
                                   const int32_t *targets, float dloss, int N, int V, int Vp,
                                   enum dtype dt)
{
    const struct ce_row_ops *ops = row_ops(isa);
#pragma omp parallel
    {
        float *tl = f32_scratch(dt, Vp);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            CHECK_MSG(targets[n] >= 0 && targets[n] < V, "target token outside the vocabulary");
            const float *l = f32_in(dt, logits, (size_t)n * Vp, V, tl);
            float *d = f32_out(dt, dlogits, (size_t)n * Vp, tl);
            /* the exponentials go straight into d, storing them being cheaper than a second exp */
            float maxv = ops->max(l, V);
            float scale = dloss / ops->exp(d, l, V, maxv);
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

void crossentropy_forward_cpu(float *losses, const void *logits, const int32_t *targets, int N,
                              int V, int Vp, enum dtype dt)
{
    crossentropy_forward_cpu_isa(cpu_isa_selected(), losses, logits, targets, N, V, Vp, dt);
}

void crossentropy_backward_cpu(void *dlogits, const void *logits, const int32_t *targets,
                               float dloss, int N, int V, int Vp, enum dtype dt)
{
    crossentropy_backward_cpu_isa(cpu_isa_selected(), dlogits, logits, targets, dloss, N, V, Vp,
                                  dt);
}
