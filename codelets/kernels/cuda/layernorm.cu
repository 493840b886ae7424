/* layernorm.cu: CUDA LayerNorm over the channels of each row (eps 1e-5) and its backward.
 *
 * The forward and dinp run one warp per row: the row's sums are warp reductions, and the row is
 * re-read from L1/L2 for each pass rather than held in registers, so any C works. dweight and
 * dbias are column sums over all N rows, done by the deterministic two-stage column sum of
 * common.cuh (per-chunk partials in scratch, then a fixed-order sum of the chunks); the
 * normalized input is recomputed there from inp, mean and rstd rather than stored. Pointers that
 * the contract keeps apart are __restrict__: without it the dinp kernel ran 11x slower on an H100
 * (its loads could not be hoisted past the stores into dinp).
 *
 * add_layernorm_forward_cuda fuses the residual add into the forward: one block per row holds the
 * row in registers (16-byte loads of a and b, the rounded sum stored to res once), so the row
 * crosses device memory four times (a, b in; res, out out) instead of the five of add_forward
 * then layernorm_forward, with one launch instead of two. */
#include "common.cuh"

#define LAYERNORM_EPS   1e-5f
#define LAYERNORM_WARPS 8 /* rows of one block */

template <typename S>
__global__ void __launch_bounds__(LAYERNORM_WARPS * 32)
    layernorm_forward_kernel(S *out, float *mean, float *rstd, const S *inp, const S *weight,
                             const S *bias, int N, int C)
{
    int n = blockIdx.x * LAYERNORM_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const S *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32)
        s += to_f(x[c]);
    float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = to_f(x[c]) - m;
        v += d * d;
    }
    float r = 1.0f / sqrtf(warp_sum(v) / C + LAYERNORM_EPS);
    S *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32)
        o[c] = from_f<S>((to_f(x[c]) - m) * r * to_f(weight[c]) + to_f(bias[c]));
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = r;
    }
}

template <typename S>
__global__ void __launch_bounds__(LAYERNORM_WARPS * 32)
    layernorm_backward_dinp_kernel(S *__restrict__ dinp, const S *__restrict__ dout,
                                   const S *__restrict__ inp, const S *__restrict__ weight,
                                   const float *__restrict__ mean, const float *__restrict__ rstd,
                                   int N, int C)
{
    int n = blockIdx.x * LAYERNORM_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (n >= N) return;
    const S *x = inp + (size_t)n * C;
    const S *g = dout + (size_t)n * C;
    float m = mean[n], r = rstd[n];
    /* the two means that couple the channels through mean and rstd */
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float dnorm = to_f(weight[c]) * to_f(g[c]);
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * (to_f(x[c]) - m) * r;
    }
    dnorm_mean = warp_sum(dnorm_mean) / C;
    dnorm_norm_mean = warp_sum(dnorm_norm_mean) / C;
    S *di = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32) {
        float norm = (to_f(x[c]) - m) * r;
        float d = (to_f(weight[c]) * to_f(g[c]) - dnorm_mean - norm * dnorm_norm_mean) * r;
        di[c] = from_f<S>(to_f(di[c]) + d);
    }
}

/* Row r's contributions at column c: v[0] to dweight (norm * dout), v[1] to dbias (dout). */
template <typename S> struct layernorm_param_rows {
    const S *dout, *inp;
    const float *mean, *rstd;
    int C;
    __device__ void operator()(int r, int c, float *v) const
    {
        size_t i = (size_t)r * C + c;
        float g = to_f(dout[i]);
        v[0] += (to_f(inp[i]) - mean[r]) * rstd[r] * g;
        v[1] += g;
    }
};

extern "C" void layernorm_forward_cuda(void *out, float *mean, float *rstd, const void *inp,
                                       const void *weight, const void *bias, int N, int C,
                                       enum dtype dt, cudaStream_t stream)
{
    if (N == 0) return;
    CHECK_MSG(C > 0, "layernorm_forward_cuda needs C > 0");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        layernorm_forward_kernel<S>
            <<<ceil_div(N, LAYERNORM_WARPS), LAYERNORM_WARPS * 32, 0, stream>>>(
                (S *)out, mean, rstd, (const S *)inp, (const S *)weight, (const S *)bias, N, C);
    });
    CUDA_LAUNCH_CHECK();
}

/* Sum of x over the block, in a fixed order (warps, then warp 0 over the warps' sums); every
 * thread gets it. sh holds 32 floats; the block is a whole number of warps. */
__device__ float block_sum(float x, float *sh)
{
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
    x = warp_sum(x);
    if (lane == 0) sh[warp] = x;
    __syncthreads(); /* also: every thread has read an earlier call's sh[32] */
    if (warp == 0) {
        float v = lane < nwarps ? sh[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) sh[32] = v;
    }
    __syncthreads();
    return sh[32];
}

/* Row blockIdx.x: res = a + b rounded to S, out = layernorm(res). Thread t holds elements
 * [i*P, i*P + P) for i = t, t + blockDim.x, ... (at most MAXV of them) in registers. VEC: P
 * elements of 16 bytes per access (C % P == 0, every pointer 16-byte aligned); else one. res
 * may alias a or b: a thread writes only what it has read. */
