"""Using a plan on audio: wav io and resampling (audio.py), model and executor selection
(session.py), chunked separation with per-stage timing (chunks.py), int8 fake-quant
emulation (quant.py) and the shared Hydra entry helper (entry.py)."""
