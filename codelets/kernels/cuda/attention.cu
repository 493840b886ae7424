/* attention.cu: CUDA causal multi-head self-attention and its backward through cuBLAS (llm.c's
 * non-cuDNN path, without the permutes): the path for what flash_attention.cu does not take (fp32,
 * head sizes other than 64 and 128), on the same contract (flash_attention_*_cpu's: out[N,C] and
 * per-row statistics stats[B,NH,T,2], no T x T buffer kept between forward and backward).
 *
 * qkv[N,3C] holds per token q | k | v with head h in columns [h*hs, (h+1)*hs). Head h of batch b
 * is therefore a [T,hs] matrix with row stride 3C, and heads follow each other at stride hs, so
 * cuBLAS's strided batched GEMM reads q, k, v, dout and writes out and dqkv in place (batched over
 * the heads of a chunk, one call per batch row b): no permuted copies. The GEMMs accumulate in
 * fp32; the scores q.k^T (scaled by 1/sqrt(hs) through alpha) and the gradient datt come out in
 * fp32, so the only roundings to the storage type are those of the probabilities (a GEMM operand,
 * as the stored att used to be), of dpreatt and of the final outputs. Softmax and its backward run
 * one warp per row over the causal part t2 <= t and write zeros above the diagonal.
 *
 * The forward computes a chunk of heads at a time into scratch: fp32 scores, the probabilities in
 * the storage type (and the statistics, the row max and the sum of exponentials), then out. The
 * backward recomputes the chunk's scores with the same GEMM (same shapes and batch count, hence
 * the same algorithm and bits) and its probabilities from the statistics as the forward rounded
 * them, then runs the softmax backward through them. The chunking is cuda_scratch.h's; the
 * scratch does not grow with B, nor with NH past ATT_CHUNK_BYTES. The chunk is large enough for the
 * batched GEMMs to fill the GPU: on an H100 (B=4, T=1024, NH=16, hs=128, fp16) forward + backward
 * took 0.87 ms with 64 MiB chunks, 1.9 ms with 16 MiB ones (which stay in L2 but batch only 2 to 4
 * heads per GEMM), when the forward kept att. */
#include "common.cuh"

#define ATT_WARPS 8 /* rows of one softmax block */

/* att[r, :] = causal softmax of preatt[r, :] over the rows r of a chunk (query t = r % T), and
 * stats[r] = (row max, sum of exp(x - max)). */
template <typename S>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_softmax_forward_kernel(S *__restrict__ att, float2 *__restrict__ stats,
                                     const float *__restrict__ preatt, int rows, int T)
{
    int r = blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int t = r % T;
    const float *x = preatt + (size_t)r * T;
    float m = -INFINITY, s = 0.0f;
    for (int j = lane; j <= t; j += 32)
        softmax_push(m, s, x[j]);
    warp_softmax_merge(m, s);
    if (lane == 0) stats[r] = make_float2(m, s);
    float inv = 1.0f / s;
    S *y = att + (size_t)r * T;
    for (int j = lane; j < T; j += 32)
        y[j] = from_f<S>(j <= t ? expf(x[j] - m) * inv : 0.0f);
}

/* The forward's probabilities again, from the same scores and the statistics it kept. */
template <typename S>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_probs_kernel(S *__restrict__ att, const float2 *__restrict__ stats,
                           const float *__restrict__ preatt, int rows, int T)
{
    int r = blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int t = r % T;
    const float *x = preatt + (size_t)r * T;
    float2 st = stats[r];
    float inv = 1.0f / st.y;
    S *y = att + (size_t)r * T;
    for (int j = lane; j < T; j += 32)
        y[j] = from_f<S>(j <= t ? expf(x[j] - st.x) * inv : 0.0f);
}
/* dpre[r, t2] = att[r, t2] * (datt[r, t2] - sum_t3 att[r, t3] * datt[r, t3]) for t2 <= t, else 0:
 * the softmax backward, unscaled (the scale is the alpha of the dq and dk GEMMs). */
template <typename S>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_softmax_backward_kernel(S *__restrict__ dpre, const float *__restrict__ datt,
                                      const S *__restrict__ att, int rows, int T)
{
    int r = blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int t = r % T;
    const S *p = att + (size_t)r * T;
    const float *d = datt + (size_t)r * T;
    float dot = 0.0f;
    for (int j = lane; j <= t; j += 32)
        dot += to_f(p[j]) * d[j];
    dot = warp_sum(dot);
    S *y = dpre + (size_t)r * T;
    for (int j = lane; j < T; j += 32)
        y[j] = from_f<S>(j <= t ? to_f(p[j]) * (d[j] - dot) : 0.0f);
}

static void attention_check(int B, int T, int C, int NH, const void *scratch)
{
    CHECK_MSG(B > 0 && T > 0 && NH > 0 && C % NH == 0, "attention needs C a multiple of NH");
    CHECK_MSG(scratch != NULL, "attention needs the scratch buffer of *_scratch_bytes()");
}

/* preatt[h][t][t2] = scale * q_h[t] . k_h[t2] for the nh heads from h0 of batch row b: the one
 * call that forward and backward share. */
template <typename S>
static void attention_scores(cublasHandle_t handle, float *preatt, const S *qkv, int b, int h0,
                             int nh, int T, int C, int NH)
{
    int hs = C / NH, C3 = 3 * C;
    const S *q = qkv + (size_t)b * T * C3, *k = q + C;
    gemm_rm(handle, false, true, T, T, hs, 1.0f / sqrtf((float)hs), q + h0 * hs, C3, hs,
            k + h0 * hs, C3, hs, 0.0f, preatt, T, (long long)T * T, nh, cuda_type<S>(), CUDA_R_32F);
}

