/* flash_attention.cu: causal multi-head self-attention as fused flash-style kernels (FlashAttention
 * 2's loop order), forward and backward, with no T x T matrix in memory.
 *
 * Same qkv[N,3C] / out[N,C] layout as attention.cu; the forward keeps two fp32 statistics per
 * query row (stats[B,NH,T,2]: the row max of the scaled scores and the sum of their exponentials,
 * see kernels_cpu.h) and the backward recomputes the probabilities from them. The CPU reference is
 * cpu/flash_attention.c.
 *
 * Tiles: a block of 4 warps (128 threads) owns 64 rows of one (batch, head) pair, 16 rows per
 * warp, and walks over tiles of 64 rows of the other side, double-buffered in shared memory by
 * cp.async (the next tile loads while this one computes). Tiles are HS fp16/bf16 elements wide
 * and swizzled in 16-byte chunks (chunk c of row r at c ^ (r & 7)), so the ldmatrix reads of 8
 * rows hit 8 different bank groups. Products are mma.sync m16n8k16 (fp16/bf16 operands, fp32
 * accumulators); a warp's scores stay in its accumulator registers and become, rounded to the
 * storage type, the A operand of the next product (the accumulator layout of two 8-column tiles
 * is the A layout of one 16-deep step), so probabilities never touch shared memory.
 *   forward   block = 64 queries; for each key tile: S = Q K^T, online softmax (running max and
 *             sum per row, earlier output rescaled), O += P V. Shared: Q + 2 x K + V; V has one
 *             buffer (its next tile loads while S and the softmax of the next step compute), which
 *             keeps a block at 64 KiB for HS 128: 3 blocks (12 warps) an SM instead of 2.
 *   backward  (1) one warp per row: delta = rowsum(dout * out), and lse2 = log2 of the softmax
 *             denominator in base 2, into scratch; (2) block = 64 keys; for each query tile:
 *             S^T = K Q^T, P^T = exp2(S^T scale log2e - lse2), dV += P^T dO, dP^T = V dO^T,
 *             dS^T = P^T (dP^T - delta), dK += dS^T Q. Shared: K, V + 2 x (Q, dO); (3) block =
 *             64 queries; for each key tile: S, P, dP as in (2), dQ += dS K. Shared: Q, dO +
 *             2 x (K, V).
 * dQ gets its own pass (7 products of 64 x 64 x HS per tile pair instead of FlashAttention 2's 5)
 * because accumulating it across key tiles in one pass needs atomics, whose order and so whose
 * bits vary run to run; here every sum runs in an order fixed by the shapes, like the rest of
 * the kernels. The gradients are added to dqkv in fp32 and rounded once (dqkv += scale * sum),
 * like attention.cu's GEMMs with beta 1, or, each element having one writer, stored (add 0) with
 * the bits of that sum into a zeroed dqkv.
 *
 * Causality: a query tile reads key tiles up to its own diagonal, and only the diagonal tile is
 * masked; the heaviest tiles start first. Rows past T (the last tile when T % 64 != 0) load as
 * zeros and are never stored; their lse2 is +inf, so their probabilities are 0 in the backward.
 *
 * Supported: fp16 and bf16, head sizes 64 and 128, compute capability 8.0 or newer (mma.sync
 * m16n8k16 and cp.async; on older cards and in PTX built for them the kernels trap), T anything,
 * all pointers 16-byte aligned. Head size 256 (C 8192, NH 32) is refused: the backward's
 * accumulators for 16 keys x 256 (dK and dV, 256 fp32 registers a thread) do not fit a warp's
 * registers in this design; fp32 is refused: the tensor-core products would round it. Callers
 * ask flash_attention_cuda_supported() and otherwise use attention_*_cuda. */
#include <type_traits>

#include "common.cuh"
#include "cuda_scratch.h"

#define FA_TILE    64 /* rows of a block's own side and of each tile of the other side */
#define FA_WARPS   4  /* 16 rows each */
#define FA_THREADS (FA_WARPS * 32)
#define FA_LOG2E   1.44269504088896341f

/* The kernels need sm_80 (mma.sync m16n8k16, cp.async); in a pass for an older target they trap. */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define FA_ARCH_OK 1
#else
#define FA_ARCH_OK 0
#endif

