#include "fast_exp.h"

extern "C" void swish(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fast_exp(-x[i]));
}
