#include "fast_exp.h"

// 0.5 x (1 + tanh(u)) == x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
extern "C" void gelu_tanh(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    const float k = 0.7978845608028654f;
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float u = k * (v + 0.044715f * v * v * v);
        y[i] = v / (1.0f + fast_exp(-2.0f * u));
    }
}
