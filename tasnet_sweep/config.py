"""Structured configs (Hydra ConfigStore) and the checks that run before any work starts.

OmegaConf enforces types (an ``int`` field rejects ``abc``); ``validate_values`` enforces meaning
(positive channels, known names, kernel >= stride, ...) and returns one line per problem,
each naming the key, the bad value and what would be accepted.  Cross-field checks live here
too, so a grid can be checked job by job before the first job runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from .errors import ConfigError  # noqa: F401 (where the config's users have always found it)

NORM_NAMES = ("gLN", "cLN", "affine", "identity")
ACTIVATION_NAMES = ("prelu", "relu")
MASK_ACT_NAMES = ("sigmoid", "relu")
UNIT_ACTIVATION_NAMES = ("sigmoid", "relu", "prelu")
SKIP_TOPOLOGIES = ("sum", "project")
MASK_MUL_MODES = ("normal", "bypass")
DECODERS = ("convtranspose", "conv1x1_head")
ENCODER_ACTIVATIONS = ("relu", "linear")
TILING_MODES = ("none", "temporal", "blocked")
COMPILER_BACKENDS = ("estimate", "hailo_dfc", "replay")
COMPILER_OPT_LEVELS = ("0", "1", "2", "max")
CONTEXT_SWITCH_MODES = ("enabled", "disabled", "allowed")
CALIBRATION_SOURCES = ("synthetic", "npz", "wav_dir")
LENGTH_POLICIES = ("error", "pad", "crop")
HW_ARCHS = ("hailo8", "hailo8l", "hailo8r", "hailo10h", "hailo15h", "hailo15m", "hailo15l")
RUNTIMES = ("torch", "onnxruntime", "hailort")
TRACKING_BACKENDS = ("none", "mlflow")
SAFE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]{0,127}$")
#: config values that become a file or folder name inside a folder the tool writes to (the run
#: or sweep folder, outputs/optuna/): a plain name, never a path, so none can escape that folder
NAME_FIELDS = ("run_tag", "summary_name", "search.name", "search.study_name",
               "search.prior_study")
#: config values naming a file or folder the user chooses to read or write (anywhere they can)
LOCATION_FIELDS = ("compiler.replay_tsv", "compiler.cache_dir", "compiler.calibration.path",
                   "runtime.input", "runtime.output_dir", "runtime.checkpoint", "runtime.onnx_dir",
                   "runtime.hef_dir", "runtime.har_dir", "search.storage", "search.prior_storage",
                   "tracking.tracking_uri")
#: blocks a model may have in all (n_blocks x n_repeats)
MAX_BLOCKS = 1024
#: a compile may not wait longer than this (a day): compiler.timeout_s=inf would hang forever
MAX_TIMEOUT_S = 24 * 3600.0


@dataclass
class ModelConfig:
    name: str = "convtasnet"
    n_src: int = 2
    n_filters: int = 512  # N
    kernel_size: int = 16  # L
    stride: int = 8
    bn: int = 128  # B, bottleneck
    hidden: int = 512  # H
    skip: int = 128  # Sc
    conv_kernel: int = 3  # P
    n_blocks: int = 8  # X
    n_repeats: int = 3  # R
    norm: str = "gLN"
    activation: str = "prelu"
    mask_act: str = "sigmoid"
    skip_topology: str = "sum"
    mask_mul: str = "normal"
    decoder: str = "convtranspose"
    encoder_activation: str = "relu"  # relu (paper) | linear (asteroid's default)
    truncate_k_blocks: Optional[int] = None  # None: all n_blocks * n_repeats blocks
    time_len: int = 16000


@dataclass
class UnitConfig:
    name: str = "full"
    channels: Optional[int] = None  # norm / activation units: channels (default model.bn)
    width: Optional[int] = None  # latent units: time width T' (default: from model.time_len)
    op: Optional[str] = None  # norm unit: a norm name; activation unit: an activation name
    block: int = 0  # conv1d_block: which block (sets the dilation)
    blocks: Optional[int] = None  # tdconvnet: blocks kept (default truncate_k_blocks, else 1)
    source: int = 0  # per-source units: which source


@dataclass
class TilingConfig:
    mode: str = "none"  # none | temporal (tile_width) | blocked (tile_width + channel_block)
    tile_width: Optional[int] = None  # latent frames per tile
    channel_block: Optional[int] = None  # channels per block (blocked mode)
    # with a compiler that writes HEFs: one HEF per distinct instance weights once every unit
    # passes (a deployable plan); false: only each distinct unit, with its first instance's
    instance_hefs: bool = True
    # a plan needing more HEFs than this fails (family deploy_limit): with search.objective,
    # the largest model whose plan a device can hold in K HEFs; null: no limit
    max_hefs: Optional[int] = None


@dataclass
class CalibrationConfig:
    """Calibration data for the real compiler's optimize step (compile/calibration.py)."""

    source: str = "synthetic"  # synthetic | npz | wav_dir
    count: int = 16  # synthetic frames (npz: every frame in the file; wav_dir: one per file)
    seed: int = 0  # synthetic only
    path: Optional[str] = None  # npz: the .npz file; wav_dir: the folder of mono .wav files
    input_length_policy: str = "error"  # error | pad (zero-pad short) | crop (cut long)


