"""A ConvTasNet written for the Hailo parser: every 1-D op is 2-D on NCHW [B, C, 1, T]."""
