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