template <typename S>
static void attention_forward_typed(cublasHandle_t handle, S *out, float *stats, const S *qkv,
                                    int B, int T, int C, int NH, void *scratch, cudaStream_t stream)
{
    const cudaDataType_t ty = cuda_type<S>();
    int hs = C / NH, C3 = 3 * C, hc = att_heads(T, NH, sizeof(S));
    long long TT = (long long)T * T;
    float *preatt = (float *)scratch;
    S *att = (S *)((char *)scratch + att_f32_bytes(T, NH, sizeof(S)));
    for (int b = 0; b < B; b++) {
        const S *v = qkv + (size_t)b * T * C3 + 2 * C;
        for (int h0 = 0; h0 < NH; h0 += hc) {
            int nh = min(hc, NH - h0);
            attention_scores<S>(handle, preatt, qkv, b, h0, nh, T, C, NH);
            attention_softmax_forward_kernel<S>
                <<<ceil_div((size_t)nh * T, ATT_WARPS), ATT_WARPS * 32, 0, stream>>>(
                    att, (float2 *)stats + ((size_t)b * NH + h0) * T, preatt, nh * T, T);
            CUDA_LAUNCH_CHECK();
            /* out_h[t] = sum_t2 att[h][t][t2] v_h[t2] */
            gemm_rm(handle, false, false, T, hs, T, 1.0f, att, T, TT, v + h0 * hs, C3, hs, 0.0f,
                    out + (size_t)b * T * C + h0 * hs, C, hs, nh, ty, ty);
        }
    }
}

extern "C" void attention_forward_cuda(cublasHandle_t handle, void *out, float *stats,
                                       const void *qkv, int B, int T, int C, int NH, enum dtype dt,
                                       void *scratch, cudaStream_t stream)
{
    attention_check(B, T, C, NH, scratch);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        attention_forward_typed<S>(handle, (S *)out, stats, (const S *)qkv, B, T, C, NH, scratch,
                                   stream);
    });
}

template <typename S>
static void attention_backward_typed(cublasHandle_t handle, S *dqkv, const S *dout, const S *qkv,
                                     const float *stats, int B, int T, int C, int NH, void *scratch,
                                     cudaStream_t stream)
{
    const cudaDataType_t ty = cuda_type<S>();
    int hs = C / NH, C3 = 3 * C, hc = att_heads(T, NH, sizeof(S));
    long long TT = (long long)T * T;
    float scale = 1.0f / sqrtf((float)hs);
    float *f32 = (float *)scratch; /* the scores, then datt */
    S *att = (S *)((char *)scratch + att_f32_bytes(T, NH, sizeof(S)));
    S *dpre = (S *)((char *)att + att_s_bytes(T, NH, sizeof(S)));
    for (int b = 0; b < B; b++) {
        const S *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
        S *dq = dqkv + (size_t)b * T * C3, *dk = dq + C, *dv = dq + 2 * C;
        const S *g = dout + (size_t)b * T * C;
        for (int h0 = 0; h0 < NH; h0 += hc) {
            int nh = min(hc, NH - h0);
            unsigned blocks = ceil_div((size_t)nh * T, ATT_WARPS);
            attention_scores<S>(handle, f32, qkv, b, h0, nh, T, C, NH);
            attention_probs_kernel<S><<<blocks, ATT_WARPS * 32, 0, stream>>>(
                att, (const float2 *)stats + ((size_t)b * NH + h0) * T, f32, nh * T, T);
            CUDA_LAUNCH_CHECK();
            /* dv_h[t2] += sum_t att[h][t][t2] dout_h[t] */
            gemm_rm(handle, true, false, T, hs, T, 1.0f, att, T, TT, g + h0 * hs, C, hs, 1.0f,
                    dv + h0 * hs, C3, hs, nh, ty, ty);
            /* datt[h][t][t2] = dout_h[t] . v_h[t2] */
            gemm_rm(handle, false, true, T, T, hs, 1.0f, g + h0 * hs, C, hs, v + h0 * hs, C3, hs,
                    0.0f, f32, T, TT, nh, ty, CUDA_R_32F);
            attention_softmax_backward_kernel<S>
                <<<blocks, ATT_WARPS * 32, 0, stream>>>(dpre, f32, att, nh * T, T);
            CUDA_LAUNCH_CHECK();
            /* dq_h[t] += scale * sum_t2 dpre[h][t][t2] k_h[t2] */
            gemm_rm(handle, false, false, T, hs, T, scale, dpre, T, TT, k + h0 * hs, C3, hs, 1.0f,
                    dq + h0 * hs, C3, hs, nh, ty, ty);
            /* dk_h[t2] += scale * sum_t dpre[h][t][t2] q_h[t] */
            gemm_rm(handle, true, false, T, hs, T, scale, dpre, T, TT, q + h0 * hs, C3, hs, 1.0f,
                    dk + h0 * hs, C3, hs, nh, ty, ty);
        }
    }
}

extern "C" void attention_backward_cuda(cublasHandle_t handle, void *dqkv, const void *dout,
                                        const void *qkv, const float *stats, int B, int T, int C,
                                        int NH, enum dtype dt, void *scratch, cudaStream_t stream)
{
    attention_check(B, T, C, NH, scratch);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        attention_backward_typed<S>(handle, (S *)dqkv, (const S *)dout, (const S *)qkv, stats, B, T,
                                    C, NH, scratch, stream);
    });
}
