#include <cstdint>

extern "C" void squared_distance(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                                 int64_t rows, int64_t dim) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ ar = a + r * dim;
        const float* __restrict__ br = b + r * dim;
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < dim; ++j) {
            const float d = ar[j] - br[j];
            s += d * d;
        }
        y[r] = s;
    }
}