@dataclass
class CompilerConfig:
    backend: str = "estimate"
    timeout_s: float = 3600.0
    optimization_level: int = 0
    compression_level: int = 0
    compiler_optimization_level: str = "1"
    allocator_timeout: str = "30m"
    max_utilization: Optional[float] = None
    context_switch: str = "allowed"
    replay_tsv: Optional[str] = None
    replay_missing: str = "error"  # error | estimate
    # replay waits recorded compile seconds x this before answering (0: no wait)
    replay_time_scale: float = 0.0
    cache: bool = True
    cache_dir: str = "outputs/cache"
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


@dataclass
class HwConfig:
    """A hardware profile for the offline estimate; conf/hw/<arch>.yaml says where each number
    came from (public Hailo facts, FITTED to recorded outcomes, or GUESSED)."""

    arch: str = "hailo8"
    clusters: int = 8
    control_units_per_cluster: int = 16
    compute_units_per_cluster: int = 64
    memory_units_per_cluster: int = 128
    clock_mhz: float = 400.0
    peak_tops: float = 26.0  # int8
    single_context_utilization: float = 0.75
    multi_context_utilization: float = 0.60
    memory_unit_bytes: int = 2048  # FITTED
    layer_max_clusters: int = 2  # FITTED
    aux_layer_memory_units: int = 64  # FITTED hypothesis
    macs_per_compute_unit_column: int = 4096  # GUESSED
    max_configured_networks: int = 32  # HailoRT's core-op limit per VDevice
    configure_ms: float = 20.0  # GUESSED: configuring one network group (a HEF) on the device
    switch_ms: float = 1.0  # GUESSED: the scheduler moving from one network group to another
    guessed: list[str] = field(default_factory=list)  # fields with no source for this arch
    fitted_to: str = ""  # the outcomes the FITTED fields were fitted to
    #: per estimate family (``BRACKET_FAMILIES``): [largest row buffer recorded passing,
    #: smallest recorded failing] in bytes, either null when no real outcome says; a config
    #: whose row buffer falls strictly between the two is ``verdict=uncertain``.  Unlike the
    #: numbers above it defaults to none, not to Hailo-8's (conf/hw/hailo8.yaml): a mapping
    #: default would be merged into every profile's own, and brackets are one arch's evidence
    row_brackets: dict[str, list[Optional[int]]] = field(default_factory=dict)


@dataclass
class RuntimeConfig:
    """Where and how audio is separated (python -m tasnet_sweep.commands.separate / check_device /
    quant_error); the main trial app reads only ``name``."""

    name: str = "torch"  # torch | onnxruntime | hailort
    input: Optional[str] = None  # the mixture .wav (separate, quant_error)
    output_dir: str = "outputs/separated"  # source wavs, metrics and validation tables
    checkpoint: Optional[str] = None  # asteroid model.serialize() or ours; null: seeded weights
    seed: int = 0  # the random weights' seed when there is no checkpoint
    random_weights: bool = False  # separate: run an untrained model on purpose (no checkpoint)
    onnx_dir: Optional[str] = None  # onnxruntime: <instance>.onnx files (null: built in memory)
    hef_dir: Optional[str] = None  # hailort: <instance>.hef files (required)
    hailort_api: str = "infer_model"  # infer_model (HailoRT 4.x/5.x) | vstreams (4.x legacy)
    timeout_ms: int = 10000  # hailort: per run call
    sample_rate: int = 8000  # the model's sample rate (asteroid checkpoints say theirs)
    resample: bool = False  # resample a mixture at another rate (else refuse it)
    downmix: bool = False  # average several channels (else refuse them)
    output_format: str = "pcm16"  # pcm16 | float32
    chunk_len: Optional[int] = None  # samples per pass; null: model.time_len, 0: whole file
    overlap: float = 0.25  # fraction of a chunk shared with the next (crossfaded)
    weight_quant: str = "per_channel"  # quant_error: per_channel | per_tensor
    quant_bits: int = 8  # quant_error: symmetric integer bits
    # quant_error: auto (run the DFC's SDK_QUANTIZED emulator on the units' quantized HARs
    # when hailo_sdk_client and har_dir are there) | off
    sdk_compare: str = "auto"
    har_dir: Optional[str] = None  # quant_error: a tiled hailo_dfc trial's run directory
    validate_repeats: int = 3  # validate: timed runs per unit and per chain


