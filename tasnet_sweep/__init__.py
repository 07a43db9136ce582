"""tasnet_sweep: find the ConvTasNet configurations that compile for Hailo NPUs."""

__version__ = "0.1.0"
