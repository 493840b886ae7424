/* attention.c: CPU reference of causal multi-head self-attention (llm.c's attention_forward and
 * attention_backward, with only the post-softmax probabilities kept).
 *
 * Work is split over (batch, head) pairs: a pair reads and writes only its own head's columns
 * of its own batch rows, so pairs are independent and each pair's sums run in a fixed order.
 * fp16/bf16 buffers are widened whole (the att buffer is B*NH*T*T, the largest operand) and
 * rounded once at the end. The backward uses the stored probabilities as given, rounded or not. */
#include <math.h>
#include <stdlib.h>

#include "f32_view.h"
#include "kernels_cpu.h"

void attention_forward_cpu(void *out, void *att, const void *qkv, int B, int T, int C, int NH,
                           enum dtype dt)
{
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    size_t nqkv = (size_t)B * T * C3, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *tq = f32_scratch(dt, nqkv), *to = f32_scratch(dt, nout), *ta = f32_scratch(dt, natt);
    const float *x = f32_in(dt, qkv, 0, nqkv, tq);
    float *o = f32_out(dt, out, 0, to);
    float *a = f32_out(dt, att, 0, ta);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        for (int t = 0; t < T; t++) {
            const float *q = x + ((size_t)b * T + t) * C3 + h * hs;
            float *p = a + ((size_t)bh * T + t) * T;
            float maxv = -INFINITY;
            for (int t2 = 0; t2 <= t; t2++) {
                const float *k = x + ((size_t)b * T + t2) * C3 + C + h * hs;
                float dot = 0.0f;
                for (int i = 0; i < hs; i++)
                    dot += q[i] * k[i];
                p[t2] = dot * scale;
                if (p[t2] > maxv) maxv = p[t2];
            }
            float sum = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                p[t2] = expf(p[t2] - maxv);
                sum += p[t2];
            }
            float inv = 1.0f / sum;
            for (int t2 = 0; t2 < T; t2++)
                p[t2] = t2 <= t ? p[t2] * inv : 0.0f;
            float *y = o + ((size_t)b * T + t) * C + h * hs;
            for (int i = 0; i < hs; i++)
                y[i] = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                const float *v = x + ((size_t)b * T + t2) * C3 + 2 * C + h * hs;
                for (int i = 0; i < hs; i++)
                    y[i] += p[t2] * v[i];
            }
        }
    }
    f32_store(dt, out, 0, nout, o);
    f32_store(dt, att, 0, natt, a);
    free(tq);
    free(to);
    free(ta);
}

void attention_backward_cpu(void *dqkv, const void *dout, const void *qkv, const void *att, int B,
                            int T, int C, int NH, enum dtype dt)
{
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    size_t nqkv = (size_t)B * T * C3, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *tq = f32_scratch(dt, nqkv), *tdq = f32_scratch(dt, nqkv);
    float *tg = f32_scratch(dt, nout), *ta = f32_scratch(dt, natt);
    const float *x = f32_in(dt, qkv, 0, nqkv, tq);
    const float *g = f32_in(dt, dout, 0, nout, tg);
    const float *a = f32_in(dt, att, 0, natt, ta);
    float *dx = f32_inout(dt, dqkv, 0, nqkv, tdq);
#pragma omp parallel
    {
        float *datt = malloc((size_t)T * sizeof(float));
        CHECK_MSG(datt != NULL, "out of host memory in attention_backward_cpu");
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            for (int t = 0; t < T; t++) {
                const float *p = a + ((size_t)bh * T + t) * T;
                const float *gy = g + ((size_t)b * T + t) * C + h * hs;
                const float *q = x + ((size_t)b * T + t) * C3 + h * hs;
                float *dq = dx + ((size_t)b * T + t) * C3 + h * hs;
                /* through y = sum_t2 p[t2] v[t2] */
                float pdot = 0.0f; /* sum_t2 p[t2] * datt[t2], the softmax's coupling term */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = x + ((size_t)b * T + t2) * C3 + 2 * C + h * hs;
                    float *dv = dx + ((size_t)b * T + t2) * C3 + 2 * C + h * hs;
                    float d = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        d += v[i] * gy[i];
                        dv[i] += p[t2] * gy[i];
                    }
                    datt[t2] = d;
                    pdot += p[t2] * d;
                }
                /* through the softmax, then the scaled dot products q . k[t2] */
                for (int t2 = 0; t2 <= t; t2++) {
                    float ds = p[t2] * (datt[t2] - pdot) * scale;
                    const float *k = x + ((size_t)b * T + t2) * C3 + C + h * hs;
                    float *dk = dx + ((size_t)b * T + t2) * C3 + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += k[i] * ds;
                        dk[i] += q[i] * ds;
                    }
                }
            }
        }
        free(datt);
    }
    f32_store(dt, dqkv, 0, nqkv, dx);
    free(tq);
    free(tdq);
    free(tg);
    free(ta);
}
