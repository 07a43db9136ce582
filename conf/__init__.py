"""Hydra config package (pkg://tasnet_sweep.conf): one folder per config group."""
