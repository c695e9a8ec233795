#include <cstdint>
#include <cmath>

extern "C" void rms_norm(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                         int64_t rows, int64_t dim, double eps) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        float ss = 0.0f;
        #pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < dim; ++j) ss += xr[j] * xr[j];
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + static_cast<float>(eps));
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] * inv * w[j];
    }
}
