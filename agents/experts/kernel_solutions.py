"""Hand-written KernelGen-v0 solutions: one candidate ("ModelNew") file per task and language.

``SOLUTIONS[task_name]["cpp"]`` is a complete candidate file whose kernel is C++ (built by
``g++ -O3 -march=native -fopenmp``); ``SOLUTIONS[task_name]["cuda"]``, where present, is the same
``ModelNew`` over a CUDA kernel. They obey the candidate rules (only allocation and layout calls
in ``forward``, all arithmetic in the kernel, parameters created as the reference creates them)
and serve as the environment's expert baseline, as SFT data and as a check that a task is
solvable. The CPU kernels win over eager PyTorch by fusing its passes over memory into one
and by a branch-free, vectorisable ``exp``.

Each task is written as a :class:`Solution`: the kernel source per language and the Python
``ModelNew`` class shared by both; :func:`~horizongym.envs.kernels.api.candidate_file`
assembles them into a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from horizongym.envs.kernels.api import candidate_file

FAST_EXP = r"""
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
"""

ROWS_MODEL = """
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.{function}(x, y, x.numel() // x.shape[-1], x.shape[-1])
        return y
"""

ELEMENTWISE_MODEL = """
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.{function}(x, y, x.numel())
        return y
"""

BINARY_MODEL = """
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        a = a.contiguous()
        b = b.contiguous()
        y = torch.empty_like(a)
        lib.{function}(a, b, y, a.numel())
        return y
"""


@dataclass(frozen=True)
class Solution:
    """One task's solution: kernel source per language and the ``ModelNew`` that calls it."""

    model: str
    kernels: dict[str, str] = field(default_factory=dict)


_SOLUTIONS: dict[str, Solution] = {
    "scale_shift_relu_clamp": Solution(
        ELEMENTWISE_MODEL.format(function="scale_shift_relu_clamp"),
        {
            "cpp": r"""
#include <cstdint>

extern "C" void scale_shift_relu_clamp(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        float v = x[i] * 2.0f + 1.0f;
        v = v > 0.0f ? v : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
}
""",
            "cuda": r"""
#include <cstdint>

__global__ void scale_shift_relu_clamp_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        float v = fmaxf(x[i] * 2.0f + 1.0f, 0.0f);
        y[i] = fminf(v, 6.0f);
    }
}

extern "C" void scale_shift_relu_clamp(const float* x, float* y, int64_t n) {
    const int block = 256;
    int64_t grid = (n + block - 1) / block;
    if (grid > 65535) grid = 65535;
    if (grid > 0) scale_shift_relu_clamp_kernel<<<(unsigned)grid, block>>>(x, y, n);
}
""",
        },
    ),
    "swish": Solution(
        ELEMENTWISE_MODEL.format(function="swish"),
        {
            "cpp": FAST_EXP
            + r"""
extern "C" void swish(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fast_exp(-x[i]));
}
""",
            "cuda": r"""
#include <cstdint>

__global__ void swish_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}

extern "C" void swish(const float* x, float* y, int64_t n) {
    const int block = 256;
    int64_t grid = (n + block - 1) / block;
    if (grid > 65535) grid = 65535;
    if (grid > 0) swish_kernel<<<(unsigned)grid, block>>>(x, y, n);
}
""",
        },
    ),
    "gelu_tanh": Solution(
        ELEMENTWISE_MODEL.format(function="gelu_tanh"),
        {
            "cpp": FAST_EXP
            + r"""
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
""",
        },
    ),
    "swiglu_gate": Solution(
        BINARY_MODEL.format(function="swiglu_gate"),
        {
            "cpp": FAST_EXP
            + r"""
extern "C" void swiglu_gate(const float* __restrict__ gate, const float* __restrict__ up,
                            float* __restrict__ y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        y[i] = g / (1.0f + fast_exp(-g)) * up[i];
    }
}
""",
        },
    ),
    "bias_tanh_scale": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, channels, scale):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels, 1, 1))
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.bias_tanh_scale(x, self.bias, y, x.shape[0], x.shape[1], x.shape[2] * x.shape[3], float(self.scale))
        return y
""",
        {
            "cpp": FAST_EXP
            + r"""
