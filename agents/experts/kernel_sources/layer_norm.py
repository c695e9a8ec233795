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
