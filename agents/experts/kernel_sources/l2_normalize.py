class ModelNew(nn.Module):
    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.l2_normalize(x, y, x.shape[0], x.numel() // x.shape[0], float(self.eps))
        return y
