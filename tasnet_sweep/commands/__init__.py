"""The commands beside the main trial app (``python -m tasnet_sweep``), one module each; every
one is ``python -m tasnet_sweep.commands.<name>`` and the console script
``tasnet-sweep-<name>`` (underscores as dashes):

- ``agreement``: how well the offline estimate reproduces recorded compile outcomes
- ``fit_profile``: refit a hw profile's FITTED constants to recorded outcomes
- ``compare``: the trials of several sweeps side by side, from MLflow
- ``sync``: push trials that MLflow is missing
- ``rebuild_summary``: regenerate a sweep's summary TSV from its result.json files
- ``gc``: free cache and run folders that nothing refers to
- ``separate``: separate a mixture through a plan, on torch, onnxruntime or HailoRT
- ``quant_error``: how much int8 would change the separated sources, before compiling
- ``check_device``: parity and latency of compiled HEFs on the device
- ``doctor``: check an installed Hailo SDK against the calls this project makes
"""
