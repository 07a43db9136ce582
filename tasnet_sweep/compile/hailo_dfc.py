"""The real Hailo Dataflow Compiler (``hailo_sdk_client``) as a compile backend.

The DFC is driven with the calls public Hailo code makes: ``ClientRunner(hw_arch)``
-> ``translate_onnx_model`` (explicit start/end nodes, NCHW input shapes) -> ``save_har`` ->
``load_model_script`` -> ``optimize(calib)`` -> ``save_har`` -> ``compile()`` -> ``.hef`` ->
``save_har``.  Checked against hailo-ai/hailo_model_zoo v2.18 (DFC 3.33): ``ClientRunner(
hw_arch=...)`` in ``hailo_model_zoo/main_driver.py``; ``translate_onnx_model(path, name,
start_node_names=..., end_node_names=...)`` in ``hailo_model_zoo/utils/parse_utils.py``;
``load_model_script``, ``optimize``, ``hef = runner.compile()`` written to a file opened "wb",
and ``save_har`` in ``hailo_model_zoo/core/main_utils.py``.  ``net_input_shapes=`` is not in
the model zoo's call; it is taken from luxonis/modelconverter
(``modelconverter/packages/hailo/exporter.py``).

It runs in a child process in its own process group, so a wall-clock timeout can kill the
compiler with everything it started, and a segfault or the OOM killer cannot take the
sweep down.  Parent and child talk through files in the work dir: ``dfc_request.json`` (what to
do), ``dfc_calib.npz`` (calibration arrays, no pickles; deleted afterwards) and
``dfc_state.json`` (stage progress, rewritten atomically after every step, so a crash still
shows how far it got); the child's stdout/stderr (the SDK's log) goes to ``dfc.log``.

DFC 3.x (Hailo-8/8L/8R) and 5.x (Hailo-10H/15) take the same calls used here; the only documented
difference on this path is ``har=`` vs ``har_path=`` when *loading* a HAR (DFC <= 3.25), which
this backend never does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import tasnet_sweep

from ..atomic import write_bytes, write_json, write_text
from .base import STAGES, CompileBackend, CompileOutcome, CompileRequest, Failure, StageResult
from .failures import classify

log = logging.getLogger(__name__)

MISSING_SDK = ("compiler=hailo_dfc needs Hailo's Dataflow Compiler (hailo_sdk_client), which is "
               "not installed: download the DFC wheel from Hailo's Developer Zone and `pip install "
               "hailo_dataflow_compiler-<version>-py3-none-linux_x86_64.whl` (docs/backends.md: "
               "Adding Hailo's wheels), or use compiler=estimate, which works without it")
DFC_LINES = {3: ("hailo8", "hailo8l", "hailo8r"),
             5: ("hailo10h", "hailo15h", "hailo15m", "hailo15l")}
REQUEST_FILE, STATE_FILE = "dfc_request.json", "dfc_state.json"
CALIB_FILE, LOG_FILE, SCRIPT_FILE = "dfc_calib.npz", "dfc.log", "model_script.alls"
HAR_FILES = {"translate": "parsed.har", "optimize": "quantized.har", "compile": "compiled.har"}
KILL_GRACE_S = 2.0  # SIGTERM first, SIGKILL after this
LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 6000


def model_script(compiler_cfg) -> str:
    """The .alls model script for the compiler settings (``resources_param`` only when set)."""
    c = compiler_cfg
    lines = [
        f"model_optimization_flavor(optimization_level={c.optimization_level}, "
        f"compression_level={c.compression_level})",
        f"performance_param(compiler_optimization_level={c.compiler_optimization_level})",
        f"allocator_param(timeout={c.allocator_timeout})",
    ]
    if c.max_utilization is not None:
        lines.append(f"resources_param(max_utilization={c.max_utilization})")
    lines.append(f"context_switch_param(mode={c.context_switch})")
    return "\n".join(lines) + "\n"


def sdk_version(env: dict | None = None) -> str:
    """The installed DFC's version: its wheel's metadata, else ``hailo_sdk_client.__version__``
    read in a child (importing the SDK here would load TensorFlow into the sweep process)."""
    from importlib import metadata

    try:
        return metadata.version("hailo_dataflow_compiler")
    except metadata.PackageNotFoundError:
        pass
    code = "import hailo_sdk_client as m; print(getattr(m, '__version__', '') or '')"
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env or child_env(),
                             capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = out.stdout.strip().splitlines()
    return lines[-1].strip() if out.returncode == 0 and lines else ""


def dfc_major(version: str) -> int | None:
    m = re.match(r"(\d+)\.", version or "")
    return int(m.group(1)) if m else None


def child_env() -> dict:
    """The parent's environment with its import path, so the child finds what the parent does."""
    paths = [str(Path(tasnet_sweep.__file__).resolve().parents[1])]
    for p in sys.path:
        p = os.path.abspath(p or os.getcwd())
        if p not in paths and os.path.exists(p):
            paths.append(p)
    extra = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + ([extra] if extra else []))}


