/* cast.c: CPU reference of the element type conversion between any two dtypes.
 *
 * Equal types copy; otherwise each block goes through fp32, which holds every fp16 and bf16
 * value exactly, so the one rounding is the final store. */
#include <string.h>

#include "f32_view.h"
#include "kernels_cpu.h"

#define CAST_BLOCK 4096

void cast_cpu(void *dst, enum dtype dst_dt, const void *src, enum dtype src_dt, size_t n)
{
    if (dst_dt == src_dt) {
        if (dst != src) memcpy(dst, src, n * dtype_size(src_dt));
        return;
    }
    size_t nblocks = (n + CAST_BLOCK - 1) / CAST_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t off = blk * CAST_BLOCK, len = n - off < CAST_BLOCK ? n - off : CAST_BLOCK;
        float tmp[CAST_BLOCK];
        const float *x = f32_in(src_dt, src, off, len, tmp);
        dtype_from_f32(dst_dt, x, (char *)dst + off * dtype_size(dst_dt), len);
    }
}
