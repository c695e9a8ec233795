import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
DIM = 16384
NEGATIVE_SLOPE = 0.01

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