class HailoDfcBackend(CompileBackend):
    name = "hailo_dfc"
    evidence = "real"
    writes_hef = True

    def __init__(self, compiler_cfg, hw_cfg):
        import importlib.util

        if importlib.util.find_spec("hailo_sdk_client") is None:
            from ..config import ConfigError

            raise ConfigError([MISSING_SDK])
        self.cfg = compiler_cfg
        self.arch = hw_cfg.arch
        self._version: str | None = None

    def version(self) -> str:
        if self._version is None:
            self._version = sdk_version() or "unknown"
            major = dfc_major(self._version)
            if major in DFC_LINES and self.arch not in DFC_LINES[major]:
                log.warning("hw.arch=%s is not in the DFC %d.x product line (%s); the compiler "
                            "may reject it", self.arch, major, ", ".join(DFC_LINES[major]))
        return self._version

    def cache_identity(self) -> dict:
        from .calibration import calibration_identity

        return {"hw_arch": self.arch, "model_script": model_script(self.cfg),
                "calibration": calibration_identity(self.cfg.calibration)}

    def compile(self, request: CompileRequest) -> CompileOutcome:
        work = Path(request.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
        calib_frames = self._write_calibration(request, work)  # a ConfigError stops here
        request_path = self._write_request(request, work)
        t0 = time.monotonic()
        try:
            returncode, timed_out = self._run_child(request_path, work)
        finally:  # an input, not an artifact: with real data it can be tens of MB per run
            (work / CALIB_FILE).unlink(missing_ok=True)
        wall = time.monotonic() - t0
        state = _read_json(work / STATE_FILE) or {}
        log_bytes = (work / LOG_FILE).read_bytes() if (work / LOG_FILE).exists() else b""
        stages = _stage_results(state, log_bytes)
        failure = self._failure(state, stages, log_bytes, returncode, timed_out, wall)
        if failure is None and not (work / f"{request.unit_name}.hef").is_file():
            failure = Failure("unknown", "compile", message="the compiler finished without "
                              "writing a HEF and without an error")
        if failure is not None:
            for s in stages:  # the failing stage did not pass, whatever it recorded
                if s.name == failure.stage:
                    s.ok = False
        version = state.get("tool_version") or self.version()
        metrics = {**_log_metrics(log_bytes.decode("utf-8", "replace")), **state.get("metrics", {}),
                   "calibration_frames": calib_frames, "wall_seconds": round(wall, 3),
                   "log_path": str(work / LOG_FILE), "model_script_path": str(work / SCRIPT_FILE),
                   "dfc_major": dfc_major(version)}
        return CompileOutcome(self.name, self.evidence, stages, failure, metrics,
                              tool_version=version)

    # -- parent side -------------------------------------------------------------------------

    def _write_calibration(self, request: CompileRequest, work: Path) -> int:
        import numpy as np

        from ..model.catalog import WAVEFORM_UNITS
        from .calibration import load_calibration

        waveform = request.unit_name in WAVEFORM_UNITS or \
            request.knobs.get("unit") in WAVEFORM_UNITS
        arrays = load_calibration(self.cfg.calibration, request.inputs, waveform)
        buf = io.BytesIO()
        np.savez(buf, **{f"input_{k}": a for k, a in enumerate(arrays.values())})
        write_bytes(work / CALIB_FILE, buf.getvalue())
        return int(next(iter(arrays.values())).shape[0])

    def _write_request(self, request: CompileRequest, work: Path) -> Path:
        script = model_script(self.cfg)
        write_text(work / SCRIPT_FILE, script)
        for stale in (STATE_FILE, f"{request.unit_name}.hef", *HAR_FILES.values()):
            (work / stale).unlink(missing_ok=True)
        return write_json(work / REQUEST_FILE, {
            "hw_arch": self.arch,
            "onnx_path": str(Path(request.onnx_path).resolve()),
            "net_name": request.net_name,
            "start_node_names": [name for name, _ in request.inputs],
            "end_node_names": list(request.outputs),
            "net_input_shapes": {name: list(shape) for name, shape in request.inputs},
            "model_script": script,
            "calib_path": str(work / CALIB_FILE),
            "har_paths": {stage: str(work / f) for stage, f in HAR_FILES.items()},
            "hef_path": str(work / f"{request.unit_name}.hef"),
            "state_path": str(work / STATE_FILE),
        })

    def _run_child(self, request_path: Path, work: Path) -> tuple[int | None, bool]:
        """(return code, timed out) of the child compile; its whole group is gone afterwards.

        The child also holds the read end of a pipe whose write end only this process has:
        if this process dies (SIGKILL, the OOM killer, SIGTERM), the child reads end-of-file
        and kills its own process group, so no compile outlives the sweep that started it."""
        lifeline, keep = os.pipe()
        argv = [sys.executable, "-m", "tasnet_sweep.compile.hailo_dfc", str(request_path),
                str(lifeline)]
        try:
            with open(work / LOG_FILE, "wb") as log_file:
                proc = subprocess.Popen(argv, cwd=work, env=child_env(), stdin=subprocess.DEVNULL,
                                        stdout=log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True, pass_fds=(lifeline,))
        finally:
            os.close(lifeline)
        timed_out = False
        try:
            proc.wait(timeout=float(self.cfg.timeout_s))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # a timeout, or the sweep itself interrupted: no compiler is left behind
            _kill_group(proc)
            os.close(keep)
        return proc.returncode, timed_out

    def _failure(self, state, stages, log_bytes, returncode, timed_out, wall) -> Failure | None:
        running = next((s["name"] for s in state.get("stages", []) if s.get("ok") is not True),
                       "translate")
        tail = _tail(log_bytes)
        if timed_out:
            return Failure("timeout", running, message=(
                f"compiler.timeout_s={self.cfg.timeout_s:g} exceeded during {running} (wall "
                f"clock {wall:.1f} s): the compiler's process group was killed"))
        if not state.get("finished"):
            if returncode is not None and returncode < 0:
                sig = _signal_name(-returncode)
                why = " (SIGKILL: often the kernel's out-of-memory killer)" \
                    if -returncode == signal.SIGKILL else ""
                head = f"the compiler process died from {sig} during {running}{why}"
                exc = sig
            else:
                head = f"the compiler process exited with code {returncode} during {running} " \
                       "without a result"
                exc = f"exit {returncode}"
            return Failure("crash", running, exception_type=exc,
                           message=head + ("\n" + tail if tail else ""))
        err = state.get("failure")
        if not err:
            return None
        stage = err.get("stage") or running
        stage_log = next((s.log for s in stages if s.name == stage), "")
        message = (err.get("message") or "").strip()
        failure = classify(err.get("exception_type", ""), message + "\n" + stage_log, stage)
        failure.message = message or stage_log
        return failure


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, SIGKILL whatever is left after a grace period."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(pgid, signal.SIGKILL)  # grandchildren that outlived the child, too
    proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])[-LOG_TAIL_CHARS:]