// tanh(v) = 2 / (1 + exp(-2v)) - 1, per (batch, channel) plane with the channel's bias
extern "C" void bias_tanh_scale(const float* __restrict__ x, const float* __restrict__ bias,
                                float* __restrict__ y, int64_t batch, int64_t channels, int64_t plane,
                                double scale) {
    const float s = static_cast<float>(scale);
    #pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < batch * channels; ++bc) {
        const float b = bias[bc % channels];
        const float* __restrict__ xp = x + bc * plane;
        float* __restrict__ yp = y + bc * plane;
        #pragma omp simd
        for (int64_t i = 0; i < plane; ++i) {
            const float t = 2.0f / (1.0f + fast_exp(-2.0f * (xp[i] + b))) - 1.0f;
            yp[i] = t * s;
        }
    }
}
""",
        },
    ),
    "rms_norm": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        lib.rms_norm(x, self.weight, y, x.numel() // dim, dim, float(self.eps))
        return y
""",
        {
            "cpp": r"""
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
""",
            "cuda": r"""
#include <cstdint>

// one block per row; the block sums x^2 in shared memory, then scales the row
__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                                int64_t dim, float eps) {
    __shared__ float partial[256];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xr[j] * xr[j];
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    const float inv = rsqrtf(partial[0] / (float)dim + eps);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] = xr[j] * inv * w[j];
}

extern "C" void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, double eps) {
    if (rows > 0) rms_norm_kernel<<<(unsigned)rows, 256>>>(x, w, y, dim, (float)eps);
}
""",
        },
    ),
    "residual_add_rms_norm": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x, residual):
        x = x.contiguous()
        residual = residual.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        lib.residual_add_rms_norm(x, residual, self.weight, y, x.numel() // dim, dim, float(self.eps))
        return y
""",
        {
            "cpp": r"""
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
""",
        },
    ),
    "l2_normalize": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.l2_normalize(x, y, x.shape[0], x.numel() // x.shape[0], float(self.eps))
        return y
""",
        {
            "cpp": r"""
#include <cstdint>
#include <cmath>

extern "C" void l2_normalize(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t dim,
                             double eps) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        float ss = 0.0f;
        #pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < dim; ++j) ss += xr[j] * xr[j];
        float norm = std::sqrt(ss);
        norm = norm > static_cast<float>(eps) ? norm : static_cast<float>(eps);
        const float inv = 1.0f / norm;
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] * inv;
    }
}
""",
        },
    ),
    "squared_distance": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        a = a.contiguous()
        b = b.contiguous()
        dim = a.shape[-1]
        y = torch.empty(a.shape[:-1], dtype=a.dtype, device=a.device)
        lib.squared_distance(a, b, y, a.numel() // dim, dim)
        return y
""",
        {
            "cpp": r"""
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
""",
        },
    ),
    "softmax": Solution(
        ROWS_MODEL.format(function="softmax"),
        {
            "cpp": FAST_EXP
            + r"""
extern "C" void softmax(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t dim) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        float m = -INFINITY;
        #pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < dim; ++j) m = xr[j] > m ? xr[j] : m;
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < dim; ++j) {
            const float e = exp_nonpositive(xr[j] - m);
            yr[j] = e;
            s += e;
        }
        const float inv = 1.0f / s;
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] *= inv;
    }
}
""",
            "cuda": r"""
#include <cstdint>
#include <cfloat>

// one block of 256 threads per row: block max, then block sum of exp, then normalise
__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t dim) {
    __shared__ float shared[256];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    float m = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) m = fmaxf(m, xr[j]);
    shared[threadIdx.x] = m;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    m = shared[0];
    __syncthreads();
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
        const float e = expf(xr[j] - m);
        yr[j] = e;
        s += e;
    }
    shared[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    const float inv = 1.0f / shared[0];
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) yr[j] *= inv;
}

extern "C" void softmax(const float* x, float* y, int64_t rows, int64_t dim) {
    if (rows > 0) softmax_kernel<<<(unsigned)rows, 256>>>(x, y, dim);
}
""",
        },
    ),
    "log_softmax": Solution(
        ROWS_MODEL.format(function="log_softmax"),
        {
            "cpp": FAST_EXP
            + r"""
extern "C" void log_softmax(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t dim) {
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict__ xr = x + r * dim;
        float* __restrict__ yr = y + r * dim;
        float m = -INFINITY;
        #pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < dim; ++j) m = xr[j] > m ? xr[j] : m;
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < dim; ++j) s += exp_nonpositive(xr[j] - m);
        const float shift = m + std::log(s);
        #pragma omp simd
        for (int64_t j = 0; j < dim; ++j) yr[j] = xr[j] - shift;
    }
}
""",
        },
    ),
    "scaled_softmax": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, scale, gain):
        super().__init__()
        self.scale = scale
        self.gain = gain

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        lib.scaled_softmax(x, y, x.numel() // dim, dim, float(self.scale), float(self.gain))
        return y
""",
        {
            "cpp": FAST_EXP
            + r"""
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
""",
        },
    ),
    "layer_norm": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        lib.layer_norm(x, self.norm.weight, self.norm.bias, y, x.numel() // dim, dim, float(self.norm.eps))
        return y
""",
        {
            "cpp": r"""
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
""",
        },
    ),
    "layer_norm_residual": Solution(
        """
class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, residual):
        x = x.contiguous()
        residual = residual.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        rows = x.numel() // dim
        lib.add_layer_norm(x, residual, self.norm.weight, self.norm.bias, y, rows, dim, float(self.norm.eps))
        return y
""",
        {
            "cpp": r"""
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
""",
        },
    ),
}


def _assemble(solutions: dict[str, Solution]) -> dict[str, dict[str, str]]:
    """Candidate files for every task and language."""
    return {
        task: {
            language: candidate_file(kernel, solution.model, language) for language, kernel in solution.kernels.items()
        }
        for task, solution in solutions.items()
    }


SOLUTIONS: dict[str, dict[str, str]] = _assemble(_SOLUTIONS)
"""Task name -> {"cpp": candidate file, optionally "cuda": candidate file}."""

KERNELS: dict[str, dict[str, str]] = {task: dict(solution.kernels) for task, solution in _SOLUTIONS.items()}
"""Task name -> {language: kernel source alone}, for building a kernel without running its Python."""
