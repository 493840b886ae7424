/* gelu.c: CPU reference of GPT-2's tanh-approximate GELU and its derivative.
 *
 * Elementwise, in blocks of GELU_BLOCK elements so that fp16/bf16 blocks are widened into a
 * stack buffer; blocks are independent, so any thread count gives the same bits. */
#include <math.h>

#include "f32_view.h"
#include "kernels_cpu.h"

#define GELU_BLOCK 1024
#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

void gelu_forward_cpu(void *out, const void *inp, size_t n, enum dtype dt)
{
    size_t nblocks = (n + GELU_BLOCK - 1) / GELU_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * GELU_BLOCK, len = n - off < GELU_BLOCK ? n - off : GELU_BLOCK;
        float tx[GELU_BLOCK], to[GELU_BLOCK];
        const float *x = f32_in(dt, inp, off, len, tx);
        float *o = f32_out(dt, out, off, to);
        for (size_t i = 0; i < len; i++) {
            float v = x[i];
            o[i] = 0.5f * v * (1.0f + tanhf(GELU_SCALE * (v + 0.044715f * v * v * v)));
        }
        f32_store(dt, out, off, len, o);
    }
}

void gelu_backward_cpu(void *dinp, const void *inp, const void *dout, size_t n, enum dtype dt)
{
    size_t nblocks = (n + GELU_BLOCK - 1) / GELU_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * GELU_BLOCK, len = n - off < GELU_BLOCK ? n - off : GELU_BLOCK;
        float tx[GELU_BLOCK], tg[GELU_BLOCK], td[GELU_BLOCK];
        const float *x = f32_in(dt, inp, off, len, tx);
        const float *g = f32_in(dt, dout, off, len, tg);
        float *d = f32_inout(dt, dinp, off, len, td);
        for (size_t i = 0; i < len; i++) {
            float v = x[i];
            float th = tanhf(GELU_SCALE * (v + 0.044715f * v * v * v));
            /* sech^2 = 1 - tanh^2: no cosh, which overflows for large |v| */
            float sech2 = 1.0f - th * th;
            float local = 0.5f * (1.0f + th) +
                          0.5f * v * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * v * v);
            d[i] += local * g[i];
        }
        f32_store(dt, dinp, off, len, d);
    }
}
