/* flash_attention.c: the CPU kernels of causal self-attention, with per-row statistics instead of
 * the T x T probabilities: the contract of the CUDA kernels (cuda/flash_attention.cu and
 * cuda/attention.cu), so that the attention codelet runs either on the same buffers.
 *
 * It is not tiled: a row's scores fit in O(T) memory on a CPU, so each query row is computed
 * whole, with the loops, summation order and roundings of llm.c's attention_forward/backward,
 * which this file replaced. The forward keeps the row's max and sum of exponentials; the backward
 * recomputes the row's scores and probabilities from them with the forward's operations, rounds
 * the probabilities to dt as the stored probabilities were rounded, and then follows the old
 * backward. Hence out and dqkv are the old kernels' bits in fp32, fp16 and bf16 (checked against
 * them by tests/codelets/test_flash_attention_cpu.c until they were removed, and end to end by the
 * CPU fixtures of tests/apps/test_cli.sh since), so switching to this contract left CPU runs'
 * losses unchanged. The backward does one more dot product per (t, t2) pair than the old one (the
 * recomputed score), and keeps no O(T^2) buffer. */
#include <math.h>
#include <stdlib.h>

#include "f32_view.h"
#include "kernels_cpu.h"

/* p[t2] = softmax over t2 <= t of the scaled scores of query row t of head h of batch b. With
 * stats_in NULL the row's (max, sum) are computed and written to stats_out; otherwise they are
 * read from stats_in. The operations are the forward's, in its order. */
static void flash_row_probs(float *p, const float *x, int b, int h, int t, int T, int C, int hs,
                            float scale, const float *stats_in, float *stats_out)
{
    int C3 = 3 * C;
    const float *q = x + ((size_t)b * T + t) * C3 + h * hs;
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
    if (stats_in) {
        maxv = stats_in[0];
        sum = stats_in[1];
        for (int t2 = 0; t2 <= t; t2++)
            p[t2] = expf(p[t2] - maxv);
    } else {
        for (int t2 = 0; t2 <= t; t2++) {
            p[t2] = expf(p[t2] - maxv);
            sum += p[t2];
        }
        stats_out[0] = maxv;
        stats_out[1] = sum;
    }
    float inv = 1.0f / sum;
    for (int t2 = 0; t2 <= t; t2++)
        p[t2] = p[t2] * inv;
}

/* x rounded to dt and widened back: what a dt buffer holding x gives when read. */
static float round_to_dt(enum dtype dt, float x)
{
    switch (dt) {
    case DTYPE_FP16:
        return dtype_fp16_to_f32(dtype_f32_to_fp16(x));
    case DTYPE_BF16:
        return dtype_bf16_to_f32(dtype_f32_to_bf16(x));
    case DTYPE_FP32:
        break;
    }
    return x;
}

void flash_attention_forward_cpu(void *out, float *stats, const void *qkv, int B, int T, int C,
                                 int NH, enum dtype dt)
{
    CHECK_MSG(B > 0 && T > 0 && NH > 0 && C % NH == 0, "attention needs C a multiple of NH");
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    size_t nqkv = (size_t)B * T * C3, nout = (size_t)B * T * C;
    float *tq = f32_scratch(dt, nqkv), *to = f32_scratch(dt, nout);
    const float *x = f32_in(dt, qkv, 0, nqkv, tq);
    float *o = f32_out(dt, out, 0, to);
#pragma omp parallel
    {
        float *p = malloc((size_t)T * sizeof(float));
        CHECK_MSG(p != NULL, "out of host memory in flash_attention_forward_cpu");
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            for (int t = 0; t < T; t++) {
                flash_row_probs(p, x, b, h, t, T, C, hs, scale, NULL,
                                stats + ((size_t)bh * T + t) * 2);
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
        free(p);
    }
    f32_store(dt, out, 0, nout, o);
    free(tq);
    free(to);
}

void flash_attention_backward_cpu(void *dqkv, const void *dout, const void *qkv, const void *out,
                                  const float *stats, int B, int T, int C, int NH, enum dtype dt)
{
    CHECK_MSG(B > 0 && T > 0 && NH > 0 && C % NH == 0, "attention needs C a multiple of NH");
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    size_t nqkv = (size_t)B * T * C3, nout = (size_t)B * T * C;
    float *tq = f32_scratch(dt, nqkv), *tdq = f32_scratch(dt, nqkv), *tg = f32_scratch(dt, nout);
    const float *x = f32_in(dt, qkv, 0, nqkv, tq);
    const float *g = f32_in(dt, dout, 0, nout, tg);
    float *dx = f32_inout(dt, dqkv, 0, nqkv, tdq);
#pragma omp parallel
    {
        float *p = malloc((size_t)T * sizeof(float)), *datt = malloc((size_t)T * sizeof(float));
        CHECK_MSG(p != NULL && datt != NULL, "out of host memory in flash_attention_backward_cpu");
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            for (int t = 0; t < T; t++) {
                flash_row_probs(p, x, b, h, t, T, C, hs, scale, stats + ((size_t)bh * T + t) * 2,
                                NULL);
                /* the forward's att holds the probabilities rounded to dt */
                for (int t2 = 0; t2 <= t && dt != DTYPE_FP32; t2++)
                    p[t2] = round_to_dt(dt, p[t2]);
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
        free(p);
        free(datt);
    }
    f32_store(dt, dqkv, 0, nqkv, dx);
    free(tq);
    free(tdq);
    free(tg);
}