/* ---- PTX wrappers ---- */

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Four 8x8 b16 matrices; lane l gives the address of row l % 8 of matrix l / 8. */
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* d[16x8] += a[16x16] . b[16x8], fp32 accumulators. Fragments (g = lane / 4, t = lane % 4):
 * a[0] (row g, cols 2t, 2t+1), a[1] (row g+8, same), a[2] (row g, cols 2t+8, 2t+9), a[3] (row
 * g+8, same); b0 (rows 2t, 2t+1, col g), b1 (rows 2t+8, 2t+9, col g); d[0..1] (row g, cols 2t,
 * 2t+1), d[2..3] (row g+8, same). */
template <typename S>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1);

template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                 "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                        uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
                 "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}

__device__ __forceinline__ void cp_async4(void *smem, const void *gmem)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}

/* Waits until at most n of this thread's committed groups are still in flight. */
template <int n> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(n));
}

/* 2^x, relative error about 2^-22; 2^-inf = 0. */
__device__ __forceinline__ float exp2_approx(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* Two fp32 values as one register of two storage-type elements (lo in the low half), and back. */
template <typename S> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

template <typename S> __device__ __forceinline__ float2 unpack2(uint32_t x);
template <> __device__ __forceinline__ float2 unpack2<__half>(uint32_t x)
{
    return __half22float2(*reinterpret_cast<__half2 *>(&x));
}
template <> __device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t x)
{
    return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&x));
}

/* ---- tiles in shared memory: FA_TILE rows of HS elements, 16-byte chunks swizzled ---- */

/* Element offset of (row r, column c), c a multiple of 8. */
template <int HS> __device__ __forceinline__ int swz(int r, int c)
{
    return r * HS + ((((c >> 3) ^ (r & 7))) << 3);
}

/* Starts copying rows [row0, row0 + FA_TILE) of the HS columns at g (rows ld elements apart) into
 * tile; rows at or past T become zeros. Complete after cp_async_wait and a barrier. */
template <typename S, int HS>
__device__ __forceinline__ void tile_load(S *tile, const S *g, size_t ld, int row0, int T)
{
    constexpr int CHUNKS = HS / 8;
    for (int i = threadIdx.x; i < FA_TILE * CHUNKS; i += FA_THREADS) {
        int r = i / CHUNKS, c = (i % CHUNKS) * 8;
        S *dst = tile + swz<HS>(r, c);
        if (row0 + r < T)
            cp_async16(dst, g + (size_t)(row0 + r) * ld + c);
        else
            *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
    }
}

/* Starts copying lse2 and delta of rows [row0, row0 + FA_TILE) into rs[0, FA_TILE) and
 * rs[FA_TILE, 2 FA_TILE); rows at or past T get +inf and 0, which make their probabilities and
 * gradients 0. */
__device__ __forceinline__ void rows_load(float *rs, const float *lse2, const float *delta,
                                          int row0, int T)
{
    for (int i = threadIdx.x; i < 2 * FA_TILE; i += FA_THREADS) {
        const int r = row0 + i % FA_TILE;
        const bool is_delta = i >= FA_TILE;
        if (r < T)
            cp_async4(rs + i, (is_delta ? delta : lse2) + r);
        else
            rs[i] = is_delta ? 0.0f : INFINITY;
    }
}

/* The lane's ldmatrix row in a 16 x 16 block at a tile's origin: row lr, 16-byte chunk lc (0 or
 * 1), as a byte offset with the swizzle applied. Rows are 2 HS >= 128 bytes, so the chunk bits
 * (4 to 6) of the offset are the swizzled chunk within its group of 8. */
template <int HS> __device__ __forceinline__ uint32_t lane_off(int lr, int lc)
{
    return lr * HS * 2 + ((lc ^ (lr & 7)) << 4);
}

/* The lane's address in the 16 x 16 block at (r0, c0) of a tile, r0 % 8 == 0, c0 % 16 == 0. The
 * block's chunk pair (2u, 2u + 1) within its group swizzles as an XOR by 2u of the origin's, so
 * every block's address is the origin's offset, one XOR and constants (no per-block registers). */
