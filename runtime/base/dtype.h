/* dtype.h: the three element types of parameters, activations and gradients.
 *
 * Every kernel takes an `enum dtype` for its parameter/activation buffers and accumulates in
 * fp32 whatever the storage type. Statistics (LayerNorm mean/rstd, losses, optimizer state) are
 * always fp32. Conversions round to nearest even; fp16 overflow gives +-inf like the hardware. */
#ifndef GPT50B_DTYPE_H
#define GPT50B_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum dtype {
    DTYPE_FP32,
    DTYPE_FP16,
    DTYPE_BF16,
};

/* Bytes of one element. */
size_t dtype_size(enum dtype dt);
/* "fp32", "fp16", "bf16" */
const char *dtype_name(enum dtype dt);

float dtype_fp16_to_f32(uint16_t h);
uint16_t dtype_f32_to_fp16(float f);
float dtype_bf16_to_f32(uint16_t h);
uint16_t dtype_f32_to_bf16(float f);

/* Element i of buffer p of type dt as fp32, and the reverse. O(1). */
float dtype_load(enum dtype dt, const void *p, size_t i);
void dtype_store(enum dtype dt, void *p, size_t i, float x);

/* Bulk conversions of n elements. src and dst must not overlap unless the types are equal. */
void dtype_to_f32(enum dtype dt, const void *src, float *dst, size_t n);
void dtype_from_f32(enum dtype dt, const float *src, void *dst, size_t n);

#endif
