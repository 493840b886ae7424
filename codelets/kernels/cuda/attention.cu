/* attention.cu: CUDA causal multi-head self-attention and its backward (llm.c's non-cuDNN path,
 * without the permutes).
 *
 * qkv[N,3C] holds per token q | k | v with head h in columns [h*hs, (h+1)*hs). Head h of batch b
 * is therefore a [T,hs] matrix with row stride 3C, and heads follow each other at stride hs, so
 * cuBLAS's strided batched GEMM reads q, k, v, dout and writes out and dqkv in place (batched over
 * heads, one call per batch row b): no permuted copies. The GEMMs accumulate in fp32; the scores
 * q.k^T (scaled by 1/sqrt(hs) through alpha) and the gradient datt come out in fp32, so the only
 * roundings to the storage type are those of the stored att, of dpreatt (a GEMM operand, which
 * must share the operands' type) and of the final outputs. Softmax and its backward run one warp
 * per row over the causal part t2 <= t and write zeros above the diagonal.
 *
 * The fp32 scores (and in the backward datt and dpreatt) are computed a chunk of heads at a time
 * into scratch, so the scratch size does not grow with B, nor with NH past ATT_CHUNK_BYTES. The
 * chunk is large enough for the batched GEMMs to fill the GPU: on an H100 (B=4, T=1024, NH=16,
 * hs=128, fp16) forward + backward took 0.87 ms with 64 MiB chunks, 1.9 ms with 16 MiB ones
 * (which stay in L2 but batch only 2 to 4 heads per GEMM). */
#include "common.cuh"

#define ATT_WARPS 8 /* rows of one softmax block */

/* att[r, :] = causal softmax of preatt[r, :] over the rows r of a chunk (query t = r % T). */
template <typename S>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_softmax_forward_kernel(S *__restrict__ att, const float *__restrict__ preatt,
                                     int rows, int T)
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
    float inv = 1.0f / s;
    S *y = att + (size_t)r * T;
    for (int j = lane; j < T; j += 32)
        y[j] = from_f<S>(j <= t ? expf(x[j] - m) * inv : 0.0f);
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

template <typename S>
static void attention_forward_typed(cublasHandle_t handle, S *out, S *att, const S *qkv, int B,
                                    int T, int C, int NH, float *preatt, cudaStream_t stream)
{
    const cudaDataType_t ty = cuda_type<S>();
    int hs = C / NH, C3 = 3 * C;
    long long TT = (long long)T * T;
    float scale = 1.0f / sqrtf((float)hs);
    int hc = att_heads_per_chunk(T, NH, sizeof(float));
    for (int b = 0; b < B; b++) {
        const S *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
        S *att_b = att + (size_t)b * NH * TT;
        for (int h0 = 0; h0 < NH; h0 += hc) {
            int nh = min(hc, NH - h0);
            /* preatt[h][t][t2] = scale * q_h[t] . k_h[t2] */
            gemm_rm(handle, false, true, T, T, hs, scale, q + h0 * hs, C3, hs, k + h0 * hs, C3, hs,
                    0.0f, preatt, T, TT, nh, ty, CUDA_R_32F);
            attention_softmax_forward_kernel<S>
                <<<ceil_div((size_t)nh * T, ATT_WARPS), ATT_WARPS * 32, 0, stream>>>(
                    att_b + h0 * TT, preatt, nh * T, T);
            CUDA_LAUNCH_CHECK();
        }
        /* out_h[t] = sum_t2 att[h][t][t2] v_h[t2], all heads at once */
        gemm_rm(handle, false, false, T, hs, T, 1.0f, att_b, T, TT, v, C3, hs, 0.0f,
                out + (size_t)b * T * C, C, hs, NH, ty, ty);
    }
}

extern "C" void attention_forward_cuda(cublasHandle_t handle, void *out, void *att, const void *qkv,
                                       int B, int T, int C, int NH, enum dtype dt, void *scratch,
                                       cudaStream_t stream)
{
    attention_check(B, T, C, NH, scratch);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        attention_forward_typed<S>(handle, (S *)out, (S *)att, (const S *)qkv, B, T, C, NH,
                                   (float *)scratch, stream);
    });
}

template <typename S>
static void attention_backward_typed(cublasHandle_t handle, S *dqkv, const S *dout, const S *qkv,
                                     const S *att, int B, int T, int C, int NH, void *scratch,
                                     cudaStream_t stream)
{
    const cudaDataType_t ty = cuda_type<S>();
    int hs = C / NH, C3 = 3 * C;
    long long TT = (long long)T * T;
    float scale = 1.0f / sqrtf((float)hs);
    int hc = att_backward_heads(T, NH, sizeof(S));
    float *datt = (float *)scratch;
    S *dpre = (S *)((char *)scratch + att_backward_datt_bytes(T, NH, sizeof(S)));
    for (int b = 0; b < B; b++) {
        const S *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
        S *dq = dqkv + (size_t)b * T * C3, *dk = dq + C, *dv = dq + 2 * C;
        const S *g = dout + (size_t)b * T * C;
        const S *att_b = att + (size_t)b * NH * TT;
        /* dv_h[t2] += sum_t att[h][t][t2] dout_h[t], all heads at once */
        gemm_rm(handle, true, false, T, hs, T, 1.0f, att_b, T, TT, g, C, hs, 1.0f, dv, C3, hs, NH,
                ty, ty);
        for (int h0 = 0; h0 < NH; h0 += hc) {
            int nh = min(hc, NH - h0);
            /* datt[h][t][t2] = dout_h[t] . v_h[t2] */
            gemm_rm(handle, false, true, T, T, hs, 1.0f, g + h0 * hs, C, hs, v + h0 * hs, C3, hs,
                    0.0f, datt, T, TT, nh, ty, CUDA_R_32F);
            attention_softmax_backward_kernel<S>
                <<<ceil_div((size_t)nh * T, ATT_WARPS), ATT_WARPS * 32, 0, stream>>>(
                    dpre, datt, att_b + h0 * TT, nh * T, T);
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
                                        const void *qkv, const void *att, int B, int T, int C,
                                        int NH, enum dtype dt, void *scratch, cudaStream_t stream)
{
    attention_check(B, T, C, NH, scratch);
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        attention_backward_typed<S>(handle, (S *)dqkv, (const S *)dout, (const S *)qkv,
                                    (const S *)att, B, T, C, NH, scratch, stream);
    });
}
