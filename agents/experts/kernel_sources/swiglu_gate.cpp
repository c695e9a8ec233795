#include "fast_exp.h"

extern "C" void swiglu_gate(const float* __restrict__ gate, const float* __restrict__ up,
                            float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        y[i] = g / (1.0f + fast_exp(-g)) * up[i];
    }
}
