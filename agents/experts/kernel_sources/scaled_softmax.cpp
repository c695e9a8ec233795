#include "fast_exp.h"

extern "C" void scaled_softmax(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t dim,
                               double scale, double gain) {
    const float sc = static_cast<float>(scale);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        float m = -INFINITY;
        #pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < dim; ++j) {
            const float v = xr[j] * sc;
            m = v > m ? v : m;
        }
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < dim; ++j) {
            const float e = exp_nonpositive(xr[j] * sc - m);
            yr[j] = e;
            s += e;
        }
        const float k = static_cast<float>(gain) / s;
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] *= k;
    }
}
