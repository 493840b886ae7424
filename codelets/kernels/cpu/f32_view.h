/* f32_view.h: fp32 views of dt-typed buffers, the one idiom every CPU kernel uses for dtypes.
 *
 * A kernel computes on float pointers only. For fp32 buffers a view is the buffer itself (no copy,
 * no per-element switch); for fp16/bf16 it is a caller-provided fp32 scratch widened from, and
 * later rounded back into, the buffer. So the fp16/bf16 paths round once on store and the fp32
 * path costs nothing. Private to codelets/kernels/cpu/. Typical use, for a whole buffer or one row:
 *
 *     float *tmp = f32_scratch(dt, n);             // NULL for fp32
 *     float *d = f32_inout(dt, dbuf, off, n, tmp); // widened copy, or dbuf + off
 *     ... d[i] += ...;
 *     f32_store(dt, dbuf, off, n, d);              // rounds back; no-op for fp32
 *     free(tmp); */
#ifndef GPT50B_F32_VIEW_H
#define GPT50B_F32_VIEW_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dtype.h"

/* n floats of scratch for a view of a dt buffer: NULL when dt is fp32 (no copy needed). */
static inline float *f32_scratch(enum dtype dt, size_t n)
{
    if (dt == DTYPE_FP32) return NULL;
    float *p = malloc((n ? n : 1) * sizeof(float));
    CHECK_MSG(p != NULL, "out of host memory for an fp32 scratch buffer");
    return p;
}

/* Read-only fp32 view of elements [off, off+n) of p. O(n) for fp16/bf16, O(1) for fp32. */
static inline const float *f32_in(enum dtype dt, const void *p, size_t off, size_t n, float *tmp)
{
    if (dt == DTYPE_FP32) return (const float *)p + off;
    dtype_to_f32(dt, (const char *)p + off * dtype_size(dt), tmp, n);
    return tmp;
}

/* Writable view holding the current values (for += outputs); finish with f32_store. */
static inline float *f32_inout(enum dtype dt, void *p, size_t off, size_t n, float *tmp)
{
    if (dt == DTYPE_FP32) return (float *)p + off;
    dtype_to_f32(dt, (const char *)p + off * dtype_size(dt), tmp, n);
    return tmp;
}

/* Writable view with undefined contents (for overwritten outputs); finish with f32_store. */
static inline float *f32_out(enum dtype dt, void *p, size_t off, float *tmp)
{
    return dt == DTYPE_FP32 ? (float *)p + off : tmp;
}

/* Writable view of n zeros (for outputs that a kernel adds onto from nothing, instead of onto their
 * current values); finish with f32_store. */
static inline float *f32_zeroed(enum dtype dt, void *p, size_t n, float *tmp)
{
    float *v = f32_out(dt, p, 0, tmp);
    memset(v, 0, n * sizeof(float));
    return v;
}

/* Rounds a view from f32_inout/f32_out/f32_zeroed back into elements [off, off+n) of p. */
static inline void f32_store(enum dtype dt, void *p, size_t off, size_t n, const float *view)
{
    if (dt != DTYPE_FP32) dtype_from_f32(dt, view, (char *)p + off * dtype_size(dt), n);
}

#endif
