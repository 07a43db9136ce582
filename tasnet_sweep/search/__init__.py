"""Frontier search: which configurations of ordered knobs still compile, with few compiles.

lattice.py (knobs, dominance, monotone inference), sampler.py (what to compile next),
proposers.py (the one interface to it and to Optuna's samplers), study.py (the Optuna study
that remembers every answer), driver.py (the loop), frontier.py (the answer and its reports).
The Hydra face is hydra_plugins/tasnet_sweep/frontier_sweeper.py.
"""
