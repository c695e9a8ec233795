class ModelNew(nn.Module):
    def __init__(self, channels, scale):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels, 1, 1))
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        lib.bias_tanh_scale(x, self.bias, y, x.shape[0], x.shape[1], x.shape[2] * x.shape[3], float(self.scale))
        return y
