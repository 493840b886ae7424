/* cuda_scratch.h: how the CUDA kernels cut their work into chunks, and so how much scratch each
 * launcher needs: plain arithmetic shared by the .cu files (which launch by it) and
 * cuda_scratch.c (the *_cuda_scratch_bytes of kernels_cuda.h). cuda_scratch.c is compiled in every
 * build, so the simulation build, which runs no kernel but simulates GPU memory, asks StarPU for
 * the scratch buffers a real run allocates. C and CUDA; no CUDA types. */
#ifndef GPT50B_CUDA_SCRATCH_H
#define GPT50B_CUDA_SCRATCH_H

#include <stddef.h>

/* Deterministic column sums of an [N, C] matrix (common.cuh's colsum_launch: matmul dbias,
 * layernorm dweight and dbias): the rows are cut into colsum_chunks(N) chunks, one fp32 partial
 * per (value, chunk, column). The chunking depends on N only. */
#define COLSUM_CHUNK_ROWS 256 /* rows of one chunk, at least */
#define COLSUM_CHUNKS_MAX 64

static inline int colsum_chunks(int N)
{
    int c = (N + COLSUM_CHUNK_ROWS - 1) / COLSUM_CHUNK_ROWS;
    return c < 1 ? 1 : c > COLSUM_CHUNKS_MAX ? COLSUM_CHUNKS_MAX : c;
}

static inline size_t colsum_scratch_bytes(int N, int C, int nvalues)
{
    return (size_t)nvalues * colsum_chunks(N) * C * sizeof(float);
}

static inline size_t align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

/* Attention (attention.cu's cuBLAS path): a chunk of heads at a time into scratch, forward and
 * backward alike (so that both run the scores' GEMM on chunks of the same size): the fp32 scores
 * (then, in the backward, datt), the probabilities and dpreatt in the storage type (elem_bytes
 * each). */
#define ATT_CHUNK_BYTES (64u << 20)

/* Heads per chunk when each score element takes elem_bytes of scratch, evened out over the
 * chunks (10 + 6 heads become 8 + 8). Depends on T and NH only. */
static inline int att_heads_per_chunk(int T, int NH, size_t elem_bytes)
{
    size_t hc = ATT_CHUNK_BYTES / ((size_t)T * T * elem_bytes);
    hc = hc < 1 ? 1 : hc > (size_t)NH ? (size_t)NH : hc;
    size_t nchunks = (NH + hc - 1) / hc;
    return (int)((NH + nchunks - 1) / nchunks);
}

static inline int att_heads(int T, int NH, size_t elem_bytes)
{
    return att_heads_per_chunk(T, NH, sizeof(float) + 2 * elem_bytes);
}

/* The chunk's fp32 buffer and each of its two storage-type buffers. */
static inline size_t att_f32_bytes(int T, int NH, size_t elem_bytes)
{
    return align256((size_t)att_heads(T, NH, elem_bytes) * T * T * sizeof(float));
}

static inline size_t att_s_bytes(int T, int NH, size_t elem_bytes)
{
    return align256((size_t)att_heads(T, NH, elem_bytes) * T * T * elem_bytes);
}

static inline size_t att_scratch_bytes(int T, int NH, size_t elem_bytes)
{
    return att_f32_bytes(T, NH, elem_bytes) + 2 * att_s_bytes(T, NH, elem_bytes);
}

/* Sum of squares (sumsq.cu): a grid fixed by n alone, one double partial per block. */
#define SUMSQ_THREADS    256
#define SUMSQ_BLOCKS_MAX 1024 /* also the thread count of the final block */
#define SUMSQ_MULTI_MAX  16   /* gradients of one sumsq_multi_cuda */

static inline int sumsq_blocks(size_t n)
{
    size_t b = (n + SUMSQ_THREADS * 16 - 1) / (SUMSQ_THREADS * 16);
    return b < 1 ? 1 : b > SUMSQ_BLOCKS_MAX ? SUMSQ_BLOCKS_MAX : (int)b;
}

/* Flash attention backward (flash_attention.cu): one fp32 per row of every head. */
static inline size_t flash_rows_bytes(int B, int T, int NH)
{
    return align256((size_t)B * NH * T * sizeof(float));
}

/* The shapes flash attention takes (flash_attention.cu; the card must also be sm_80 or newer):
 * fp16 or bf16 (dtype.h's 1 and 2), head size 64 or 128. The simulation build, which has no card
 * to ask, chooses flash attention by this alone, as a real run on its simulated GPUs would. */
static inline int flash_attention_shape_ok(int C, int NH, int dt)
{
    return NH > 0 && C % NH == 0 && (dt == 1 || dt == 2) && (C / NH == 64 || C / NH == 128);
}

#endif