def _stage_results(state: dict, log_bytes: bytes) -> list[StageResult]:
    recorded = {s["name"]: s for s in state.get("stages", [])}
    out = []
    for name in STAGES:
        s = recorded.get(name)
        if s is None:
            out.append(StageResult.skipped(name))
            continue
        start, end = s.get("log_span", [0, None])
        seconds = s.get("seconds") or (time.time() - s["started_unix"]
                                       if s.get("ok") is None and s.get("started_unix") else 0.0)
        out.append(StageResult(name, bool(s.get("ok")), round(float(seconds), 3),
                               s.get("artifact"), _tail(log_bytes[start:end])))
    return out


def _log_metrics(text: str) -> dict:
    """What a compile log says about the result.  A successful DFC 3.x log runs "Trying to
    compile the network in a single context" -> ("Using Single-context flow" | "Using
    Multi-context flow" -> "Found valid partition to N contexts") -> utilization tables ->
    "Successful Mapping" -> "Successful Compilation" (public compile logs)."""
    metrics: dict = {}
    m = re.search(r"Found valid partition to (\d+) contexts", text)
    if m:
        metrics["contexts"] = int(m.group(1))
    elif "Using Single-context flow" in text:
        metrics["contexts"] = 1
    if "Reducing optimization level to 0" in text:
        metrics["optimization_level_reduced_to_0"] = True
    return metrics


# -- child side: runs in its own process group; imports only the SDK, numpy and the stdlib ----

class _Progress:
    """The child's stage records, rewritten to ``dfc_state.json`` after every change."""

    def __init__(self, path: str):
        self.path = path
        self.state = {"finished": False, "tool_version": "", "stages": [], "failure": None,
                      "metrics": {}}
        self._t0: dict[str, float] = {}

    def save(self) -> None:
        write_json(self.path, self.state)

    def begin(self, name: str) -> dict:
        print(f"[tasnet_sweep] stage {name}: started", flush=True)
        record = {"name": name, "ok": None, "seconds": 0.0, "artifact": None,
                  "log_span": [_log_offset(), None], "started_unix": time.time()}
        self._t0[name] = time.perf_counter()
        self.state["stages"].append(record)
        self.save()
        return record

    def end(self, record: dict, ok: bool, artifact: str | None = None) -> None:
        record["seconds"] = time.perf_counter() - self._t0[record["name"]]
        record.update(ok=ok, artifact=artifact)
        print(f"[tasnet_sweep] stage {record['name']}: {'ok' if ok else 'failed'} in "
              f"{record['seconds']:.1f} s", flush=True)
        record["log_span"][1] = _log_offset()
        self.save()