template <int HS>
__device__ __forceinline__ uint32_t block_addr(uint32_t tile, uint32_t off, int r0, int c0)
{
    return tile + r0 * HS * 2 + (off ^ (((c0 >> 3) & 7) << 4)) + ((c0 >> 6) << 7);
}

/* Lane's ldmatrix address for the A fragment of rows [r0, r0+16), columns [c0, c0+16) of a tile;
 * with .trans, the same address gives the B fragments of columns [c0, c0+16) (two 8-column
 * tiles) over rows [r0, r0+16) of a tile stored [k][n]. */
template <int HS, typename S>
__device__ __forceinline__ uint32_t frag_addr(const S *tile, int r0, int c0, int lane)
{
    static_assert(sizeof(S) == 2, "16-bit tiles");
    return block_addr<HS>(smem_addr(tile), lane_off<HS>(lane & 15, lane >> 4), r0, c0);
}

/* Lane's ldmatrix address for the B fragments of rows [n0, n0+16) (two 8-column tiles of B)
 * over columns [k0, k0+16) of a tile stored [n][k]: registers b0, b1 of n0, then of n0 + 8. */
template <int HS, typename S>
__device__ __forceinline__ uint32_t frag_addr_nk(const S *tile, int n0, int k0, int lane)
{
    static_assert(sizeof(S) == 2, "16-bit tiles");
    return block_addr<HS>(smem_addr(tile),
                          lane_off<HS>((lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1), n0, k0);
}

/* ---- warp-level products ---- */

/* s[16 x FA_TILE] = rows [r0, r0+16) of tile a . (all rows of tile b)^T, over HS: one warp's
 * scores (queries x keys, or keys x queries). */
template <typename S, int HS>
__device__ __forceinline__ void warp_scores(float (&s)[FA_TILE / 8][4], const S *a, int r0,
                                            const S *b, int lane)
{
#pragma unroll
    for (int n = 0; n < FA_TILE / 8; n++)
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) {
        uint32_t af[4];
        ldsm_x4(af, frag_addr<HS>(a, r0, kk * 16, lane));
#pragma unroll
        for (int np = 0; np < FA_TILE / 16; np++) {
            uint32_t bf[4];
            ldsm_x4(bf, frag_addr_nk<HS>(b, np * 16, kk * 16, lane));
            mma16816<S>(s[2 * np], af, bf[0], bf[1]);
            mma16816<S>(s[2 * np + 1], af, bf[2], bf[3]);
        }
    }
}

/* acc[16 x HS] += p[16 x FA_TILE] . tile v (stored [FA_TILE][HS], i.e. [k][n]). */
template <typename S, int HS>
__device__ __forceinline__ void warp_pv(float (&acc)[HS / 8][4],
                                        const uint32_t (&p)[FA_TILE / 16][4], const S *v, int lane)
{
#pragma unroll
    for (int kk = 0; kk < FA_TILE / 16; kk++)
#pragma unroll
        for (int np = 0; np < HS / 16; np++) {
            uint32_t bf[4];
            ldsm_x4_trans(bf, frag_addr<HS>(v, kk * 16, np * 16, lane));
            mma16816<S>(acc[2 * np], p[kk], bf[0], bf[1]);
            mma16816<S>(acc[2 * np + 1], p[kk], bf[2], bf[3]);
        }
}

