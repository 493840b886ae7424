/* add.c: CPU reference of the residual add and of gradient accumulation (dst += src).
 *
 * Elementwise in independent blocks, widened into stack buffers for fp16/bf16. out may alias a
 * or b (an in-place residual): each block is read whole before it is written. */
#include "f32_view.h"
#include "kernels_cpu.h"

#define ADD_BLOCK 1024

void add_forward_cpu(void *out, const void *a, const void *b, size_t n, enum dtype dt)
{
    size_t nblocks = (n + ADD_BLOCK - 1) / ADD_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * ADD_BLOCK, len = n - off < ADD_BLOCK ? n - off : ADD_BLOCK;
        float ta[ADD_BLOCK], tb[ADD_BLOCK], to[ADD_BLOCK];
        const float *x = f32_in(dt, a, off, len, ta);
        const float *y = f32_in(dt, b, off, len, tb);
        float *o = f32_out(dt, out, off, to);
        for (size_t i = 0; i < len; i++)
            o[i] = x[i] + y[i];
        f32_store(dt, out, off, len, o);
    }
}
