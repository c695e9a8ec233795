import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
SEQ = 1024
EMBED = 1024

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
