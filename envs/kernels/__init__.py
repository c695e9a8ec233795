"""KernelGen: write a faster kernel for a PyTorch operator; rewarded by compiling, checking and timing it."""
