#pragma GCC target("prefer-vector-width=512")
#include <cstdint>
#include <cmath>

// h = x + residual goes to y while its shifted moments accumulate; the output pass reads y back from L1
extern "C" void add_layer_norm(const float* __restrict__ x, const float* __restrict__ res,
                               const float* __restrict__ w, const float* __restrict__ b, float* __restrict__ y,
                               int64_t rows, int64_t dim, double eps) {
    const float inv_dim = 1.0f / static_cast<float>(dim);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        const float* __restrict__ rr = res + r * dim;
        float* __restrict__ yr = y + r * dim;
        const float k = xr[0] + rr[0];
        float s = 0.0f, q = 0.0f;
        #pragma omp simd reduction(+ : s, q)
        for (int64_t j = 0; j < dim; ++j) {
            const float h = xr[j] + rr[j];
            yr[j] = h;
            const float d = h - k;
            s += d;
            q = __builtin_fmaf(d, d, q);
        }
        const float mean_shift = s * inv_dim;
        const float var = q * inv_dim - mean_shift * mean_shift;
        const float rstd = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + static_cast<float>(eps));
        const float mean = k + mean_shift;
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = __builtin_fmaf((yr[j] - mean) * rstd, w[j], b[j]);
    }
}
