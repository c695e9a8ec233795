import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
SEQ = 1024
EMBED = 1024
HIDDEN = 4096

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
