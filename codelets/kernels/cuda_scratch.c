/* cuda_scratch.c: the scratch sizes of kernels_cuda.h's launchers, in every build (see
 * cuda_scratch.h). */
#include "cuda_scratch.h"

#include "dtype.h"
#include "kernels_cuda.h"

size_t layernorm_backward_cuda_scratch_bytes(int N, int C)
{
    return colsum_scratch_bytes(N, C, 2);
}

size_t matmul_backward_cuda_scratch_bytes(int N, int OC)
{
    return colsum_scratch_bytes(N, OC, 1);
}

size_t matmul_backward_dgelu_cuda_scratch_bytes(int N, int C, int OC)
{
    size_t a = colsum_scratch_bytes(N, OC, 1), b = colsum_scratch_bytes(N, C, 1);
    return a > b ? a : b;
}

size_t attention_forward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt)
{
    return att_scratch_bytes(T, NH, dtype_size(dt));
}

size_t attention_backward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt)
{
    return att_scratch_bytes(T, NH, dtype_size(dt));
}

size_t flash_attention_backward_cuda_scratch_bytes(int B, int T, int C, int NH, enum dtype dt)
{
    return 2 * flash_rows_bytes(B, T, NH); /* delta, then lse2 */
}

size_t sumsq_cuda_scratch_bytes(size_t n)
{
    return sumsq_multi_cuda_scratch_bytes(&n, 1);
}

size_t sumsq_multi_cuda_scratch_bytes(const size_t *n, int ntensors)
{
    size_t blocks = 0;
    for (int i = 0; i < ntensors; i++)
        blocks += n[i] ? sumsq_blocks(n[i]) : 0;
    return blocks * sizeof(double);
}
