"""Experiments choose which configs run and in what order; the trial path stays the same."""
