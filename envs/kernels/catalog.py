"""The built-in KernelGen task catalog, in three levels of KernelBench's kind.

* **Level 1: single operators.** One PyTorch op per task: elementwise arithmetic, activations,
  reductions, softmax, normalisations, matrix products of several shapes, a convolution and a
  cumulative sum. A faster kernel here means beating one well-tuned ATen kernel.
* **Level 2: fused sequences.** Two to five ops in a row (a matmul and its epilogue, an
  elementwise chain, a norm and a residual, a reduction after elementwise work). Eager PyTorch
  runs each op as its own pass over memory, so fusing them into one kernel is where the wins are.
* **Level 3: small blocks.** A few layers of a network: an MLP, single-head self-attention,
  a pre-norm transformer block, a residual conv block and an RNN cell.

Every task is written in terms of module-level size constants; ``sizes["cpu"]`` is chosen so
one reference forward takes roughly 0.2-5 ms on one CPU thread, ``sizes["cuda"]`` is the
larger, KernelBench-like size for a GPU. All inputs are float32.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from horizongym.envs.kernels.types import KernelTask

Sizes = Mapping[str, int | float]


def _task(name: str, level: int, description: str, cpu: Sizes, cuda: Sizes, source: str) -> KernelTask:
    """A catalog task; ``source`` is reference code written from column 0."""
    return KernelTask(
        name=name,
        level=level,
        source=source.strip("\n") + "\n",
        sizes={"cpu": dict(cpu), "cuda": dict(cuda)},
        description=description,
    )


_UNARY_INPUTS = """
def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
"""


def _unary(name: str, description: str, expression: str, cpu: Sizes, cuda: Sizes) -> KernelTask:
    """A level-1 task applying ``expression`` (in terms of ``x``) to one ``(BATCH, DIM)`` input."""
    source = f'''
class Model(nn.Module):
    """{description}"""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return {expression}

{_UNARY_INPUTS}'''
    return _task(name, 1, description, cpu, cuda, source)


_ELEMENTWISE_CPU = {"BATCH": 1024, "DIM": 1024}
_ELEMENTWISE_CUDA = {"BATCH": 4096, "DIM": 16384}
_ROWS_CPU = {"BATCH": 1024, "DIM": 1024}
_ROWS_CUDA = {"BATCH": 4096, "DIM": 8192}

LEVEL1: tuple[KernelTask, ...] = (
    _task(
        "add",
        1,
        "Elementwise sum of two tensors of the same shape.",
        _ELEMENTWISE_CPU,
        _ELEMENTWISE_CUDA,
        '''
class Model(nn.Module):
    """Elementwise a + b."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return a + b


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "scale_shift",
        1,
        "Multiply by a scalar and add a scalar (both given to the constructor).",
        {**_ELEMENTWISE_CPU, "SCALE": 1.5, "SHIFT": -0.25},
        {**_ELEMENTWISE_CUDA, "SCALE": 1.5, "SHIFT": -0.25},
        '''
class Model(nn.Module):
    """x * scale + shift with scalar constants."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale = scale
        self.shift = shift

    def forward(self, x):
        return x * self.scale + self.shift


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [SCALE, SHIFT]
''',
    ),
    _unary("relu", "ReLU activation.", "torch.relu(x)", _ELEMENTWISE_CPU, _ELEMENTWISE_CUDA),
    _task(
        "leaky_relu",
        1,
        "LeakyReLU with a negative slope given to the constructor.",
        {**_ELEMENTWISE_CPU, "NEGATIVE_SLOPE": 0.01},
        {**_ELEMENTWISE_CUDA, "NEGATIVE_SLOPE": 0.01},
        '''
class Model(nn.Module):
    """LeakyReLU: x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, negative_slope=self.negative_slope)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [NEGATIVE_SLOPE]
''',
    ),
    _unary(
        "gelu_tanh",
        "GELU, tanh approximation.",
        'F.gelu(x, approximate="tanh")',
        _ELEMENTWISE_CPU,
        _ELEMENTWISE_CUDA,
    ),
    _unary("sigmoid", "Logistic sigmoid.", "torch.sigmoid(x)", _ELEMENTWISE_CPU, _ELEMENTWISE_CUDA),
    _unary("tanh", "Hyperbolic tangent.", "torch.tanh(x)", _ELEMENTWISE_CPU, _ELEMENTWISE_CUDA),
    _unary("softplus", "Softplus, log(1 + exp(x)).", "F.softplus(x)", _ELEMENTWISE_CPU, _ELEMENTWISE_CUDA),
    _unary(
        "swish",
        "Swish / SiLU written out: x * sigmoid(x).",
        "x * torch.sigmoid(x)",
        _ELEMENTWISE_CPU,
        _ELEMENTWISE_CUDA,
    ),
    _unary(
        "sum_last_dim",
        "Sum over the last dimension.",
        "torch.sum(x, dim=-1)",
        {"BATCH": 2048, "DIM": 2048},
        _ROWS_CUDA,
    ),
    _task(
        "mean_dim",
        1,
        "Mean over the middle dimension of a 3-d tensor.",
        {"BATCH": 32, "DIM1": 256, "DIM2": 256},
        {"BATCH": 128, "DIM1": 4096, "DIM2": 4095},
        '''
class Model(nn.Module):
    """Mean over dimension 1 of a (BATCH, DIM1, DIM2) tensor."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.mean(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, DIM1, DIM2)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "max_dim",
        1,
        "Maximum over the middle dimension of a 3-d tensor (values only).",
        {"BATCH": 16, "DIM1": 256, "DIM2": 256},
        {"BATCH": 128, "DIM1": 4096, "DIM2": 4095},
        '''
class Model(nn.Module):
    """Max over dimension 1 of a (BATCH, DIM1, DIM2) tensor, values only."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.max(x, dim=1)[0]


def get_inputs():
    return [torch.randn(BATCH, DIM1, DIM2)]


def get_init_inputs():
    return []
''',
    ),
    _unary(
        "argmax_last_dim",
        "Index of the maximum over the last dimension (an int64 result).",
        "torch.argmax(x, dim=-1)",
        _ROWS_CPU,
        _ROWS_CUDA,
    ),
    _unary("softmax", "Softmax over the last dimension.", "torch.softmax(x, dim=-1)", _ROWS_CPU, _ROWS_CUDA),
    _unary(
        "log_softmax",
        "Log-softmax over the last dimension.",
        "torch.log_softmax(x, dim=-1)",
        _ROWS_CPU,
        _ROWS_CUDA,
    ),
    _task(
        "layer_norm",
        1,
        "nn.LayerNorm over the last dimension, with learned weight and bias.",
        _ROWS_CPU,
        _ROWS_CUDA,
        '''
class Model(nn.Module):
    """LayerNorm over the last dimension."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]
''',
    ),
    _task(
        "rms_norm",
        1,
        "RMS norm written out: x / sqrt(mean(x^2) + eps) * weight, over the last dimension.",
        {**_ROWS_CPU, "EPS": 1e-6},
        {**_ROWS_CUDA, "EPS": 1e-6},
        '''
class Model(nn.Module):
    """RMSNorm over the last dimension with a learned weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        rms = torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps)
        return x / rms * self.weight


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, EPS]
''',
    ),
    _task(
        "l2_normalize",
        1,
        "Divide each row by its L2 norm (clamped below by eps).",
        {**_ROWS_CPU, "EPS": 1e-12},
        {**_ROWS_CUDA, "EPS": 1e-12},
        '''
class Model(nn.Module):
    """Rows scaled to unit L2 norm."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
        return x / torch.clamp(norm, min=self.eps)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [EPS]
''',
    ),
    _task(
        "matmul_square",
        1,
        "Product of two square matrices.",
        {"N": 384},
        {"N": 4096},
        '''
class Model(nn.Module):
    """C = A @ B for square A and B."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "matvec",
        1,
        "Matrix times a column vector.",
        {"M": 2048, "K": 2048},
        {"M": 16384, "K": 16384},
        '''
class Model(nn.Module):
    """y = A @ x with A of shape (M, K) and x of shape (K, 1)."""

    def __init__(self):
        super().__init__()

    def forward(self, a, x):
        return torch.matmul(a, x)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, 1)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "batched_matmul",
        1,
        "Batched matrix product of two 3-d tensors.",
        {"BATCH": 16, "M": 128, "K": 128, "N": 128},
        {"BATCH": 128, "M": 512, "K": 1024, "N": 2048},
        '''
class Model(nn.Module):
    """C[b] = A[b] @ B[b]."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.bmm(a, b)


def get_inputs():
    return [torch.randn(BATCH, M, K), torch.randn(BATCH, K, N)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "tall_skinny_matmul",
        1,
        "Product of a tall, narrow matrix with a small square one.",
        {"M": 32768, "K": 32, "N": 32},
        {"M": 131072, "K": 64, "N": 64},
        '''
class Model(nn.Module):
    """C = A @ B with A of shape (M, K), M much larger than K and N."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "conv2d",
        1,
        "A small 2-d convolution (nn.Conv2d, stride 1, no padding).",
        {"BATCH": 8, "IN_CHANNELS": 8, "OUT_CHANNELS": 16, "HEIGHT": 48, "WIDTH": 48, "KERNEL": 3},
        {"BATCH": 32, "IN_CHANNELS": 64, "OUT_CHANNELS": 128, "HEIGHT": 128, "WIDTH": 128, "KERNEL": 3},
        '''
class Model(nn.Module):
    """nn.Conv2d with a square kernel and a bias."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL]
''',
    ),
    _unary("cumsum", "Cumulative sum along the last dimension.", "torch.cumsum(x, dim=1)", _ROWS_CPU, _ROWS_CUDA),
)

LEVEL2: tuple[KernelTask, ...] = (
    _task(
        "linear_relu",
        2,
        "nn.Linear followed by ReLU.",
        {"BATCH": 512, "IN_FEATURES": 256, "OUT_FEATURES": 256},
        {"BATCH": 1024, "IN_FEATURES": 8192, "OUT_FEATURES": 8192},
        '''
class Model(nn.Module):
    """relu(x @ W^T + b)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return torch.relu(self.linear(x))


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
''',
    ),
    _task(
        "linear_bias_gelu",
        2,
        "Bias-free nn.Linear, a separate bias add, then tanh-approximated GELU.",
        {"BATCH": 256, "IN_FEATURES": 256, "OUT_FEATURES": 256},
        {"BATCH": 1024, "IN_FEATURES": 8192, "OUT_FEATURES": 8192},
        '''
class Model(nn.Module):
    """gelu(x @ W^T + bias) with the bias as its own parameter."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x):
        return F.gelu(self.linear(x) + self.bias, approximate="tanh")


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
''',
    ),
    _task(
        "matmul_scale_residual",
        2,
        "Matrix product, scaled, plus the left operand as a residual.",
        {"M": 512, "N": 256, "SCALE": 0.5},
        {"M": 8192, "N": 8192, "SCALE": 0.5},
        '''
class Model(nn.Module):
    """(x @ w) * scale + x for square w."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, w):
        return torch.matmul(x, w) * self.scale + x


def get_inputs():
    return [torch.randn(M, N), torch.randn(N, N) / N**0.5]


def get_init_inputs():
    return [SCALE]
''',
    ),
    _task(
        "scale_shift_relu_clamp",
        2,
        "x * 2 + 1, then ReLU, then clamp to at most 6.",
        _ELEMENTWISE_CPU,
        _ELEMENTWISE_CUDA,
        '''
class Model(nn.Module):
    """clamp(relu(x * 2 + 1), max=6): four eager passes over memory."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = x * 2.0 + 1.0
        y = torch.relu(y)
        return torch.clamp(y, max=6.0)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "scaled_softmax",
        2,
        "Softmax of scaled logits, then multiplied by a gain (attention-probability style, no dropout).",
        {**_ROWS_CPU, "SCALE": 0.125, "GAIN": 2.0},
        {**_ROWS_CUDA, "SCALE": 0.125, "GAIN": 2.0},
        '''
class Model(nn.Module):
    """softmax(x * scale, dim=-1) * gain."""

    def __init__(self, scale, gain):
        super().__init__()
        self.scale = scale
        self.gain = gain

    def forward(self, x):
        return torch.softmax(x * self.scale, dim=-1) * self.gain


def get_inputs():
    return [torch.randn(BATCH, DIM) * 4.0]


def get_init_inputs():
    return [SCALE, GAIN]
''',
    ),
    _task(
        "layer_norm_residual",
        2,
        "Residual add followed by nn.LayerNorm (post-norm style).",
        _ROWS_CPU,
        _ROWS_CUDA,
        '''
class Model(nn.Module):
    """LayerNorm(x + residual)."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, residual):
        return self.norm(x + residual)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]
''',
    ),
    _task(
        "conv2d_relu_maxpool",
        2,
        "nn.Conv2d, ReLU, then 2x2 max pooling.",
        {"BATCH": 4, "IN_CHANNELS": 8, "OUT_CHANNELS": 16, "HEIGHT": 32, "WIDTH": 32, "KERNEL": 3},
        {"BATCH": 32, "IN_CHANNELS": 64, "OUT_CHANNELS": 128, "HEIGHT": 128, "WIDTH": 128, "KERNEL": 3},
        '''
class Model(nn.Module):
    """max_pool2d(relu(conv(x)), 2)."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x):
        return F.max_pool2d(torch.relu(self.conv(x)), 2)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL]
''',
    ),
    _task(
        "swiglu_gate",
        2,
        "SwiGLU-style gating: silu(gate) * up, with silu written as gate * sigmoid(gate).",
        _ELEMENTWISE_CPU,
        _ELEMENTWISE_CUDA,
        '''
class Model(nn.Module):
    """gate * sigmoid(gate) * up."""

    def __init__(self):
        super().__init__()

    def forward(self, gate, up):
        return gate * torch.sigmoid(gate) * up


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "bias_tanh_scale",
        2,
        "Per-channel bias add, tanh, then a scalar scale, on an NCHW tensor.",
        {"BATCH": 8, "CHANNELS": 64, "HEIGHT": 32, "WIDTH": 32, "SCALE": 2.5},
        {"BATCH": 128, "CHANNELS": 128, "HEIGHT": 64, "WIDTH": 64, "SCALE": 2.5},
        '''
class Model(nn.Module):
    """tanh(x + bias[c]) * scale."""

    def __init__(self, channels, scale):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels, 1, 1))
        self.scale = scale

    def forward(self, x):
        return torch.tanh(x + self.bias) * self.scale


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS, SCALE]
''',
    ),
    _task(
        "squared_distance",
        2,
        "Row-wise squared Euclidean distance: elementwise difference, square, sum over the last dim.",
        _ROWS_CPU,
        _ROWS_CUDA,
        '''
class Model(nn.Module):
    """sum((a - b)^2, dim=-1)."""

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        d = a - b
        return torch.sum(d * d, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []
''',
    ),
    _task(
        "residual_add_rms_norm",
        2,
        "Residual add, then RMS norm written out with a learned weight.",
        {**_ROWS_CPU, "EPS": 1e-6},
        {**_ROWS_CUDA, "EPS": 1e-6},
        '''
class Model(nn.Module):
    """h = x + residual; h / sqrt(mean(h^2) + eps) * weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x, residual):
        h = x + residual
        rms = torch.sqrt(torch.mean(h * h, dim=-1, keepdim=True) + self.eps)
        return h / rms * self.weight


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, EPS]
''',
    ),
)

LEVEL3: tuple[KernelTask, ...] = (
    _task(
        "mlp",
        3,
        "Three nn.Linear layers with ReLU between them.",
        {"BATCH": 256, "IN_FEATURES": 256, "HIDDEN": 256, "OUT_FEATURES": 64},
        {"BATCH": 1024, "IN_FEATURES": 4096, "HIDDEN": 8192, "OUT_FEATURES": 1024},
        '''
