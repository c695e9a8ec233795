class ModelNew(nn.Module):
    def __init__(self, scale, gain):
        super().__init__()
        self.scale = scale
        self.gain = gain

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        lib.scaled_softmax(x, y, x.numel() // dim, dim, float(self.scale), float(self.gain))
        return y