@dataclass
class TrackingConfig:
    """Where trials are logged (tasnet_sweep/tracking); the local files stay the record."""

    backend: str = "none"  # none | mlflow
    tracking_uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db
    experiment: Optional[str] = None  # null: the study/experiment name, else "tasnet_sweep"
    log_onnx: bool = False  # upload each trial's .onnx as an artifact
    log_hef: bool = False  # upload each trial's .hef (real compiler only) as an artifact
    background: bool = True  # a single run hands its logging to a detached sync process


#: tracking URI schemes MLflow 3.x accepts as a tracking store (a plain path or file: is refused)
TRACKING_URI_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def validate_tracking(t, problems: list[str]) -> None:
    _one_of(problems, "tracking.backend", t.backend, TRACKING_BACKENDS)
    uri = t.tracking_uri
    if uri is not None and re.search(r"://[^/@\s]+@", str(uri)):
        shown = re.sub(r"://[^/@\s]+@", "://***@", str(uri))
        problems.append(f"tracking.tracking_uri={shown!r} holds a user and password, which the "
                        "config would write into every run folder: give the URI without them and "
                        "the credentials in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD "
                        "(MLflow reads them), or the whole URI in $MLFLOW_TRACKING_URI")
    elif uri is not None:
        scheme = str(uri).split(":", 1)[0].split("+", 1)[0] if ":" in str(uri) else ""
        if scheme not in TRACKING_URI_SCHEMES or (scheme != "databricks" and "://" not in uri):
            problems.append(f"tracking.tracking_uri={uri!r} is invalid: expected null or a URI "
                            f"like sqlite:///outputs/mlflow.db or http://127.0.0.1:5000 (schemes: "
                            f"{', '.join(TRACKING_URI_SCHEMES)}; a plain folder is not a store)")
    name = t.experiment
    if name is not None and (not str(name).strip() or len(str(name)) > 200):
        problems.append(f"tracking.experiment={name!r} is invalid: expected null or a name of "
                        "1-200 characters")


@dataclass
class ExportConfig:
    opset: int = 13
    parity: bool = True
    parity_tol: float = 1e-4
    seed: int = 0
    max_memory_gb: float = 8.0  # refuse a model whose build and export would need more


@dataclass
class SearchConfig:
    """A frontier search (hydra/sweeper=frontier): ordered knobs and where the study lives."""
    name: str = "search"
    # config key -> values ordered small -> large (a list, or {low, high, step})
    knobs: dict = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # overrides applied to every job
    sampler: str = "frontier"  # frontier | tpe | random | grid
    storage: Optional[str] = None  # journal path or Optuna RDB URL (default outputs/optuna/)
    study_name: Optional[str] = None  # default: name
    batch_size: int = 1  # jobs per launcher call (use >1 with hydra/launcher=joblib)
    max_trials: Optional[int] = None  # compiles per run (None: until the frontier is exact)
    seed: int = 0
    # a study over the same knobs whose answers order the queries (e.g. the estimate-backend
    # study before real compiles); this study's own outcomes always override it
    prior_study: Optional[str] = None
    prior_storage: Optional[str] = None  # default: outputs/optuna/<prior_study>.journal
    record_inferred: bool = True  # store inferred answers as trials (evidence=inferred)
    # null: certify the whole frontier; params | macs: stop once the largest passing config
    # by that count is certified (fewer compiles, only that config is certain)
    objective: Optional[str] = None
    plot: bool = True  # write frontier.png
    # 0: the sweeper proposes and launches batches itself; N >= 1: it launches N worker jobs
    # (through the Hydra launcher: joblib, submitit_slurm, ...) that each propose, claim,
    # compile and record until the frontier is exact, none waiting for another's compile
    workers: int = 0
    worker: Optional[int] = None  # set by the sweeper on each worker job: its index
    heartbeat_s: float = 60.0  # a worker beats for its claims this often ...
    grace_s: float = 180.0  # ... and a claim without a beat for this long goes to another
    # how the frontier sampler plans around other workers' running compiles: fail (assume
    # they fail), block (keep off their up- and down-sets), auto (fail unless the recorded
    # compile times show fails not clearly longer than passes, then block)
    assume_running: str = "auto"


