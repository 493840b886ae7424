/* encoder.cu: CUDA token + position embedding (llm.c's encoder) and its backward.
 *
 * The backward scatters rows of dout onto dwte rows chosen by token. Without atomics and
 * without scratch, determinism comes from ownership: the block of the first position holding a
 * token owns that token's dwte row and adds every later occurrence into an fp32 copy of the row,
 * in increasing position, rounding once at the end: exactly the CPU reference's sums. Every
 * other block returns at once. dwpe is a plain sum over the batch per (t, c). */
#include "common.cuh"

#define ENCODER_THREADS 256
/* Channels of one backward block, a multiple of ENCODER_THREADS held in registers. */
#define ENCODER_CHANNELS 2048

template <typename S>
__global__ void encoder_forward_kernel(S *__restrict__ out, const int32_t *__restrict__ tokens,
                                       const S *__restrict__ wte, const S *__restrict__ wpe, int N,
                                       int T, int C)
{
    size_t total = (size_t)N * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / C;
        int c = (int)(i % C);
        int t = (int)(n % T);
        out[i] = from_f<S>(to_f(wte[(size_t)tokens[n] * C + c]) + to_f(wpe[(size_t)t * C + c]));
    }
}

/* One block per (position n, slice of ENCODER_CHANNELS channels). Each thread keeps its
 * ENCODER_CHANNELS / ENCODER_THREADS channels of the owned row in fp32 registers, so the loads of
 * an occurrence's dout row are independent and overlap. */
template <typename S>
__global__ void __launch_bounds__(ENCODER_THREADS)
    encoder_backward_wte_kernel(S *__restrict__ dwte, const S *__restrict__ dout,
                                const int32_t *__restrict__ tokens, int N, int C)
{
    constexpr int K = ENCODER_CHANNELS / ENCODER_THREADS;
    __shared__ unsigned match[ENCODER_THREADS / 32];
    int n = blockIdx.x;
    int c0 = blockIdx.y * ENCODER_CHANNELS;
    int nc = min(ENCODER_CHANNELS, C - c0);
    int tok = tokens[n];
    int earlier = 0;
    for (int m = threadIdx.x; m < n; m += blockDim.x)
        earlier |= tokens[m] == tok;
    if (__syncthreads_or(earlier)) return;

    S *w = dwte + (size_t)tok * C + c0;
    float acc[K];
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ENCODER_THREADS;
        acc[k] = c < nc ? to_f(w[c]) : 0.0f;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int m0 = n; m0 < N; m0 += ENCODER_THREADS) {
        int m = m0 + threadIdx.x;
        unsigned bits = __ballot_sync(0xffffffffu, m < N && tokens[m] == tok);
        if (lane == 0) match[warp] = bits;
        __syncthreads();
        for (int j = 0; j < ENCODER_THREADS / 32; j++) {
            for (unsigned b = match[j]; b; b &= b - 1) {
                const S *d = dout + (size_t)(m0 + j * 32 + __ffs(b) - 1) * C + c0;
#pragma unroll
                for (int k = 0; k < K; k++) {
                    int c = threadIdx.x + k * ENCODER_THREADS;
                    if (c < nc) acc[k] += to_f(d[c]);
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int k = 0; k < K; k++) {
        int c = threadIdx.x + k * ENCODER_THREADS;
        if (c < nc) w[c] = from_f<S>(acc[k]);
    }
}

template <typename S>
__global__ void encoder_backward_wpe_kernel(S *__restrict__ dwpe, const S *__restrict__ dout, int B,
                                            int T, int C)
{
    size_t total = (size_t)T * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        float s = to_f(dwpe[i]);
        for (int b = 0; b < B; b++)
            s += to_f(dout[(size_t)b * total + i]);
        dwpe[i] = from_f<S>(s);
    }
}

extern "C" void encoder_forward_cuda(void *out, const int32_t *tokens, const void *wte,
                                     const void *wpe, int B, int T, int C, enum dtype dt,
                                     cudaStream_t stream)
{
    size_t total = (size_t)B * T * C;
    if (total == 0) return;
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        encoder_forward_kernel<S><<<grid_stride_blocks(total, 256), 256, 0, stream>>>(
            (S *)out, tokens, (const S *)wte, (const S *)wpe, B * T, T, C);
    });
    CUDA_LAUNCH_CHECK();
}

extern "C" void encoder_backward_cuda(void *dwte, void *dwpe, const void *dout,
                                      const int32_t *tokens, int B, int T, int C, enum dtype dt,
                                      cudaStream_t stream)
{
    int N = B * T;
    if (N == 0 || C == 0) return;
    dim3 grid(N, ceil_div(C, ENCODER_CHANNELS));
    dtype_dispatch(dt, [&](auto tag) {
        using S = typename decltype(tag)::type;
        encoder_backward_wte_kernel<S>
            <<<grid, ENCODER_THREADS, 0, stream>>>((S *)dwte, (const S *)dout, tokens, N, C);
        CUDA_LAUNCH_CHECK();
        encoder_backward_wpe_kernel<S><<<grid_stride_blocks((size_t)T * C, 256), 256, 0, stream>>>(
            (S *)dwpe, (const S *)dout, B, T, C);
    });
    CUDA_LAUNCH_CHECK();
}