class Model(nn.Module):
    """Linear -> ReLU -> Linear -> ReLU -> Linear."""

    def __init__(self, in_features, hidden, out_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, out_features)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, HIDDEN, OUT_FEATURES]
''',
    ),
    _task(
        "self_attention",
        3,
        "Single-head self-attention: q, k, v projections, scaled softmax scores, output projection.",
        {"BATCH": 2, "SEQ": 256, "EMBED": 64},
        {"BATCH": 16, "SEQ": 1024, "EMBED": 1024},
        '''
class Model(nn.Module):
    """softmax(q k^T / sqrt(d)) v, projected back; no mask."""

    def __init__(self, embed):
        super().__init__()
        self.q = nn.Linear(embed, embed)
        self.k = nn.Linear(embed, embed)
        self.v = nn.Linear(embed, embed)
        self.out = nn.Linear(embed, embed)
        self.scale = embed**-0.5

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)
        return self.out(torch.bmm(scores, v))


def get_inputs():
    return [torch.randn(BATCH, SEQ, EMBED)]


def get_init_inputs():
    return [EMBED]
''',
    ),
    _task(
        "transformer_mlp_block",
        3,
        "Pre-norm transformer feed-forward block: x + W2 gelu(W1 LayerNorm(x)).",
        {"BATCH": 2, "SEQ": 128, "EMBED": 128, "HIDDEN": 256},
        {"BATCH": 16, "SEQ": 1024, "EMBED": 1024, "HIDDEN": 4096},
        '''
