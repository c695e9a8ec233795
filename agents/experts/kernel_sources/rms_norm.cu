#include <cstdint>

// one block per row; the block sums x^2 in shared memory, then scales the row
__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                                int64_t dim, float eps) {
    __shared__ float partial[256];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xr[j] * xr[j];
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    const float inv = rsqrtf(partial[0] / (float)dim + eps);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] = xr[j] * inv * w[j];
}

extern "C" void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, double eps) {
    if (rows > 0) rms_norm_kernel<<<(unsigned)rows, 256>>>(x, w, y, dim, (float)eps);
}
