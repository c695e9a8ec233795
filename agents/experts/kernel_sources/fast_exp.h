#pragma GCC target("prefer-vector-width=512")
#include <cstdint>
#include <cmath>

// exp(x) for float, branch-free so that loops calling it vectorise; relative error ~2e-7.
// exp_in_range needs -87 <= x <= 88; fast_exp clamps to that range first.
static inline __attribute__((always_inline)) float exp_in_range(float x) {
    const float shifter = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    const float n = __builtin_fmaf(x, 1.44269504088896341f, shifter) - shifter;
    const float r = __builtin_fmaf(n, 2.12194440e-4f, __builtin_fmaf(n, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r + 1.0f);
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    return p * __builtin_bit_cast(float, bits);
}

static inline __attribute__((always_inline)) float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    return exp_in_range(x > 88.0f ? 88.0f : x);
}

// exp(x) for x <= 0 (a logit minus its row's maximum): only the lower clamp is needed
static inline __attribute__((always_inline)) float exp_nonpositive(float x) {
    return exp_in_range(x < -87.0f ? -87.0f : x);
}