class Model(nn.Module):
    """Residual pre-norm MLP with tanh-approximated GELU."""

    def __init__(self, embed, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, hidden)
        self.fc2 = nn.Linear(hidden, embed)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x)), approximate="tanh"))


def get_inputs():
    return [torch.randn(BATCH, SEQ, EMBED)]


def get_init_inputs():
    return [EMBED, HIDDEN]
''',
    ),
    _task(
        "transformer_attention_block",
        3,
        "Pre-norm attention block: x + Attention(LayerNorm(x)), single head, fused qkv projection.",
        {"BATCH": 2, "SEQ": 128, "EMBED": 128},
        {"BATCH": 16, "SEQ": 1024, "EMBED": 1024},
        '''
class Model(nn.Module):
    """x + out(softmax(q k^T / sqrt(d)) v) with q, k, v from one Linear on LayerNorm(x)."""

    def __init__(self, embed):
        super().__init__()
        self.norm = nn.LayerNorm(embed)
        self.qkv = nn.Linear(embed, 3 * embed)
        self.out = nn.Linear(embed, embed)
        self.scale = embed**-0.5

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        scores = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)
        return x + self.out(torch.bmm(scores, v))


def get_inputs():
    return [torch.randn(BATCH, SEQ, EMBED)]


def get_init_inputs():
    return [EMBED]