def _log_offset() -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return os.fstat(1).st_size
    except OSError:
        return 0


def input_layer_names(runner, start_node_names: list[str]) -> dict[str, str]:
    """ONNX input name -> the parsed net's input layer name.

    The names come from ``runner.get_hn_model().get_input_layers()``, as hailo_model_zoo v2.18
    reads them (``hailo_model_zoo/core/main_utils.py``, ``core/infer/hw_infer_utils.py``).  Which
    ONNX input each layer stands for is read from the layer's ``original_names`` in
    ``runner.get_hn_dict()["layers"]`` (the HN field the model zoo's ``layer_splitter.py``
    writes); only where the HN does not say is it taken by position, in start-node order.
    """
    layers = [layer.name for layer in runner.get_hn_model().get_input_layers()]
    if len(layers) != len(start_node_names):
        raise RuntimeError(f"the parsed net has input layers {layers}, expected one per start "
                           f"node {start_node_names}")
    hn_layers = (runner.get_hn_dict() or {}).get("layers", {})
    by_onnx: dict[str, str] = {}
    for name in layers:
        for original in hn_layers.get(name, {}).get("original_names") or []:
            if original in start_node_names:
                by_onnx[original] = name
    if len(by_onnx) == len(start_node_names) and len(set(by_onnx.values())) == len(layers):
        return by_onnx
    return dict(zip(start_node_names, layers))


def _calib_argument(calib_path: str, runner, start_node_names: list[str]):
    """``optimize``'s argument: the NHWC array for one input, else ``{input layer: array}``."""
    import numpy as np

    with np.load(calib_path, allow_pickle=False) as npz:
        arrays = [npz[f"input_{k}"] for k in range(len(npz.files))]
    if len(arrays) == 1:
        return arrays[0]
    names = input_layer_names(runner, start_node_names)
    return {names[onnx_name]: a for onnx_name, a in zip(start_node_names, arrays)}


def _compile_in_child(req: dict, progress: _Progress) -> None:
    """translate -> optimize -> compile with the SDK; exceptions propagate to the caller."""
    import hailo_sdk_client
    from hailo_sdk_client import ClientRunner

    progress.state["tool_version"] = str(getattr(hailo_sdk_client, "__version__", "") or "")
    har = req["har_paths"]
    runner = ClientRunner(hw_arch=req["hw_arch"])

    rec = progress.begin("translate")
    runner.translate_onnx_model(req["onnx_path"], req["net_name"],
                                start_node_names=req["start_node_names"],
                                end_node_names=req["end_node_names"],
                                net_input_shapes=req["net_input_shapes"])
    runner.save_har(har["translate"])
    progress.end(rec, True, har["translate"])

    rec = progress.begin("optimize")
    runner.load_model_script(req["model_script"])
    runner.optimize(_calib_argument(req["calib_path"], runner, req["start_node_names"]))
    runner.save_har(har["optimize"])
    progress.end(rec, True, har["optimize"])

    rec = progress.begin("compile")
    hef = runner.compile()
    if not isinstance(hef, (bytes, bytearray, memoryview)) or len(hef) == 0:
        raise RuntimeError(f"runner.compile() returned {type(hef).__name__}, not HEF bytes")
    write_bytes(req["hef_path"], bytes(hef))  # the only place in the project that writes a .hef
    runner.save_har(har["compile"])
    progress.state["metrics"]["compiled_har"] = har["compile"]
    progress.end(rec, True, req["hef_path"])


def _die_with_parent(lifeline: int) -> None:
    """Block on the parent's pipe; end-of-file means the parent is gone: end this compile and
    everything it started (this process leads its own group)."""
    import threading

    def watch() -> None:
        while os.read(lifeline, 1):
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="tasnet-lifeline", daemon=True).start()


def child_main(request_path: str, lifeline: int | None = None) -> int:
    if lifeline is not None:
        _die_with_parent(lifeline)
    req = json.loads(Path(request_path).read_text())
    progress = _Progress(req["state_path"])
    progress.save()
    try:
        _compile_in_child(req, progress)
    except BaseException as exc:  # noqa: BLE001 - every SDK failure is data for the parent
        traceback.print_exc()
        running = [s for s in progress.state["stages"] if s["ok"] is None]
        for rec in running:
            progress.end(rec, False)
        stage = running[-1]["name"] if running else "translate"
        progress.state["failure"] = {"exception_type": type(exc).__name__,
                                     "exception_module": type(exc).__module__,
                                     "message": str(exc), "stage": stage}
    progress.state["finished"] = True
    progress.save()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
