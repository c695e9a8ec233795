#include <cstdint>

__global__ void swish_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

extern "C" void swish(const float* x, float* y, int64_t n) {
    const int block = 256;
    int64_t grid = (n + block - 1) / block;
    if (grid > 65535) grid = 65535;
    if (grid > 0) swish_kernel<<<(unsigned)grid, block>>>(x, y, n);
}