template <typename S, bool VEC, int MAXV>
__global__ void add_layernorm_forward_kernel(S *res, S *__restrict__ out, float *__restrict__ mean,
                                             float *__restrict__ rstd, const S *a, const S *b,
                                             const S *__restrict__ weight,
                                             const S *__restrict__ bias, int C)
{
    constexpr int P = VEC ? vec16<S>() : 1;
    using V = Vec<S, P>;
    __shared__ float sh[33];
    size_t row = (size_t)blockIdx.x * C;
    int nvec = C / P;
    const V *va = (const V *)(a + row), *vb = (const V *)(b + row);
    V *vr = (V *)(res + row), *vo = (V *)(out + row);
    const V *vw = (const V *)weight, *vbias = (const V *)bias;
    float x[MAXV][P];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < MAXV; k++) {
        int i = threadIdx.x + k * blockDim.x;
        if (i < nvec) {
            V xa = va[i], xb = vb[i], r;
#pragma unroll
            for (int p = 0; p < P; p++) {
                r.v[p] = from_f<S>(to_f(xa.v[p]) + to_f(xb.v[p]));
                x[k][p] = to_f(r.v[p]);
                s += x[k][p];
            }
            vr[i] = r;
        }
    }
    float m = block_sum(s, sh) / C;
    float v = 0.0f;
#pragma unroll
    for (int k = 0; k < MAXV; k++)
        if (threadIdx.x + k * blockDim.x < nvec)
#pragma unroll
            for (int p = 0; p < P; p++) {
                float d = x[k][p] - m;
                v += d * d;
            }
    float r = 1.0f / sqrtf(block_sum(v, sh) / C + LAYERNORM_EPS);
#pragma unroll
    for (int k = 0; k < MAXV; k++) {
        int i = threadIdx.x + k * blockDim.x;
        if (i < nvec) {
            V w = vw[i], bb = vbias[i], o;
#pragma unroll
            for (int p = 0; p < P; p++)
                o.v[p] = from_f<S>((x[k][p] - m) * r * to_f(w.v[p]) + to_f(bb.v[p]));
            vo[i] = o;
        }
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = m;
        rstd[blockIdx.x] = r;
    }
}

/* Elements per thread a register row may hold: 4 vectors of 16 bytes (C up to 32768 in fp16,
 * 16384 in fp32), or 16 single elements off the vector path. */
#define ADD_LN_MAXV_VEC    4
#define ADD_LN_MAXV_SCALAR 16

template <typename S, bool VEC, int MAXV>
static void add_layernorm_launch(S *res, S *out, float *mean, float *rstd, const S *a, const S *b,
                                 const S *weight, const S *bias, int N, int C, cudaStream_t stream)
{
    int nvec = C / (VEC ? vec16<S>() : 1);
    /* about two vectors a thread: loads in flight, and short block sums */
    int threads = (nvec + 1) / 2;
    threads = threads < 32 ? 32 : threads > 1024 ? 1024 : (threads + 31) / 32 * 32;
    CHECK_MSG((nvec + threads - 1) / threads <= MAXV,
              "add_layernorm_forward_cuda: C too large for a row in registers");
    add_layernorm_forward_kernel<S, VEC, MAXV>
        <<<N, threads, 0, stream>>>(res, out, mean, rstd, a, b, weight, bias, C);
    CUDA_LAUNCH_CHECK();
}

extern "C" void add_layernorm_forward_cuda(void *res, void *out, float *mean, float *rstd,
                                           const void *a, const void *b, const void *weight,
                                           const void *bias, int N, int C, enum dtype dt,
                                           cudaStream_t stream)
{
    if (N == 0) return;
    CHECK_MSG(C > 0, "add_layernorm_forward_cuda needs C > 0");
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        bool vec = C % vec16<S>() == 0 && aligned16(res) && aligned16(out) && aligned16(a) &&
                   aligned16(b) && aligned16(weight) && aligned16(bias);
        if (vec)
            add_layernorm_launch<S, true, ADD_LN_MAXV_VEC>(
                (S *)res, (S *)out, mean, rstd, (const S *)a, (const S *)b, (const S *)weight,
                (const S *)bias, N, C, stream);
        else
            add_layernorm_launch<S, false, ADD_LN_MAXV_SCALAR>(
                (S *)res, (S *)out, mean, rstd, (const S *)a, (const S *)b, (const S *)weight,
                (const S *)bias, N, C, stream);
    });
}

extern "C" void layernorm_backward_cuda(void *dinp, void *dweight, void *dbias, const void *dout,
                                        const void *inp, const void *weight, const float *mean,
                                        const float *rstd, int N, int C, enum dtype dt,
                                        void *scratch, cudaStream_t stream)
{
    if (N == 0 || C == 0) return;
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        layernorm_backward_dinp_kernel<S>
            <<<ceil_div(N, LAYERNORM_WARPS), LAYERNORM_WARPS * 32, 0, stream>>>(
                (S *)dinp, (const S *)dout, (const S *)inp, (const S *)weight, mean, rstd, N, C);
        CUDA_LAUNCH_CHECK();
        layernorm_param_rows<S> rows = {(const S *)dout, (const S *)inp, mean, rstd, C};
        colsum_launch<S, 2>((S *)dweight, (S *)dbias, N, C, rows, scratch, stream);
    });
}
