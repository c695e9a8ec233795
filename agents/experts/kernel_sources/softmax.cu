#include <cstdint>
#include <cfloat>

// one block of 256 threads per row: block max, then block sum of exp, then normalise
__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t dim) {
    __shared__ float shared[256];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    float m = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) m = fmaxf(m, xr[j]);
    shared[threadIdx.x] = m;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    m = shared[0];
    __syncthreads();
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
        const float e = expf(xr[j] - m);
        yr[j] = e;
        s += e;
    }
    shared[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    const float inv = 1.0f / shared[0];
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] *= inv;
}

extern "C" void softmax(const float* x, float* y, int64_t rows, int64_t dim) {
    if (rows > 0) softmax_kernel<<<(unsigned)rows, 256>>>(x, y, dim);
}