''',
    ),
    _task(
        "residual_conv_block",
        3,
        "ResNet-style basic block without batch norm: relu(x + conv(relu(conv(x)))), 3x3 same padding.",
        {"BATCH": 4, "CHANNELS": 16, "HEIGHT": 24, "WIDTH": 24},
        {"BATCH": 32, "CHANNELS": 128, "HEIGHT": 56, "WIDTH": 56},
        '''
class Model(nn.Module):
    """Two 3x3 convolutions with a ReLU between and an identity shortcut."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS]
''',
    ),
    _task(
        "rnn_cell",
        3,
        "Elman RNN cell: h' = tanh(Linear(concat(x, h))).",
        {"BATCH": 256, "INPUT": 256, "HIDDEN": 256},
        {"BATCH": 4096, "INPUT": 2048, "HIDDEN": 4096},
        '''
class Model(nn.Module):
    """One step of a vanilla RNN with a single Linear on the concatenated input and state."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        return torch.tanh(self.linear(torch.cat([x, h], dim=1)))


def get_inputs():
    return [torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN)]


def get_init_inputs():
    return [INPUT, HIDDEN]
''',
    ),
)

TASKS: tuple[KernelTask, ...] = LEVEL1 + LEVEL2 + LEVEL3
"""Every built-in task, level 1 first."""

_BY_KEY: dict[str, KernelTask] = {key: task for task in TASKS for key in (task.name, task.id)}


def get_task(name_or_id: str) -> KernelTask:
    """The task called ``name_or_id`` (``relu`` or ``L1/relu``); a ``KeyError`` suggests close names."""
    task = _BY_KEY.get(name_or_id.strip())
    if task is not None:
        return task
    matches = difflib.get_close_matches(name_or_id.strip(), list(_BY_KEY), n=6, cutoff=0.5)
    close = list(dict.fromkeys(_BY_KEY[key].name for key in matches))[:3]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(t.name for t in TASKS)}"
    raise KeyError(f"no kernel task {name_or_id!r}{hint}")


def tasks_at(level: int | None = None) -> list[KernelTask]:
    """The tasks of ``level`` (1, 2 or 3), or all of them with ``level=None``."""
    if level is None:
        return list(TASKS)
    if level not in (1, 2, 3):
        raise ValueError(f"level must be 1, 2 or 3, got {level!r}")
    return [task for task in TASKS if task.level == level]
