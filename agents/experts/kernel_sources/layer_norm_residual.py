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
