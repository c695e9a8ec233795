#include <cstdint>
#include <cmath>

// h = x + residual is written into y, then scaled in place while the row is still in L1
extern "C" void residual_add_rms_norm(const float* __restrict__ x, const float* __restrict__ res,
                                      const float* __restrict__ w, float* __restrict__ y,
                                      int64_t rows, int64_t dim, double eps) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        const float* __restrict__ rr = res + r * dim;
        float* __restrict__ yr = y + r * dim;
        float ss = 0.0f;
        #pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < dim; ++j) {
            const float h = xr[j] + rr[j];
            yr[j] = h;
            ss += h * h;
        }
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + static_cast<float>(eps));
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = yr[j] * inv * w[j];
    }
}