#: what search.objective may rank by (tasnet_sweep.search.sizes counts them)
SEARCH_OBJECTIVES = ("params", "macs")
#: ours, then Optuna's (baselines for the benchmark)
SEARCH_SAMPLERS = ("frontier", "tpe", "random", "grid")
#: search.assume_running (tasnet_sweep.search.proposers.assume_running)
SEARCH_ASSUME_RUNNING = ("auto", "fail", "block")
#: SQLAlchemy dialects Optuna's RDB storage can use (``dialect[+driver]://...``)
RDB_DIALECTS = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def _rdb_driver_installed(url: str) -> bool:
    """SQLAlchemy's own answer (its default postgresql driver differs between versions)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(url).get_dialect().import_dbapi()
    except Exception:  # noqa: BLE001 - a missing or broken driver, a malformed URL
        return False
    return True


def validate_search(s, problems: list[str]) -> None:
    """Where the study lives: null, a journal file path, or an RDB URL with a known dialect."""
    for key in ("storage", "prior_storage"):
        loc = s[key]
        if loc is None:
            continue
        loc = str(loc)
        if "://" not in loc:
            if not loc.endswith(".journal") or not loc.strip():
                problems.append(f"search.{key}={loc!r} is invalid: expected null, a journal "
                                "file path ending in .journal, or an RDB URL like "
                                "postgresql://user@host:5432/db or sqlite:///optuna.db")
            continue
        scheme = loc.split("://", 1)[0]
        dialect = scheme.partition("+")[0]
        if dialect not in RDB_DIALECTS:
            problems.append(f"search.{key}={loc!r} has an unknown database {scheme!r}: expected "
                            f"one of {', '.join(RDB_DIALECTS)} (optionally +driver), "
                            "or a journal file path ending in .journal")
        elif not _rdb_driver_installed(loc):
            hint = (": use postgresql+psycopg2://... with pip install psycopg2-binary"
                    if dialect == "postgresql" else "")
            problems.append(f"search.{key}={loc!r} needs a Python driver for {scheme!r} that is "
                            f"not installed{hint}")
    _positive(problems, "search.batch_size", s.batch_size)
    _one_of(problems, "search.sampler", s.sampler, SEARCH_SAMPLERS)
    _one_of(problems, "search.assume_running", s.get("assume_running", "auto"),
            SEARCH_ASSUME_RUNNING)
    objective = s.get("objective")
    if objective is not None and objective not in SEARCH_OBJECTIVES:
        problems.append(f"search.objective={objective!r} is invalid: expected null or one of "
                        f"{', '.join(SEARCH_OBJECTIVES)}")
    mt = s.max_trials
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        problems.append(f"search.max_trials={mt!r} is invalid: expected null or a whole "
                        "number >= 1")
    _worker_problems(s, problems)


def _worker_problems(s, problems: list[str]) -> None:
    workers = s.get("workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        problems.append(f"search.workers={workers!r} is invalid: expected a whole number >= 0 "
                        "(0: the sweeper launches batches; N: N worker jobs)")
    if s.get("worker") is not None and not workers:
        problems.append(f"search.worker={s.get('worker')!r} is set by the frontier sweeper on "
                        "its worker jobs: expected it unset (search.workers=N starts N workers)")
    beat, grace = s.get("heartbeat_s", 60.0), s.get("grace_s", 180.0)
    if not isinstance(beat, (int, float)) or isinstance(beat, bool) or beat < 1:
        problems.append(f"search.heartbeat_s={beat!r} is invalid: expected a number of "
                        "seconds >= 1 (Optuna's RDB heartbeat counts whole seconds)")
    elif not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace <= beat:
        problems.append(f"search.grace_s={grace!r} is invalid: expected a number of seconds "
                        f"greater than search.heartbeat_s={beat!r} (a few beats: 3x is usual)")


@dataclass
class Config:
    model: ModelConfig = MISSING
    unit: UnitConfig = MISSING
    tiling: TilingConfig = MISSING
    compiler: CompilerConfig = MISSING
    hw: HwConfig = MISSING
    runtime: RuntimeConfig = MISSING
    tracking: TrackingConfig = MISSING
    export: ExportConfig = field(default_factory=ExportConfig)
    search: Optional[SearchConfig] = None  # set by search=<name> (conf/search/)
    run_tag: str = "run"
    summary_name: str = "summary.tsv"


#: model knobs a run tag names when they differ from the paper's, and how
TAGGED_KNOBS = (("n_src", "nsrc{}"), ("kernel_size", "L{}"), ("stride", "S{}"), ("skip", "Sc{}"),
                ("conv_kernel", "P{}"), ("norm", "{}"), ("activation", "{}"),
                ("mask_act", "mask-{}"), ("skip_topology", "skip-{}"), ("mask_mul", "mul-{}"),
                ("decoder", "{}"), ("encoder_activation", "enc-{}"))


def run_tag_of(unit, model, tiling) -> str:
    """The default ``run_tag``: the unit, the model's sizes, then whatever else selects the
    graph (the unit's own op, width, channels, block, source; the tiling), so the jobs of one
    sweep get different tags.  Only characters ``SAFE_TAG`` accepts."""
    tag = (f"{unit.name}_N{model.n_filters}_B{model.bn}_H{model.hidden}"
           f"_X{model.n_blocks}R{model.n_repeats}_T{model.time_len}")
    paper = ModelConfig()
    extras = [(unit.op, "{}"), (unit.width, "W{}"), (unit.channels, "C{}"),
              (unit.block or None, "blk{}"), (unit.blocks, "k{}"), (unit.source or None, "src{}"),
              (model.truncate_k_blocks, "first{}")]
    for knob, fmt in TAGGED_KNOBS:  # what differs from the paper's model, briefly
        if model[knob] != getattr(paper, knob):
            extras.append((model[knob], fmt))
    tag += "".join("_" + fmt.format(value) for value, fmt in extras if value is not None)
    if tiling.mode == "temporal":
        tag += f"_tile{tiling.tile_width}"
    elif tiling.mode == "blocked":
        tag += f"_tile{tiling.tile_width}x{tiling.channel_block}"
    return tag


def register_configs() -> None:
    """The schema (``base_config``) and the run-tag resolver, once per process: storing the
    schema converts the whole dataclass again (about 3 ms), and both the preflight check and
    the Hydra app ask for it."""
    cs = ConfigStore.instance()
    if "base_config.yaml" not in cs.repo:
        cs.store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("tasnet_run_tag"):
        OmegaConf.register_new_resolver("tasnet_run_tag", run_tag_of)


def _positive(problems, key, value):
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"{key}={value!r} is invalid: expected a whole number >= 1")
        return False
    return True


_YAML_BOOLEAN_WORDS = ("off", "on", "no", "yes", "false", "true")


def allocator_setting_problems(max_utilization, context_switch) -> list[str]:
    """compiler.max_utilization and compiler.context_switch, as the config and the estimate
    backend (built from a plain mapping too) both check them."""
    problems: list[str] = []
    mu = max_utilization
    if mu is not None and (isinstance(mu, bool) or not isinstance(mu, (int, float))
                           or not 0 < mu <= 1):
        problems.append(f"compiler.max_utilization={mu!r} is invalid: expected null (the "
                        "DFC default) or a fraction in (0, 1]")
    _one_of(problems, "compiler.context_switch", context_switch, CONTEXT_SWITCH_MODES)
    return problems


def _one_of(problems, key, value, accepted):
    if value not in accepted:
        hint = ""
        if value in ("True", "False"):  # a string field given YAML's unquoted on/off/yes/no
            word = next((a for a in accepted if a in _YAML_BOOLEAN_WORDS), accepted[-1])
            hint = (f" (YAML reads an unquoted off/no/on/yes as a boolean: quote the word, "
                    f"e.g. {key.rsplit('.', 1)[-1]}: '{word}')")
        problems.append(f"{key}={value!r} is invalid: expected one of "
                        f"{', '.join(accepted)}{hint}")
        return False
    return True


def model_memory_bytes(m) -> float:
    """A rough upper estimate of what building, tracing and checking the model takes: float32
    weights a few times over (model, trace, ONNX) and the activations of one forward pass."""
    frames = m.time_len // m.stride + 1
    blocks = m.n_blocks * m.n_repeats
    params = (2 * m.n_filters * m.kernel_size + m.n_filters * m.bn
              + blocks * (2 * m.bn * m.hidden + m.hidden * m.conv_kernel + m.hidden * m.skip)
              + m.skip * m.n_src * m.n_filters)
    activations = frames * (3 * m.n_src * m.n_filters + 4 * m.hidden + 4 * m.bn + m.skip)
    return 4.0 * (3 * params + 4 * activations)


def validate_model(m, problems: list[str], max_memory_gb: float | None = None) -> None:
    checks = [_positive(problems, f"model.{k}", m[k]) for k in  # each one runs and reports
              ("n_src", "n_filters", "kernel_size", "stride", "bn", "hidden", "skip",
               "conv_kernel", "n_blocks", "n_repeats", "time_len")]
    ok = all(checks)
    _one_of(problems, "model.norm", m.norm, NORM_NAMES)
    _one_of(problems, "model.activation", m.activation, ACTIVATION_NAMES)
    _one_of(problems, "model.mask_act", m.mask_act, MASK_ACT_NAMES)
    _one_of(problems, "model.skip_topology", m.skip_topology, SKIP_TOPOLOGIES)
    _one_of(problems, "model.mask_mul", m.mask_mul, MASK_MUL_MODES)
    _one_of(problems, "model.decoder", m.decoder, DECODERS)
    _one_of(problems, "model.encoder_activation", m.encoder_activation, ENCODER_ACTIVATIONS)
    if not ok:
        return
    if m.n_blocks * m.n_repeats > MAX_BLOCKS:
        problems.append(f"model.n_blocks={m.n_blocks} x model.n_repeats={m.n_repeats} is "
                        f"invalid: expected at most {MAX_BLOCKS} blocks in all (the paper uses "
                        "8 x 3; building more takes longer than any compile is worth)")
        return
    need = model_memory_bytes(m) / 2 ** 30
    if max_memory_gb is not None and need > max_memory_gb:
        problems.append(f"the model (model.n_filters={m.n_filters}, model.hidden={m.hidden}, "
                        f"model.n_blocks={m.n_blocks}, model.n_repeats={m.n_repeats}, "
                        f"model.time_len={m.time_len}) would need about {need:,.1f} GB to build "
                        f"and export, more than export.max_memory_gb={max_memory_gb:g}: make it "
                        "smaller, or raise the budget")
        return
    if m.kernel_size < m.stride:
        problems.append(f"model.kernel_size={m.kernel_size} is smaller than model.stride="
                        f"{m.stride}: expected kernel_size >= stride (frames would skip samples)")
    if m.conv_kernel % 2 == 0:
        problems.append(f"model.conv_kernel={m.conv_kernel} is invalid: expected an odd number "
                        "(the depthwise conv keeps the time width with symmetric padding)")
    if m.time_len < m.kernel_size:
        problems.append(f"model.time_len={m.time_len} is too short: expected at least "
                        f"model.kernel_size={m.kernel_size} samples")
    total = m.n_blocks * m.n_repeats
    k = m.truncate_k_blocks
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= total):
        problems.append(f"model.truncate_k_blocks={k!r} is invalid: expected null or a whole "
                        f"number from 1 to n_blocks*n_repeats={total}")


#: hw profile numbers and their accepted ranges (inclusive): (low, high, whole number?)
HW_RANGES = {
    "clusters": (1, 64, True),
    "control_units_per_cluster": (1, 1024, True),
    "compute_units_per_cluster": (1, 4096, True),
    "memory_units_per_cluster": (1, 4096, True),
    "clock_mhz": (1.0, 5000.0, False),
    "peak_tops": (0.1, 1000.0, False),
    "single_context_utilization": (0.05, 1.0, False),
    "multi_context_utilization": (0.05, 1.0, False),
    "memory_unit_bytes": (16, 1 << 24, True),
    "layer_max_clusters": (1, 64, True),
    "aux_layer_memory_units": (1, 1 << 20, True),
    "macs_per_compute_unit_column": (1, 1 << 30, True),
    "max_configured_networks": (1, 1024, True),
    "configure_ms": (0.0, 600000.0, False),
    "switch_ms": (0.0, 600000.0, False),
}


def validate_hw(hw, problems: list[str]) -> None:
    """Checks for a hardware profile (the ``hw`` node, or an estimate ``HwProfile``: both are
    read by attribute), one line per problem."""
    _one_of(problems, "hw.arch", hw.arch, HW_ARCHS)
    for key, (low, high, whole) in HW_RANGES.items():
        value = getattr(hw, key)
        bad_type = isinstance(value, bool) or not isinstance(value, (int, float)) or (
            whole and not isinstance(value, int))
        if bad_type or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            problems.append(f"hw.{key}={value!r} is invalid: expected {kind} from {low} to {high}")
    clusters, reach = hw.clusters, hw.layer_max_clusters
    if isinstance(clusters, int) and isinstance(reach, int) and reach > clusters:
        problems.append(f"hw.layer_max_clusters={reach} is invalid: expected at most "
                        f"hw.clusters={clusters}")
    for name in hw.guessed:
        if name not in HW_RANGES:
            problems.append(f"hw.guessed lists {name!r}: expected names of hw profile numbers "
                            f"({', '.join(HW_RANGES)})")
    _bracket_problems(getattr(hw, "row_brackets", None) or {}, problems)


#: the estimate's families of the row-buffer rule, each with its own limit: ``conv`` (conv, dw
#: and deconv layers: hw.layer_max_clusters) and ``aux`` (standalone activation, elementwise,
#: norm and shape layers: hw.aux_layer_memory_units)
BRACKET_FAMILIES = ("conv", "aux")


def bracket_items(brackets) -> list[tuple[str, tuple]]:
    """``hw.row_brackets`` as (family, (pass_max, fail_min)) pairs, from the config's mapping
    or the frozen profile's tuple of pairs."""
    pairs = brackets.items() if hasattr(brackets, "items") else brackets
    return [(str(family), tuple(bounds)) for family, bounds in pairs]


def _bracket_problems(brackets, problems: list[str]) -> None:
    for family, bounds in bracket_items(brackets):
        key = f"hw.row_brackets.{family}"
        if family not in BRACKET_FAMILIES:
            problems.append(f"{key} is not a family of the estimate: expected one of "
                            f"{', '.join(BRACKET_FAMILIES)}")
            continue
        whole = [b is None or (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
                 for b in bounds]
        if len(bounds) != 2 or not all(whole):
            problems.append(f"{key}={list(bounds)!r} is invalid: expected [largest recorded "
                            "pass, smallest recorded fail] in bytes, each a whole number >= 1 "
                            "or null")
        elif None not in bounds and bounds[0] >= bounds[1]:
            problems.append(f"{key}={list(bounds)!r} is invalid: the largest recorded pass "
                            "must be below the smallest recorded fail")


def validate_compiler(c, problems: list[str]) -> None:
    """The real compiler's model-script settings and its calibration data source."""
    if not 0 < c.timeout_s <= MAX_TIMEOUT_S:
        problems.append(f"compiler.timeout_s={c.timeout_s!r} is invalid: expected seconds > 0 "
                        f"and at most {MAX_TIMEOUT_S:g} (a day; the default is 3600)")
    for key, top in (("optimization_level", 4), ("compression_level", 2)):
        value = c[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            problems.append(f"compiler.{key}={value!r} is invalid: expected a whole number "
                            f"from 0 to {top}")
    _one_of(problems, "compiler.compiler_optimization_level", str(c.compiler_optimization_level),
            COMPILER_OPT_LEVELS)
    if not re.fullmatch(r"\d+[smh]?", str(c.allocator_timeout)):
        problems.append(f"compiler.allocator_timeout={c.allocator_timeout!r} is invalid: "
                        "expected a duration like 90s, 30m or 2h")
    problems.extend(allocator_setting_problems(c.max_utilization, c.context_switch))
    problems.extend(replay_time_scale_problems(c.get("replay_time_scale", 0.0)))
    cal = c.calibration
    _one_of(problems, "compiler.calibration.source", cal.source, CALIBRATION_SOURCES)
    _positive(problems, "compiler.calibration.count", cal.count)
    _one_of(problems, "compiler.calibration.input_length_policy", cal.input_length_policy,
            LENGTH_POLICIES)
    if c.backend != "hailo_dfc" or cal.source not in ("npz", "wav_dir"):
        return  # only the real compiler reads calibration files
    from pathlib import Path

    wanted = "an .npz file" if cal.source == "npz" else "a folder of mono .wav files"
    if not cal.path:
        problems.append(f"compiler.calibration.path is not set: compiler.calibration.source="
                        f"{cal.source} needs {wanted}")
    elif not (Path(cal.path).is_file() if cal.source == "npz" else Path(cal.path).is_dir()):
        problems.append(f"compiler.calibration.path={cal.path!r} does not exist: expected "
                        f"{wanted}")


#: compiler.replay_time_scale's largest value: 1 replays recorded compiles in real time
MAX_REPLAY_TIME_SCALE = 1.0


def replay_time_scale_problems(scale) -> list[str]:
    """compiler.replay_time_scale: 0 (answer at once) or a factor in (0, 1] on recorded
    compile seconds (a bad value is one line; nan and inf are not factors)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not 0 <= scale <= MAX_REPLAY_TIME_SCALE:
        return [f"compiler.replay_time_scale={scale!r} is invalid: expected 0 (replay without "
                f"waiting) or a factor in (0, {MAX_REPLAY_TIME_SCALE:g}] on the recorded compile "
                "seconds (e.g. 0.00167 plays 30 min as 3 s)"]
    return []


def validate_tiling(m, t, problems: list[str]) -> None:
    """Tile width, channel block and HEF limit against the model they split."""
    frames = (m.time_len - m.kernel_size) // m.stride + 1
    if t.max_hefs is not None:
        _positive(problems, "tiling.max_hefs", t.max_hefs)
    if t.mode == "none":
        for key in ("tile_width", "channel_block"):
            if t[key] is not None:
                problems.append(f"tiling.{key}={t[key]} applies only to tiling.mode=temporal "
                                f"or blocked, not tiling.mode=none: remove it or choose a mode")
        return
    tw = t.tile_width
    if tw is None:
        problems.append(f"tiling.tile_width=null is invalid for tiling.mode={t.mode}: expected "
                        f"a whole number from 1 to the latent width {frames}")
    elif _positive(problems, "tiling.tile_width", tw) and tw > frames:
        problems.append(f"tiling.tile_width={tw} is larger than the latent width {frames} "
                        f"(model.time_len={m.time_len}): expected 1 to {frames}")
    cb = t.channel_block
    if t.mode == "temporal" and cb is not None:
        problems.append(f"tiling.channel_block={cb} applies only to tiling.mode=blocked, "
                        "not temporal: remove it or choose tiling.mode=blocked")
    if t.mode == "blocked":
        if cb is None:
            problems.append("tiling.channel_block=null is invalid for tiling.mode=blocked: "
                            "expected a whole number >= 1 that divides the blocked channels")
        elif _positive(problems, "tiling.channel_block", cb):
            blocked = {"model.n_filters": m.n_filters, "model.bn": m.bn,
                       "model.hidden": m.hidden, "model.skip": m.skip,
                       "model.n_src*model.n_filters": m.n_src * m.n_filters}
            bad = [f"{key}={c}" for key, c in blocked.items() if c > cb and c % cb]
            if bad:
                problems.append(f"tiling.channel_block={cb} does not divide {', '.join(bad)}: "
                                "expected a divisor of every channel count above it")


RUNTIME_OUTPUT_FORMATS = ("pcm16", "float32")
HAILORT_APIS = ("infer_model", "vstreams")
WEIGHT_QUANT = ("per_channel", "per_tensor")
SDK_COMPARE = ("auto", "off")


def validate_runtime(r, problems: list[str]) -> None:
    """The runtime group's own values (files are checked by the commands that read them)."""
    _one_of(problems, "runtime.name", r.name, RUNTIMES)
    _one_of(problems, "runtime.hailort_api", r.hailort_api, HAILORT_APIS)
    _one_of(problems, "runtime.output_format", r.output_format, RUNTIME_OUTPUT_FORMATS)
    _one_of(problems, "runtime.weight_quant", r.weight_quant, WEIGHT_QUANT)
    _one_of(problems, "runtime.sdk_compare", r.sdk_compare, SDK_COMPARE)
    for key in ("sample_rate", "timeout_ms", "validate_repeats"):
        _positive(problems, f"runtime.{key}", r[key])
    if not isinstance(r.quant_bits, int) or isinstance(r.quant_bits, bool) \
            or not 2 <= r.quant_bits <= 16:
        problems.append(f"runtime.quant_bits={r.quant_bits!r} is invalid: expected a whole "
                        "number from 2 to 16")
    cl = r.chunk_len
    if cl is not None and (isinstance(cl, bool) or not isinstance(cl, int) or cl < 0):
        problems.append(f"runtime.chunk_len={cl!r} is invalid: expected null (model.time_len), "
                        "0 (the whole file in one pass) or a number of samples")
    if not 0 <= r.overlap <= 0.5:
        problems.append(f"runtime.overlap={r.overlap!r} is invalid: expected a fraction of a "
                        "chunk from 0 to 0.5")


def validate_values(cfg) -> list[str]:
    """Every problem in a composed config, one line each (empty when it is good to run)."""
    problems: list[str] = []
    validate_model(cfg.model, problems, cfg.export.max_memory_gb)
    for key in NAME_FIELDS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None and key != "run_tag":
            continue
        if not isinstance(value, str) or not SAFE_TAG.match(value) or ".." in value:
            problems.append(f"{key}={value!r} is invalid: expected a plain name of 1-128 "
                            "characters from A-Z a-z 0-9 . _ = , + - starting with a letter or "
                            "digit, without '..' (it names a file in a folder this tool writes)")
    for key in LOCATION_FIELDS:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, str) and ("\0" in value or not value.strip()):
            problems.append(f"{key}={value!r} is invalid: expected a path (not empty, no NUL)")
    _one_of(problems, "tiling.mode", cfg.tiling.mode, TILING_MODES)
    if not problems:  # tiling checks need sound model numbers
        validate_tiling(cfg.model, cfg.tiling, problems)
    if cfg.tiling.mode != "none" and cfg.unit.name != "full":
        problems.append(f"tiling.mode={cfg.tiling.mode} plans the whole model, so it needs "
                        f"unit=full, not unit={cfg.unit.name}: drop the unit or use tiling=none")
    _one_of(problems, "compiler.backend", cfg.compiler.backend, COMPILER_BACKENDS)
    validate_hw(cfg.hw, problems)
    validate_runtime(cfg.runtime, problems)
    validate_tracking(cfg.tracking, problems)
    if not 7 <= cfg.export.opset <= 20:
        problems.append(f"export.opset={cfg.export.opset} is invalid: expected 7 to 20 "
                        "(the legacy exporter's range; 13 is the default)")
    _one_of(problems, "compiler.replay_missing", cfg.compiler.replay_missing,
            ("error", "estimate"))
    validate_compiler(cfg.compiler, problems)
    if cfg.get("search") is not None:
        validate_search(cfg.search, problems)
    return problems
