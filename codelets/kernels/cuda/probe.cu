/* probe.cu: whether this build's kernels can run on a device (kernels_cuda.h's cuda_has_code). */
#include "kernels_cuda.h"

/* Never launched: its attributes exist only where the binary holds SASS for the device or PTX
 * the driver can JIT for it, like every other kernel of the build (same gencode flags). */
__global__ void probe_kernel(void) {}

extern "C" int cuda_has_code(int device)
{
    int cur;
    cudaFuncAttributes attr;
    if (cudaGetDevice(&cur) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) return 0;
    cudaError_t err = cudaFuncGetAttributes(&attr, probe_kernel);
    cudaGetLastError(); /* a failed query is not sticky: clear it so later checks do not see it */
    cudaSetDevice(cur);
    return err == cudaSuccess;
}
