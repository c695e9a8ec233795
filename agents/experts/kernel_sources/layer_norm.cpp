#pragma GCC target("prefer-vector-width=512")
#include <cstdint>
#include <cmath>

// one pass for the moments, shifted by the row's first element so that a large mean does not
// cancel, then one pass for the output
extern "C" void layer_norm(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                           float* __restrict__ y, int64_t rows, int64_t dim, double eps) {
    const float inv_dim = 1.0f / static_cast<float>(dim);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        const float k = xr[0];
        float s = 0.0f, q = 0.0f;
        #pragma omp simd reduction(+ : s, q)
        for (int64_t j = 0; j < dim; ++j) {
            const float d = xr[j] - k;
            s += d;
            q = __builtin_fmaf(d, d, q);
        }
        const float mean_shift = s * inv_dim;
        const float var = q * inv_dim - mean_shift * mean_shift;
        const float rstd = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + static_cast<float>(eps));
        const float mean = k + mean_shift;
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = __builtin_fmaf((xr[j] - mean) * rstd, w[j], b[j]);
    }
}
