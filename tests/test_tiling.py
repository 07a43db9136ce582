"""Tiling (M4): plan dedup, exact reconstruction, validation, stitched parity, run_tiled."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from helpers import compose_cfg

from tasnet_sweep.checks import validate
from tasnet_sweep.cli import main, preflight
from tasnet_sweep.compile.base import CompileBackend, CompileOutcome, Failure, StageResult
from tasnet_sweep.model.convtasnet import build_model
from tasnet_sweep.tiling.executors import OrtExecutor, TorchExecutor
from tasnet_sweep.tiling.host_ops import as_dense
from tasnet_sweep.tiling.parity import measure_parity, si_snr_db
from tasnet_sweep.tiling.plan import HOST_OPS, build_plan
from tasnet_sweep.tiling.run import run_tiled
from tasnet_sweep.tiling.stitch import run_npu_step, run_plan
from tasnet_sweep.tiling.tiled import Tiled, halo_windows
from tasnet_sweep.tiling.weights import model_params

BRINGUP = ("model.n_filters=256", "model.bn=128", "model.hidden=256", "model.skip=128",
           "tiling=blocked", "tiling.channel_block=64", "tiling.tile_width=256")
ONE_BLOCK = ("model.n_blocks=1", "model.n_repeats=1")
#: a small model with awkward sizes: blocks of 8 channels, 7-frame tiles, odd lengths
SMALL_BLOCKED = ("model.n_filters=32", "model.bn=16", "model.hidden=24", "model.skip=16",
                 "model.n_blocks=3", "model.n_repeats=1", "model.time_len=803",
                 "tiling=blocked", "tiling.tile_width=7", "tiling.channel_block=8")


def _built(*overrides, seed=0):
    cfg = compose_cfg(*overrides)
    assert validate(cfg) == []
    torch.manual_seed(seed)
    model = build_model(cfg.model)
    return cfg, model, build_plan(cfg.model, cfg.tiling), model_params(model)


# ---- the plan ---------------------------------------------------------------------------------
def test_plan_deduplicates_structural_units_8x3():
    _, _, plan, _ = _built(*BRINGUP)
    ops = [u.op for u in plan.units.values()]
    # one depthwise unit per dilation 1..128, whatever block it sits in
    assert sorted(u.dilation for u in plan.units.values() if u.op == "depthwise") == \
        [2 ** i for i in range(8)]
    assert all(u.in_width == 256 + 2 * u.dilation for u in plan.units.values()
               if u.op == "depthwise")
    # every 1x1 of every layer is a 64x64 block: with bias (input block 0) or without
    pointwise = {k: u for k, u in plan.units.items() if u.op == "conv" and u.kernel == 1}
    assert {(u.cin, u.cout, u.bias) for u in pointwise.values()} == {(64, 64, True),
                                                                     (64, 64, False)}
    assert ops.count("deconv") == 1 and len(plan.units) == 12
    counts = {u.bias: len(plan.instances_of(k)) for k, u in pointwise.items()}
    # bias instances = output blocks of all 1x1 layers: bottleneck 2, 24x(in 4 + res 2 +
    # skip 2), mask head 8; the others carry the remaining input blocks
    assert counts[True] == 2 + 24 * 8 + 8
    assert counts[False] == 2 * 3 + 24 * (4 * 1 + 2 * 3 + 2 * 3) + 8 * 1
    total = sum(len(s.instances) for s in plan.npu_steps())
    assert total == sum(len(plan.instances_of(k)) for k in plan.units)
    names = [i.name for s in plan.npu_steps() for i in s.instances]
    assert len(names) == len(set(names))


def test_plan_records_host_share_and_writes_text():
    _, _, plan, _ = _built(*BRINGUP, *ONE_BLOCK)
    hs = plan.host_share()
    # 1 s = 999 frames = 4 tiles of 256 for every layer; 2 sources share the decoder units
    per_tile = sum(len(s.instances) * s.per_source for s in plan.npu_steps())
    assert hs["npu_invocations_per_s"] == 4 * per_tile
    assert 0.5 < hs["npu_share"] < 1.0
    assert 0 < hs["tiling_mac_overhead"] < 0.1  # 1024 padded frames for 999
    text = plan.describe()
    assert "halo 1 each side" in text and "weight instances=" in text
    assert "host_ops=norm,activation,mask_mul,overlap_add" in text
    record = json.loads(json.dumps(plan.as_dict()))  # serializable
    assert record["host_ops"] == list(HOST_OPS)  # provenance, from the one constant


# ---- reconstruction math, layer by layer ------------------------------------------------------
def test_every_layer_reconstructs_exactly():
    """Tiles, halos, partial sums over input blocks, bias once, deconv tile overlap-add."""
    cfg, model, plan, params = _built(*SMALL_BLOCKED, "model.decoder=convtranspose")
    ex = TorchExecutor(plan, params)
    g = torch.Generator().manual_seed(3)
    for step in plan.npu_steps():
        layer = model.get_submodule(step.layer)
        length = 803 if step.src == "wav" else 99
        x = torch.randn(step.per_source, step.cin, 1, length, generator=g)
        with torch.no_grad():
            ref = layer(x)[:, :, 0].reshape(step.per_source * step.cout, -1).numpy()
        got = as_dense(run_npu_step(step, x[:, :, 0].reshape(-1, length).numpy(), ex))
        assert got.shape == ref.shape, step.layer
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-5, err_msg=step.layer)


def test_small_plan_full_chain_matches_torch_for_both_decoders():
    for decoder in ("convtranspose", "conv1x1_head"):
        cfg, model, plan, params = _built(*SMALL_BLOCKED, f"model.decoder={decoder}",
                                          "model.skip_topology=sum")
        rows = measure_parity(model, plan, params, TorchExecutor(plan, params), 803)
        assert {r["path"] for r in rows} == {"decoder", "masker", "full"}
        assert max(r["max_abs"] for r in rows) < 1e-5, rows


def test_tiled_layout_round_trips_and_halos_match_the_padded_signal():
    rng = np.random.default_rng(4)
    dense = rng.standard_normal((2 * 6, 23)).astype(np.float32)  # P=2 sources, C=6, 23 frames
    n, w = 5, 5  # 25 frames of room: the last tile holds 3 frames and 2 of padding
    blocks = []
    for lo, hi in ((0, 4), (4, 6)):
        b = np.full((2, hi - lo, n * w), 99.0, np.float32)  # garbage in the padding
        b[..., :23] = dense.reshape(2, 6, 23)[:, lo:hi]
        blocks.append(b.reshape(2, hi - lo, n, w))
    t = Tiled(np.concatenate(blocks, axis=1), (0, 4, 6), 23)
    np.testing.assert_array_equal(t.dense(), dense)
    t.zero_tail()
    assert not t.blocks[1][:, :, -1, 3:].any() and t.blocks[1][:, :, -1, :3].any()
    left, right = 2, 3
    windows = halo_windows(t.blocks[0], left, right)
    padded = np.pad(dense.reshape(2, 6, 23)[:, :4], ((0, 0), (0, 0), (left, n * w - 23 + right)))
    for j in range(n):
        np.testing.assert_array_equal(windows[:, :, j], padded[..., j * w:j * w + left + w + right])


def test_dense_fallbacks_and_numpy_kernels_give_the_same_chain(monkeypatch):
    """Halos wider than a tile (dilation 4 on 3-frame tiles) go through the dense signal; PReLU,
    gLN and a numpy sigmoid (no onnxruntime) run on the tiled blocks."""
    from tasnet_sweep.tiling import ort_kernels

    monkeypatch.setattr(ort_kernels, "sigmoid", lambda x: None)
    over = [o for o in SMALL_BLOCKED if not o.startswith("tiling.tile_width")]
    cfg, model, plan, params = _built(*over, "tiling.tile_width=3", "model.activation=prelu",
                                      "model.norm=gLN", "model.decoder=convtranspose")
    assert any(s.op == "depthwise" and s.pad > s.tile for s in plan.npu_steps())
    rows = measure_parity(model, plan, params, TorchExecutor(plan, params), 803)
    assert max(r["max_abs"] for r in rows) < 1e-5, rows


def test_run_plan_leaves_the_callers_arrays_alone_and_returns_dense():
    cfg, model, plan, params = _built(*SMALL_BLOCKED)
    enc = np.random.default_rng(5).standard_normal((32, 99)).astype(np.float32)
    before = enc.copy()
    env = run_plan(plan, params, TorchExecutor(plan, params), {"enc": enc}, stages=("masker",))
    np.testing.assert_array_equal(enc, before)
    assert all(isinstance(v, np.ndarray) for v in env.values())
    assert env["masks"].shape == (cfg.model.n_src * 32, 99)
    read = {n for st in plan.steps for n in ([st.src] if st.kind == "npu" else st.inputs)}
    unread = {st.dst for st in plan.steps if st.stage == "masker"} - read
    assert set(env) == {"enc", "masks"} | unread  # intermediates are dropped once read


def test_si_snr_is_scale_invariant_and_penalises_noise():
    ref = np.sin(np.arange(1000) / 7.0)
    assert si_snr_db(3.0 * ref, ref) > 150
    noisy = ref + 0.01 * np.random.default_rng(0).standard_normal(1000)
    assert 30 < si_snr_db(noisy, ref) < 45


# ---- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,expected", [
    (("tiling=blocked", "tiling.channel_block=48"), "tiling.channel_block=48 does not divide "
                                                     "model.n_filters=512"),
    (("tiling=temporal", "tiling.tile_width=5000"), "tiling.tile_width=5000 is larger than the "
                                                    "latent width 1999"),
    (("tiling=temporal", "tiling.tile_width=0"), "tiling.tile_width=0 is invalid"),
    (("tiling=blocked", "tiling.channel_block=null"), "tiling.channel_block=null is invalid"),
    (("tiling=temporal", "tiling.channel_block=64"), "applies only to tiling.mode=blocked"),
    (("tiling=none", "tiling.tile_width=256"), "applies only to tiling.mode=temporal or blocked"),
])
def test_bad_tiling_is_one_clear_line(overrides, expected):
    problems = validate(compose_cfg(*overrides))
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_host_ops_is_no_setting_and_an_old_override_is_one_line(tmp_path, monkeypatch, capsys):
    """The host ops are a fact of every plan (HOST_OPS), so the old knob is an unknown key."""
    old = ("tiling=blocked", "tiling.host_ops=[norm,mask_mul,overlap_add]")
    problems = preflight(list(old))
    assert len(problems) == 1, problems
    assert problems[0].startswith("tiling.host_ops is not a known key: expected one of mode, ")
    monkeypatch.chdir(tmp_path)
    assert main(list(old)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_good_tiling_configs_validate():
    for mode in ("none", "temporal", "blocked"):
        assert validate(compose_cfg(f"tiling={mode}", "model.n_filters=256",
                                    "model.hidden=256")) == []


# ---- stitched parity of the bring-up through onnxruntime --------------------------------------
def _assert_bringup_parity(*overrides):
    cfg, model, plan, params = _built(*BRINGUP, "model.time_len=16000", *overrides)
    rows = measure_parity(model, plan, params, OrtExecutor(plan, params), 16000,
                          paths=("full",))
    assert len(rows) == cfg.model.n_src
    for r in rows:
        assert r["max_abs"] <= 1e-4, r
        assert r["si_snr_db"] >= 60, r
    return rows


@pytest.mark.parametrize("norm_overrides", [
    ("model.norm=gLN",),
    ("model.norm=cLN", "model.skip_topology=project", "model.decoder=conv1x1_head",
     "model.activation=relu"),
    ("model.norm=affine", "model.skip_topology=project", "model.decoder=conv1x1_head"),
])
def test_bringup_one_block_stitched_onnxruntime_matches_torch(norm_overrides):
    _assert_bringup_parity(*ONE_BLOCK, *norm_overrides)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["gLN", "cLN"])
def test_bringup_8x3_stitched_onnxruntime_matches_torch(norm):
    """SLOW (about 10-20 s each): all 24 blocks, 8 dilations, ~600 unit instances."""
    t0 = time.perf_counter()
    _assert_bringup_parity(f"model.norm={norm}")
    assert time.perf_counter() - t0 < 120  # a guard against runaway cost, not a benchmark


def test_decoder_and_masker_paths_on_a_longer_input():
    cfg, model, plan, params = _built(*BRINGUP, *ONE_BLOCK, "model.norm=cLN")
    length = 16000 * 2 + 1234  # 4153 frames: 16 full tiles and a partial one
    rows = measure_parity(model, plan, params, OrtExecutor(plan, params), length,
                          paths=("decoder", "masker"))
    assert {r["path"] for r in rows} == {"decoder", "masker"}
    assert all(r["max_abs"] <= 1e-4 and r["si_snr_db"] >= 60 for r in rows), rows


# ---- run_tiled ---------------------------------------------------------------------------------
class WidthLimitBackend(CompileBackend):
    """A stand-in backend for tests: passes units whose input width is at most ``limit``."""

    name, evidence = "stand_in", "inferred"

    def __init__(self, limit, unsure_above=None):
        """``unsure_above``: widths above it (and within ``limit``) get an uncertain verdict,
        as the estimate gives inside a recorded bracket."""
        self.limit, self.unsure_above, self.requests = limit, unsure_above, []

    def version(self):
        return "0"

    def cache_identity(self):
        return {"limit": self.limit}

    def compile(self, request):
        self.requests.append(request)
        ok = request.inputs[0][1][3] <= self.limit
        stages = [StageResult("translate", True), StageResult("optimize", True),
                  StageResult("compile", ok)]
        failure = None if ok else Failure("allocator_infeasible", "compile",
                                          "BackendAllocatorException", "Agent infeasible")
        width = request.inputs[0][1][3]
        unsure = ok and self.unsure_above is not None and width > self.unsure_above
        if unsure:
            stages[-1] = StageResult("compile", None)
        return CompileOutcome(self.name, self.evidence, stages, failure,
                              bracket={"quantity": "width", "value": width} if unsure else None)


def test_run_tiled_writes_plan_units_parity_and_verdicts(tmp_path):
    cfg = compose_cfg(*SMALL_BLOCKED)
    backend = WidthLimitBackend(limit=100)
    result = run_tiled(cfg, tmp_path, backend)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert len(backend.requests) == len(plan["units"]) == result["n_units"]
    for req in backend.requests:  # each distinct unit exported once, batch 1, and readable
        assert req.onnx_path.is_file() and req.inputs[0][1][0] == 1
    assert result["feasible"] is True
    assert "distinct NPU units" in (tmp_path / "plan.txt").read_text()
    tsv = (tmp_path / "parity.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:4] == ["path", "time_len", "source", "max_abs"]
    assert len(tsv) - 1 == len(result["parity"]) == 2 * 3 * cfg.model.n_src
    assert result["parity_max_abs"] < 1e-4
    assert result["host_share"]["npu_invocations_per_s"] > 0
    # the encoder unit reads (7-1)*8+16 = 64 samples, the widest halo 7+2*4 = 15 frames
    narrow = run_tiled(cfg, tmp_path / "narrow", WidthLimitBackend(limit=20))
    assert narrow["feasible"] is False
    failed = {u["unit"] for u in narrow["units"] if u["verdict"] == "fail"}
    assert failed == {u["unit"] for u in narrow["units"] if u["unit"].startswith("conv_c1x")}


def test_a_plan_with_an_uncertain_unit_and_none_failing_is_not_known_feasible(tmp_path):
    cfg = compose_cfg(*SMALL_BLOCKED)
    unsure = run_tiled(cfg, tmp_path / "unsure", WidthLimitBackend(limit=100, unsure_above=20))
    verdicts = {u["verdict"] for u in unsure["units"]}
    assert verdicts == {"pass", "uncertain"} and unsure["feasible"] is None
    both = run_tiled(cfg, tmp_path / "both", WidthLimitBackend(limit=12, unsure_above=8))
    assert {u["verdict"] for u in both["units"]} == {"pass", "uncertain", "fail"}
    assert both["feasible"] is False


# ---- the estimate backend ----------------------------------------------------------------------
def test_estimate_predicts_bringup_units_pass_and_untiled_model_fails(tmp_path):
    pytest.importorskip("tasnet_sweep.compile.estimate")
    from tasnet_sweep.compile import make_backend
    from tasnet_sweep.compile.base import CompileRequest
    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.units import build_unit

    cfg = compose_cfg(*BRINGUP, *ONE_BLOCK, "model=hailo_convtasnet", "compiler=estimate")
    backend = make_backend(cfg.compiler, cfg.hw)
    result = run_tiled(cfg, tmp_path / "tiled", backend, parity_lengths=[16000])
    assert result["feasible"], [(u["unit"], u["failure_head"]) for u in result["units"]]
    assert all(u["evidence"] == "estimate" for u in result["units"])
    full_cfg = compose_cfg("model=hailo_convtasnet", *ONE_BLOCK, "compiler=estimate")
    unit = build_unit(full_cfg.model, full_cfg.unit)
    exported = export_unit(unit, tmp_path / "full.onnx")
    outcome = backend.compile(CompileRequest("full", "full", tmp_path / "full.onnx",
                                             unit.inputs, unit.outputs, tmp_path))
    assert exported.onnx_path and outcome.verdict == "fail"


def test_host_sigmoid_kernels_agree_including_overflowing_inputs():
    from tasnet_sweep.tiling import host_ops, ort_kernels

    x = np.concatenate([np.linspace(-120, 120, 481), [0.0, -88.8, 88.8]]).astype(np.float32)
    x = x.reshape(1, 1, 1, -1)
    ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    fast = ort_kernels.sigmoid(x)
    assert fast is not None and fast.shape == x.shape  # onnxruntime is a test dependency
    out = np.empty_like(x)
    host_ops._sigmoid(x, out)
    np.testing.assert_allclose(fast, ref, atol=1e-6)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert out[0, 0, 0, 0] == 0.0 and out[0, 0, 0, 480] == 1.0
