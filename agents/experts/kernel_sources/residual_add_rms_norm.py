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
