import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
DIM = 8192
EPS = 1e-12

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
