"""The host side of a stitched run vectorised: one onnxruntime call per unit and layer, host
norms and the mask multiply over the whole tiled array, deconv tiles overlap-added at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import compose_cfg

from tasnet_sweep.model.convtasnet import build_model
from tasnet_sweep.tiling import host_ops
from tasnet_sweep.tiling.executors import OrtExecutor, TorchExecutor
from tasnet_sweep.tiling.plan import build_plan
from tasnet_sweep.tiling.stitch import join_deconv_tiles, separate
from tasnet_sweep.tiling.tiled import Tiled
from tasnet_sweep.tiling.weights import group_params, model_params

#: blocks of 8 channels over 32/16/24/16 channels (4, 2, 3 and 2 blocks), 7-frame tiles
SMALL_BLOCKED = ("model.n_filters=32", "model.bn=16", "model.hidden=24", "model.skip=16",
                 "model.n_blocks=3", "model.n_repeats=1", "model.time_len=803",
                 "tiling=blocked", "tiling.tile_width=7", "tiling.channel_block=8")


def _built(*overrides):
    cfg = compose_cfg(*SMALL_BLOCKED, *overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    return build_plan(cfg.model, cfg.tiling), model_params(model)


class CountingOrt(OrtExecutor):
    """onnxruntime on in-memory graphs, recording each call; a call per instance fails."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def run_group(self, step, group, x):
        self.calls.append((step.layer, group.unit, len(group.instances)))
        return super().run_group(step, group, x)

    def run(self, inst, x):
        raise AssertionError(f"{inst.name}: one onnxruntime call per instance")


@pytest.mark.parametrize("overrides", [
    ("model.decoder=convtranspose", "model.norm=gLN", "model.activation=prelu"),
    ("model.decoder=conv1x1_head", "model.norm=cLN", "model.skip_topology=sum"),
])
def test_onnxruntime_runs_each_unit_of_a_layer_in_one_call_and_matches_torch(overrides):
    plan, params = _built(*overrides)
    wav = np.random.default_rng(7).standard_normal(803).astype(np.float32)
    ex = CountingOrt(plan, params)
    got = separate(plan, params, ex, wav)
    ref = separate(plan, params, TorchExecutor(plan, params), wav)  # one call per instance
    np.testing.assert_allclose(got, ref, atol=1e-5)
    per_layer_units = [(s.layer, u) for s in plan.npu_steps()
                       for u in dict.fromkeys(i.unit for i in s.instances)]
    assert [(layer, unit) for layer, unit, _ in ex.calls] == per_layer_units
    assert sum(n for *_, n in ex.calls) == sum(len(s.instances) for s in plan.npu_steps())
    assert len(ex.calls) < sum(len(s.instances) for s in plan.npu_steps())


def test_exported_instance_files_still_run_one_call_per_instance(tmp_path):
    from tasnet_sweep.tiling.executors import export_instances

    plan, params = _built("model.decoder=conv1x1_head")
    ex = OrtExecutor(plan, params, export_instances(plan, params, tmp_path))
    assert ex.unit_batches is False and OrtExecutor(plan, params).unit_batches is True


def test_unit_groups_are_whole_rectangles_of_blocks_or_single_instances():
    plan, params = _built("model.decoder=convtranspose")
    for step in plan.npu_steps():
        groups = step.unit_groups()
        assert sorted(i.name for g in groups for i in g.instances) == \
            sorted(i.name for i in step.instances)
        for g in groups:
            pairs = {(i.out_block, i.in_block) for i in g.instances}
            want = {(o, o) for o in g.outs} if step.op == "depthwise" else \
                {(o, i) for o in g.outs for i in g.ins}
            assert pairs == want and {i.unit for i in g.instances} == {g.unit}
    # the bottleneck (4 input blocks -> 2 output blocks): bias on input block 0, then the rest
    bott = next(s for s in plan.npu_steps() if s.layer == "masker.bottleneck")
    assert [(len(g.outs), len(g.ins)) for g in bott.unit_groups()] == [(2, 1), (2, 3)]
    # weights side by side make the layer's own weight, each bias once
    w = np.concatenate([group_params(g, "conv", TorchExecutor(plan, params).weights)[0]
                        for g in bott.unit_groups()], axis=1)
    np.testing.assert_array_equal(w, params["masker.bottleneck.weight"])
    # an instance missing from a rectangle: that unit falls back to one group per instance
    bott.instances.remove(next(i for i in bott.instances if i.name.endswith(".o1.i2")))
    sizes = [len(g.instances) for g in bott.unit_groups()]
    assert sizes == [2, 1, 1, 1, 1, 1]


def _tiled(rng, p, c, n, w, length, edges):
    data = rng.standard_normal((p, c, n, w)).astype(np.float32)
    data.reshape(p, c, n * w)[..., length:] = 99.0  # garbage in the padding
    return Tiled(data, edges, length)


@pytest.mark.parametrize("variant", ["cLN", "gLN", "affine"])
@pytest.mark.parametrize("inplace", [False, True])
def test_tiled_norms_match_the_dense_ones(variant, inplace):
    rng = np.random.default_rng(3)
    x = _tiled(rng, 1, 6, 5, 5, 23, (0, 4, 6))
    params = {"n.gamma": rng.standard_normal(6).astype(np.float32),
              "n.beta": rng.standard_normal(6).astype(np.float32)}
    ref = host_ops.norm(x.dense().copy(), variant, params, "n")
    got = host_ops.norm(x, variant, params, "n", inplace=inplace)
    np.testing.assert_allclose(got.dense(), ref, atol=1e-5, rtol=1e-5)
    assert np.shares_memory(got.data, x.data) is inplace


@pytest.mark.parametrize("inplace", [False, True])
def test_tiled_mask_multiply_matches_the_dense_one(inplace):
    rng = np.random.default_rng(5)
    feats = _tiled(rng, 1, 6, 5, 5, 23, (0, 4, 6))
    masks = _tiled(rng, 1, 12, 5, 5, 23, (0, 4, 6, 10, 12))
    ref = host_ops.mask_mul(feats.dense(), masks.dense(), 2)
    got = host_ops.mask_mul(feats, masks, 2, inplace=inplace)
    assert isinstance(got, Tiled) and got.n_src == 2 and got.edges == feats.edges
    np.testing.assert_array_equal(got.dense(), ref)
    assert np.shares_memory(got.data, masks.data) is inplace


@pytest.mark.parametrize("kernel", [2, 4, 5, 9])  # 9: a tile spills past its neighbour
def test_deconv_tiles_overlap_add_like_one_tile_at_a_time(kernel):
    step = SimpleNamespace(tile=3, stride=2)
    hop, w_out = 6, (3 - 1) * 2 + kernel
    y = np.random.default_rng(kernel).standard_normal((2, 3, 4, w_out)).astype(np.float32)
    ref = np.zeros((2, 3, 3 * hop + w_out), np.float32)
    for j in range(4):
        ref[..., j * hop:j * hop + w_out] += y[:, :, j]
    np.testing.assert_allclose(join_deconv_tiles(y, step, 20), ref[..., :20], atol=1e-6)
