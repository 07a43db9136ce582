"""Check the installed Hailo SDK against what this project's adapters call, before a sweep
spends hours finding out: ``python -m tasnet_sweep.commands.doctor [--hw hailo8]``.

One line per check, ``ok`` or ``FAIL`` with the exact call and what it got:
1. ``hailo_sdk_client`` (the DFC) and ``hailo_platform`` (HailoRT) import, and their major
   versions belong to ``--hw``'s product line (DFC 3.x / HailoRT 4.x for Hailo-8/8L/8R, DFC 5.x /
   HailoRT 5.x for Hailo-10H/15);
2. every SDK call the adapters make accepts the keywords they pass (read with
   ``inspect.signature``; a compiled method that cannot be inspected is left to step 4);
3. the devices ``hailo_platform.Device.scan()`` finds;
4. one tiny 1x1-conv unit translated, optimized and compiled through the ``hailo_dfc``
   backend exactly as a trial does (child process, stage by stage);
5. with a device, that HEF run through the InferModel path against onnxruntime.
Without the Hailo wheels it says what is missing and exits 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import tempfile
from pathlib import Path

from ..compile.base import CompileRequest
from ..compile.hailo_dfc import HailoDfcBackend, sdk_version
from ..config_path import config_search_path

PROG = "tasnet_sweep.commands.doctor"
#: the SDK calls the adapters make, with the keywords they pass (hailo_dfc.py, sdk_compare.py,
#: tiling/executors.py, runtime/hailort_vstreams.py)
SDK_CALLS = {
    ("hailo_sdk_client", "ClientRunner", "__init__"): ("hw_arch",),
    ("hailo_sdk_client", "ClientRunner", "translate_onnx_model"): (
        "start_node_names", "end_node_names", "net_input_shapes"),
    ("hailo_sdk_client", "ClientRunner", "load_model_script"): (),
    ("hailo_sdk_client", "ClientRunner", "optimize"): (),
    ("hailo_sdk_client", "ClientRunner", "compile"): (),
    ("hailo_sdk_client", "ClientRunner", "save_har"): (),
    ("hailo_sdk_client", "ClientRunner", "get_hn_model"): (),
    ("hailo_platform", "VDevice", "create_infer_model"): (),
    ("hailo_platform", "InputVStreamParams", "make"): ("format_type", "timeout_ms"),
    ("hailo_platform", "OutputVStreamParams", "make"): ("format_type", "timeout_ms"),
    ("hailo_platform", "ConfigureParams", "create_from_hef"): ("interface",),
}
LINES = {"hailo8": 3, "hailo8l": 3, "hailo8r": 3, "hailo10h": 5, "hailo15h": 5,
         "hailo15m": 5, "hailo15l": 5}
RUNTIME_MAJOR = {3: 4, 5: 5}  # DFC major -> the HailoRT major it ships with


class Report:
    def __init__(self):
        self.failed = 0

    def line(self, ok: bool, check: str, detail: str = "") -> None:
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {check}" + (f": {detail}" if detail else ""),
              flush=True)


def _major(version: str) -> int | None:
    head = str(version or "").split(".")[0]
    return int(head) if head.isdigit() else None


def check_versions(report: Report, hw: str) -> None:
    want = LINES[hw]
    dfc = sdk_version()
    report.line(_major(dfc) == want, "DFC version",
                f"hailo_sdk_client {dfc or 'unknown'}; hw={hw} needs DFC {want}.x")
    import hailo_platform

    rt = str(getattr(hailo_platform, "__version__", "") or "")
    report.line(_major(rt) == RUNTIME_MAJOR[want], "HailoRT version",
                f"hailo_platform {rt or 'unknown'}; hw={hw} needs HailoRT {RUNTIME_MAJOR[want]}.x")


def check_signatures(report: Report) -> None:
    """Every call the adapters make accepts the keywords they pass."""
    import importlib

    for (module, cls, method), keywords in SDK_CALLS.items():
        call = f"{module}.{cls}.{method}({', '.join(k + '=...' for k in keywords)})"
        owner = getattr(importlib.import_module(module), cls, None)
        fn = getattr(owner, method, None) if owner is not None else None
        if fn is None:
            report.line(False, "API", f"{call}: {module}.{cls} has no {method}")
            continue
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            report.line(True, "API", f"{call}: compiled, not inspectable (step 4 calls it)")
            continue
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        missing = [k for k in keywords if k not in params and not takes_any]
        report.line(not missing, "API", f"{call}" + (
            f": the installed signature {method}{inspect.signature(fn)} lacks "
            f"{', '.join(missing)}" if missing else ""))


def check_devices(report: Report) -> list[str]:
    from hailo_platform import Device

    try:
        found = [str(d) for d in Device.scan()]
    except Exception as exc:  # the driver missing, no permission, ...
        report.line(False, "devices", f"hailo_platform.Device.scan() raised "
                                      f"{type(exc).__name__}: {exc}")
        return []
    report.line(True, "devices", ", ".join(found) if found else "none found (compile only)")
    return found


def _tiny_unit(work: Path):
    """A 16->16 1x1 conv on 64 frames: the smallest unit shape every plan uses."""
    import torch

    from ..export import export_unit
    from ..model.blocks import conv1x1
    from ..model.units import Unit

    torch.manual_seed(0)
    unit = Unit("doctor_conv1x1", conv1x1(16, 16), [("input", [1, 16, 1, 64])], ["output"],
                "a 16->16 1x1 conv on 64 frames", "conv1x1")
    return unit, export_unit(unit, work / "doctor_conv1x1.onnx").onnx_path


CALLS = {"translate": "runner.translate_onnx_model(onnx, net, start_node_names=, "
                      "end_node_names=, net_input_shapes=) + save_har",
         "optimize": "runner.load_model_script(script) + runner.optimize(calib) + save_har",
         "compile": "runner.compile() -> .hef + save_har"}


def check_compile(report: Report, hw: str, work: Path) -> Path | None:
    from ..config import register_configs

    register_configs()
    from hydra import compose

    with config_search_path(None, None):
        cfg = compose(config_name="config", overrides=["compiler=hailo_dfc", f"hw={hw}",
                                                       "compiler.calibration.count=4"])
    unit, onnx_path = _tiny_unit(work)
    request = CompileRequest(unit.name, "doctor", Path(onnx_path), unit.inputs, unit.outputs,
                             work / "compile", knobs={"unit": unit.name, "hw_arch": hw})
    outcome = HailoDfcBackend(cfg.compiler, cfg.hw).compile(request)
    for stage in outcome.stages:
        if stage.ok is None:
            continue
        failed = outcome.failure is not None and outcome.failure.stage == stage.name
        detail = CALLS[stage.name] + (f" raised {outcome.failure.exception_type or 'an error'}: "
                                      f"{outcome.failure.head}" if failed else
                                      f" in {stage.seconds:.1f} s")
        report.line(not failed, f"DFC {stage.name}", detail)
    if outcome.failure is not None and outcome.failure.stage not in {
            s.name for s in outcome.stages if s.ok is not None}:
        report.line(False, f"DFC {outcome.failure.stage}", outcome.failure.head)
    hef = next((s.artifact for s in outcome.stages if s.artifact and s.artifact.endswith(".hef")),
               None)
    return Path(hef) if outcome.failure is None and hef else None


def check_device_run(report: Report, hef: Path, onnx_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort
    from hailo_platform import FormatType, HailoSchedulingAlgorithm, VDevice

    x = np.random.default_rng(0).standard_normal((1, 64, 16)).astype(np.float32)
    want = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"input": np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0][0]
    try:
        params = VDevice.create_params()
        params.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        with VDevice(params) as vdevice:
            im = vdevice.create_infer_model(str(hef))
            im.input().set_format_type(FormatType.FLOAT32)
            im.output().set_format_type(FormatType.FLOAT32)
            with im.configure() as configured:
                b = configured.create_bindings()
                b.input().set_buffer(x)
                b.output().set_buffer(np.empty(im.output().shape, np.float32))
                configured.run([b], 10000)
                got = np.asarray(b.output().get_buffer())
    except Exception as exc:
        report.line(False, "device run", f"InferModel run of {hef.name} raised "
                                         f"{type(exc).__name__}: {exc}")
        return
    err = float(np.abs(got.transpose(2, 0, 1) - want).max() / (np.abs(want).max() or 1.0))
    report.line(err < 0.1, "device run", f"{hef.name} on the device vs onnxruntime: max "
                                         f"relative error {err:.3g} (int8: under 0.1 expected)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="hailo8", choices=sorted(LINES),
                    help="the target the installed wheels must serve (default hailo8)")
    ap.add_argument("--keep", metavar="DIR", help="keep the tiny unit's files in DIR")
    args = ap.parse_args(argv)
    missing = [m for m in ("hailo_sdk_client", "hailo_platform")
               if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{PROG}: error: {' and '.join(missing)} not installed: download the Dataflow "
              "Compiler and HailoRT wheels from Hailo's Developer Zone and pip install them "
              "(docs/backends.md: Adding Hailo's wheels)", file=sys.stderr)
        return 2
    report = Report()
    check_versions(report, args.hw)
    check_signatures(report)
    devices = check_devices(report)
    with tempfile.TemporaryDirectory(prefix="tasnet_doctor_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        hef = check_compile(report, args.hw, work)
        if hef is not None and devices:
            check_device_run(report, hef, work / "doctor_conv1x1.onnx")
        elif hef is not None:
            report.line(True, "device run", "skipped: no device")
    print(f"{PROG}: {report.failed} check(s) failed" if report.failed else
          f"{PROG}: every check passed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