/* The accumulators of a 16 x FA_TILE product, rounded to S, as the A fragments of the next. */
template <typename S>
__device__ __forceinline__ void to_a_frags(uint32_t (&a)[FA_TILE / 16][4],
                                           const float (&s)[FA_TILE / 8][4])
{
#pragma unroll
    for (int kk = 0; kk < FA_TILE / 16; kk++) {
        a[kk][0] = pack2<S>(s[2 * kk][0], s[2 * kk][1]);
        a[kk][1] = pack2<S>(s[2 * kk][2], s[2 * kk][3]);
        a[kk][2] = pack2<S>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[kk][3] = pack2<S>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

/* dst[0..HS) += alpha * row hr (0: g, 1: g + 8) of a warp's 16 x HS accumulators, rounded once;
 * the lane's columns are 8n + 2t, 8n + 2t + 1. With `add` 0, dst's old values are not read and
 * count as +0: the bits of the sum into a zeroed dst, without the zero fill or the read. */
template <typename S, int HS>
__device__ __forceinline__ void row_accumulate(S *dst, const float (&acc)[HS / 8][4], int hr,
                                               float alpha, int t, bool add)
{
#pragma unroll
    for (int n = 0; n < HS / 8; n++) {
        uint32_t *p = reinterpret_cast<uint32_t *>(dst + n * 8 + 2 * t);
        float2 old = add ? unpack2<S>(*p) : make_float2(0.0f, 0.0f);
        *p = pack2<S>(old.x + alpha * acc[n][2 * hr], old.y + alpha * acc[n][2 * hr + 1]);
    }
}

/* ---- forward ---- */

/* grid (B*NH, query tiles), heaviest (last) query tile first. */
template <typename S, int HS>
__global__ void __launch_bounds__(FA_THREADS, 3) /* at most 168 registers: 3 blocks an SM */
    flash_forward_kernel(S *__restrict__ out, float2 *__restrict__ stats, const S *__restrict__ qkv,
                         int T, int C, int NH)
{
#if FA_ARCH_OK
    constexpr int TILE = FA_TILE * HS;
    extern __shared__ uint4 fa_smem[];
    S *sq = reinterpret_cast<S *>(fa_smem), *sk = sq + TILE, *sv = sk + 2 * TILE;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    const int q0 = (gridDim.y - 1 - blockIdx.y) * FA_TILE;
    const size_t ld = 3 * (size_t)C;
    const S *q = qkv + (size_t)b * T * ld + h * HS, *k = q + C, *v = q + 2 * C;
    const float scale = rsqrtf((float)HS), c = scale * FA_LOG2E;
    const int nkt = (min(q0 + FA_TILE, T) + FA_TILE - 1) / FA_TILE; /* keys up to the diagonal */
    const int row0 = q0 + warp * 16 + g; /* the lane's rows: row0 and row0 + 8 */

    /* cp.async groups in commit order: (Q, K0), V0, K1, V1, ...; each wait_group<1> below leaves
     * only the newest group in flight, which is the one this step does not read yet */
    tile_load<S, HS>(sq, q, ld, q0, T);
    tile_load<S, HS>(sk, k, ld, 0, T);
    cp_async_commit();
    tile_load<S, HS>(sv, v, ld, 0, T);
    cp_async_commit();

    float o[HS / 8][4] = {};
    /* running max of the raw scores q.k and the lane's part of the sum of exp2((s - m) c) */
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    for (int j = 0; j < nkt; j++) {
        const int st = j & 1;
        cp_async_wait<1>(); /* K_j */
        __syncthreads();
        if (j + 1 < nkt) tile_load<S, HS>(sk + (st ^ 1) * TILE, k, ld, (j + 1) * FA_TILE, T);
        cp_async_commit();
        float s[FA_TILE / 8][4];
        warp_scores<S, HS>(s, sq, warp * 16, sk + st * TILE, lane);
        const int key0 = j * FA_TILE;
        if (key0 + FA_TILE - 1 > q0) { /* the diagonal tile: keys after the query are masked */
#pragma unroll
            for (int n = 0; n < FA_TILE / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (key0 + n * 8 + 2 * t + (e & 1) > row0 + (e >> 1) * 8) s[n][e] = -INFINITY;
        }
        /* Online softmax. Key tile 0 holds key 0, which every row sees, so m is finite after it
         * and (m - mx) is never -inf - -inf. */
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float mx = m[hr];
#pragma unroll
            for (int n = 0; n < FA_TILE / 8; n++)
                mx = fmaxf(mx, fmaxf(s[n][2 * hr], s[n][2 * hr + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float alpha = exp2_approx((m[hr] - mx) * c), mc = mx * c;
            m[hr] = mx;
            l[hr] *= alpha;
#pragma unroll
            for (int n = 0; n < HS / 8; n++) {
                o[n][2 * hr] *= alpha;
                o[n][2 * hr + 1] *= alpha;
            }
#pragma unroll
            for (int n = 0; n < FA_TILE / 8; n++)
#pragma unroll
                for (int e = 2 * hr; e < 2 * hr + 2; e++) {
                    s[n][e] = exp2_approx(fmaf(s[n][e], c, -mc));
                    l[hr] += s[n][e];
                }
        }
        uint32_t p[FA_TILE / 16][4];
        to_a_frags<S>(p, s);
        cp_async_wait<1>(); /* V_j */
        __syncthreads();
        warp_pv<S, HS>(o, p, sv, lane);
        __syncthreads(); /* every warp is done with V_j */
        if (j + 1 < nkt) tile_load<S, HS>(sv, v, ld, (j + 1) * FA_TILE, T);
        cp_async_commit();
    }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 1);
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 2);
        const int row = row0 + hr * 8;
        if (row >= T) continue;
        const float inv = 1.0f / l[hr];
        S *y = out + ((size_t)b * T + row) * C + h * HS;
#pragma unroll
        for (int n = 0; n < HS / 8; n++)
            *reinterpret_cast<uint32_t *>(y + n * 8 + 2 * t) =
                pack2<S>(o[n][2 * hr] * inv, o[n][2 * hr + 1] * inv);
        if (t == 0) stats[(size_t)bh * T + row] = make_float2(m[hr] * scale, l[hr]);
    }
#else
    __trap();
#endif
}

/* ---- backward ---- */

/* One warp per row r = (b*NH + h)*T + t: delta[r] = dout . out over the head's columns, and
 * lse2[r] = m log2e + log2 l, so that p = exp2(q.k scale log2e - lse2). */
template <typename S, int HS>
__global__ void flash_backward_prep_kernel(float *__restrict__ delta, float *__restrict__ lse2,
                                           const S *__restrict__ dout, const S *__restrict__ out,
                                           const float2 *__restrict__ stats, int rows, int T, int C,
                                           int NH)
{
#if FA_ARCH_OK
    const int r = blockIdx.x * FA_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const int bh = r / T, t = r % T, b = bh / NH, h = bh % NH;
    const size_t off = ((size_t)b * T + t) * C + h * HS;
    float d = 0.0f;
#pragma unroll
    for (int i = lane * 2; i < HS; i += 64) {
        float2 x = unpack2<S>(*reinterpret_cast<const uint32_t *>(dout + off + i));
        float2 y = unpack2<S>(*reinterpret_cast<const uint32_t *>(out + off + i));
        d += x.x * y.x + x.y * y.y;
    }
    d = warp_sum(d);
    if (lane == 0) {
        delta[r] = d;
        lse2[r] = stats[r].x * FA_LOG2E + log2f(stats[r].y);
    }
#else
    __trap();
#endif
}

/* dK and dV of one key tile: grid (B*NH, key tiles); key tile kt meets query tiles kt and later. */
template <typename S, int HS>
__global__ void __launch_bounds__(FA_THREADS)
    flash_backward_dkdv_kernel(S *__restrict__ dqkv, const S *__restrict__ dout,
                               const S *__restrict__ qkv, const float *__restrict__ delta,
                               const float *__restrict__ lse2, int T, int C, int NH, bool add)
{
#if FA_ARCH_OK
    constexpr int TILE = FA_TILE * HS;
    extern __shared__ uint4 fa_smem[];
    S *sk = reinterpret_cast<S *>(fa_smem), *sv = sk + TILE, *sq = sv + TILE, *sdo = sq + 2 * TILE;
    float *srows = reinterpret_cast<float *>(sdo + 2 * TILE); /* 2 x (lse2, delta) of FA_TILE */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    const int kt = blockIdx.y, k0 = kt * FA_TILE;
    const size_t ld = 3 * (size_t)C;
    const S *q = qkv + (size_t)b * T * ld + h * HS, *k = q + C, *v = q + 2 * C;
    const S *go = dout + (size_t)b * T * C + h * HS;
    const float *del = delta + (size_t)bh * T, *lse = lse2 + (size_t)bh * T;
    const float scale = rsqrtf((float)HS), c = scale * FA_LOG2E;
    const int nqt = (T + FA_TILE - 1) / FA_TILE;
    const int key0 = k0 + warp * 16 + g; /* the lane's keys: key0 and key0 + 8 */

    tile_load<S, HS>(sk, k, ld, k0, T);
    tile_load<S, HS>(sv, v, ld, k0, T);
    tile_load<S, HS>(sq, q, ld, k0, T);
    tile_load<S, HS>(sdo, go, C, k0, T);
    rows_load(srows, lse, del, k0, T);
    cp_async_commit();

    float dk[HS / 8][4] = {}, dv[HS / 8][4] = {};
    for (int i = kt; i < nqt; i++) {
        const int st = (i - kt) & 1, qt0 = i * FA_TILE;
        if (i + 1 < nqt) {
            tile_load<S, HS>(sq + (st ^ 1) * TILE, q, ld, qt0 + FA_TILE, T);
            tile_load<S, HS>(sdo + (st ^ 1) * TILE, go, C, qt0 + FA_TILE, T);
            rows_load(srows + (st ^ 1) * 2 * FA_TILE, lse, del, qt0 + FA_TILE, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const S *q_i = sq + st * TILE, *do_i = sdo + st * TILE;
        const float *lse_i = srows + st * 2 * FA_TILE, *del_i = lse_i + FA_TILE;
        /* P^T: rows are the warp's keys, columns the tile's queries */
        float p[FA_TILE / 8][4];
        warp_scores<S, HS>(p, sk, warp * 16, q_i, lane);
        const bool diag = i == kt;
#pragma unroll
        for (int n = 0; n < FA_TILE / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n * 8 + 2 * t + (e & 1);
                p[n][e] = diag && qt0 + col < key0 + (e >> 1) * 8
                              ? 0.0f
                              : exp2_approx(fmaf(p[n][e], c, -lse_i[col]));
            }
        uint32_t pa[FA_TILE / 16][4];
        to_a_frags<S>(pa, p);
        warp_pv<S, HS>(dv, pa, do_i, lane);
        /* dS^T = P^T (dP^T - delta), dP^T = V dO^T, with P^T as rounded for dV: the fp32 P^T
         * would stay live through the product, which then spills at HS 128 */
        float ds[FA_TILE / 8][4];
        warp_scores<S, HS>(ds, sv, warp * 16, do_i, lane);
#pragma unroll
        for (int kk = 0; kk < FA_TILE / 16; kk++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const int n = 2 * kk + (r >> 1), e = (r & 1) * 2; /* pa[kk][r] = p[n][e..e+1] */
                const int col = n * 8 + 2 * t;
                const float2 pf = unpack2<S>(pa[kk][r]);
                ds[n][e] = pf.x * (ds[n][e] - del_i[col]);
                ds[n][e + 1] = pf.y * (ds[n][e + 1] - del_i[col + 1]);
            }
        uint32_t a[FA_TILE / 16][4];
        to_a_frags<S>(a, ds);
        warp_pv<S, HS>(dk, a, q_i, lane);
        __syncthreads(); /* this stage is reloaded by the next iteration */
    }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int key = key0 + hr * 8;
        if (key >= T) continue;
        S *dkey = dqkv + ((size_t)b * T + key) * ld + C + h * HS;
        row_accumulate<S, HS>(dkey, dk, hr, scale, t, add);
        row_accumulate<S, HS>(dkey + C, dv, hr, 1.0f, t, add);
    }
#else
    __trap();
#endif
}

/* dQ of one query tile: grid (B*NH, query tiles), heaviest first. */
template <typename S, int HS>
__global__ void __launch_bounds__(FA_THREADS)
    flash_backward_dq_kernel(S *__restrict__ dqkv, const S *__restrict__ dout,
                             const S *__restrict__ qkv, const float *__restrict__ delta,
                             const float *__restrict__ lse2, int T, int C, int NH, bool add)
{
#if FA_ARCH_OK
    constexpr int TILE = FA_TILE * HS;
    extern __shared__ uint4 fa_smem[];
    S *sq = reinterpret_cast<S *>(fa_smem), *sdo = sq + TILE, *sk = sdo + TILE, *sv = sk + 2 * TILE;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
    const int q0 = (gridDim.y - 1 - blockIdx.y) * FA_TILE;
    const size_t ld = 3 * (size_t)C;
    const S *q = qkv + (size_t)b * T * ld + h * HS, *k = q + C, *v = q + 2 * C;
    const S *go = dout + (size_t)b * T * C + h * HS;
    const float scale = rsqrtf((float)HS), c = scale * FA_LOG2E;
    const int nkt = (min(q0 + FA_TILE, T) + FA_TILE - 1) / FA_TILE;
    const int row0 = q0 + warp * 16 + g;
    float lq[2], dl[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int row = row0 + hr * 8;
        lq[hr] = row < T ? lse2[(size_t)bh * T + row] : INFINITY;
        dl[hr] = row < T ? delta[(size_t)bh * T + row] : 0.0f;
    }

    tile_load<S, HS>(sq, q, ld, q0, T);
    tile_load<S, HS>(sdo, go, C, q0, T);
    tile_load<S, HS>(sk, k, ld, 0, T);
    tile_load<S, HS>(sv, v, ld, 0, T);
    cp_async_commit();

    float dq[HS / 8][4] = {};
    for (int j = 0; j < nkt; j++) {
        const int st = j & 1, key0 = j * FA_TILE;
        if (j + 1 < nkt) {
            tile_load<S, HS>(sk + (st ^ 1) * TILE, k, ld, key0 + FA_TILE, T);
            tile_load<S, HS>(sv + (st ^ 1) * TILE, v, ld, key0 + FA_TILE, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const S *k_j = sk + st * TILE, *v_j = sv + st * TILE;
        float p[FA_TILE / 8][4], ds[FA_TILE / 8][4];
        warp_scores<S, HS>(p, sq, warp * 16, k_j, lane);
        warp_scores<S, HS>(ds, sdo, warp * 16, v_j, lane);
        const bool diag = key0 + FA_TILE - 1 > q0;
#pragma unroll
        for (int n = 0; n < FA_TILE / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int hr = e >> 1;
                const float pe = diag && key0 + n * 8 + 2 * t + (e & 1) > row0 + hr * 8
                                     ? 0.0f
                                     : exp2_approx(fmaf(p[n][e], c, -lq[hr]));
                ds[n][e] = pe * (ds[n][e] - dl[hr]);
            }
        uint32_t a[FA_TILE / 16][4];
        to_a_frags<S>(a, ds);
        warp_pv<S, HS>(dq, a, k_j, lane);
        __syncthreads(); /* this stage is reloaded by the next iteration */
    }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int row = row0 + hr * 8;
        if (row < T)
            row_accumulate<S, HS>(dqkv + ((size_t)b * T + row) * ld + h * HS, dq, hr, scale, t,
                                  add);
    }
#else
    __trap();
#endif
}

/* ---- launchers ---- */

/* Calls f(dtype_tag<S>{}, std::integral_constant<int, HS>{}) for a supported (dt, hs). */
template <typename F> static void flash_dispatch(enum dtype dt, int hs, F &&f)
{
    using HS64 = std::integral_constant<int, 64>;
    using HS128 = std::integral_constant<int, 128>;
    if (dt == DTYPE_FP16 && hs == 64) return f(dtype_tag<__half>{}, HS64{});
    if (dt == DTYPE_FP16 && hs == 128) return f(dtype_tag<__half>{}, HS128{});
    if (dt == DTYPE_BF16 && hs == 64) return f(dtype_tag<__nv_bfloat16>{}, HS64{});
    if (dt == DTYPE_BF16 && hs == 128) return f(dtype_tag<__nv_bfloat16>{}, HS128{});
    CHECK_MSG(0, "flash attention takes fp16 or bf16 with head size 64 or 128 "
                 "(flash_attention_cuda_supported); use attention_*_cuda otherwise");
}

extern "C" int flash_attention_cuda_supported(int C, int NH, enum dtype dt)
{
    int dev, major;
    if (!flash_attention_shape_ok(C, NH, dt)) return 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    return major >= 8;
}

static void flash_check(int B, int T, int C, int NH, enum dtype dt)
{
    CHECK_MSG(B > 0 && T > 0 && NH > 0 && C % NH == 0, "attention needs C a multiple of NH");
    CHECK_MSG((T + FA_TILE - 1) / FA_TILE <= 65535, "flash attention: T past 65535 x 64");
    CHECK_MSG(flash_attention_cuda_supported(C, NH, dt),
              "flash attention needs fp16 or bf16, head size 64 or 128 and a GPU of compute "
              "capability 8.0 or newer; use attention_*_cuda otherwise");
}

/* Opts the kernel in to `bytes` of dynamic shared memory (past the default 48 KiB). */
template <typename K> static void flash_smem(K kernel, size_t bytes)
{
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

extern "C" void flash_attention_forward_cuda(void *out, float *stats, const void *qkv, int B, int T,
                                             int C, int NH, enum dtype dt, cudaStream_t stream)
{
    flash_check(B, T, C, NH, dt);
    CHECK_MSG(aligned16(out) && aligned16(qkv) && (uintptr_t)stats % 8 == 0,
              "flash attention needs 16-byte aligned out and qkv, 8-byte aligned stats");
    flash_dispatch(dt, C / NH, [&](auto tag, auto hs) {
        using S = typename decltype(tag)::type;
        constexpr int HS = decltype(hs)::value;
        const size_t smem = 4 * FA_TILE * HS * sizeof(S); /* Q + 2 x K + V */
        flash_smem(flash_forward_kernel<S, HS>, smem);
        dim3 grid(B * NH, (T + FA_TILE - 1) / FA_TILE);
        flash_forward_kernel<S, HS><<<grid, FA_THREADS, smem, stream>>>((S *)out, (float2 *)stats,
                                                                        (const S *)qkv, T, C, NH);
        CUDA_LAUNCH_CHECK();
    });
}

extern "C" void flash_attention_backward_cuda(void *dqkv, const void *dout, const void *qkv,
                                              const void *out, const float *stats, int B, int T,
                                              int C, int NH, enum dtype dt, int add, void *scratch,
                                              cudaStream_t stream)
{
    flash_check(B, T, C, NH, dt);
    CHECK_MSG(scratch != NULL, "flash attention backward needs the scratch buffer of "
                               "flash_attention_backward_cuda_scratch_bytes()");
    CHECK_MSG(aligned16(dqkv) && aligned16(dout) && aligned16(qkv) && aligned16(out) &&
                  (uintptr_t)stats % 8 == 0,
              "flash attention needs 16-byte aligned dqkv, dout, qkv and out, 8-byte aligned "
              "stats");
    float *delta = (float *)scratch;
    float *lse2 = (float *)((char *)scratch + flash_rows_bytes(B, T, NH));
    flash_dispatch(dt, C / NH, [&](auto tag, auto hs) {
        using S = typename decltype(tag)::type;
        constexpr int HS = decltype(hs)::value;
        const int rows = B * NH * T;
        flash_backward_prep_kernel<S, HS><<<ceil_div(rows, FA_WARPS), FA_THREADS, 0, stream>>>(
            delta, lse2, (const S *)dout, (const S *)out, (const float2 *)stats, rows, T, C, NH);
        CUDA_LAUNCH_CHECK();
        const size_t smem = 6 * FA_TILE * HS * sizeof(S);            /* 2 tiles + 2 x 2 tiles */
        const size_t smem_dkdv = smem + 4 * FA_TILE * sizeof(float); /* + 2 x (lse2, delta) */
        dim3 grid(B * NH, (T + FA_TILE - 1) / FA_TILE);
        flash_smem(flash_backward_dkdv_kernel<S, HS>, smem_dkdv);
        flash_backward_dkdv_kernel<S, HS><<<grid, FA_THREADS, smem_dkdv, stream>>>(
            (S *)dqkv, (const S *)dout, (const S *)qkv, delta, lse2, T, C, NH, add);
        CUDA_LAUNCH_CHECK();
        flash_smem(flash_backward_dq_kernel<S, HS>, smem);
        flash_backward_dq_kernel<S, HS><<<grid, FA_THREADS, smem, stream>>>(
            (S *)dqkv, (const S *)dout, (const S *)qkv, delta, lse2, T, C, NH, add);
        CUDA_LAUNCH_CHECK();
    });
}
