"""Replay of recorded outcomes, and the content-addressed trial/compile caches."""

import json

import pytest
from helpers import SMALL, compose_cfg

from tasnet_sweep import trial
from tasnet_sweep.compile import base
from tasnet_sweep.compile.cache import CompileCache
from tasnet_sweep.config import ConfigError

#: the public outcomes table shipped in the package, by the name compiler.replay_tsv takes
PUBLIC_TSV = "public"


class CountingBackend(base.CompileBackend):
    """A stand-in backend for cache tests: always passes, counts its calls."""

    name, evidence = "counting", "estimate"
    calls: list = []

    def __init__(self, compiler_cfg=None, hw_cfg=None):
        pass

    def version(self):
        return "1"

    def cache_identity(self):
        return {}

    def compile(self, request):
        CountingBackend.calls.append(request.unit_name)
        return base.CompileOutcome(self.name, self.evidence, [
            base.StageResult(s, True) for s in base.STAGES], metrics={"est_contexts": 1})


@pytest.fixture
def counting(monkeypatch):
    CountingBackend.calls = []
    monkeypatch.setattr("tasnet_sweep.trial.make_backend", lambda c, h: CountingBackend())
    return CountingBackend.calls


def _run(tmp_path, name, *overrides):
    cfg = compose_cfg(*SMALL, f"compiler.cache_dir={tmp_path / 'cache'}", *overrides)
    return trial.run(cfg, tmp_path / name, tmp_path / "summary.tsv")


def test_a_repeated_trial_is_answered_from_the_cache_without_compiling(tmp_path, counting):
    first = _run(tmp_path, "a", "unit=encoder")
    second = _run(tmp_path, "b", "unit=encoder")
    assert counting == ["encoder"]
    assert not first.summary["cache_hit"] and second.summary["cache_hit"]
    assert second.params == first.params and second.macs == first.macs
    assert (tmp_path / "b" / "encoder.onnx").read_bytes() == \
        (tmp_path / "a" / "encoder.onnx").read_bytes()


def test_two_configs_that_build_the_same_graph_compile_once(tmp_path, counting):
    # the norm unit's graph does not depend on the number of blocks
    _run(tmp_path, "a", "unit=norm", "model.n_blocks=1")
    second = _run(tmp_path, "b", "unit=norm", "model.n_blocks=2")
    assert counting == ["norm"]
    assert second.summary["cache_hit"]


def test_a_corrupted_entry_is_detected_and_recompiled(tmp_path, counting):
    _run(tmp_path, "a", "unit=encoder")
    for outcome in (tmp_path / "cache" / "compile").rglob("outcome.json"):
        outcome.write_text(outcome.read_text().replace('"ok": true', '"ok": false'))
    again = _run(tmp_path, "b", "unit=encoder")
    assert counting == ["encoder", "encoder"]
    assert again.summary["verdict"] == "pass" and not again.summary["cache_hit"]


def test_cache_can_be_switched_off(tmp_path, counting):
    _run(tmp_path, "a", "unit=encoder", "compiler.cache=false")
    _run(tmp_path, "b", "unit=encoder", "compiler.cache=false")
    assert counting == ["encoder", "encoder"]
    assert not (tmp_path / "cache").exists()


def test_transient_failures_are_not_cached(tmp_path):
    class Crashing(CountingBackend):
        def compile(self, request):
            CountingBackend.calls.append("crash")
            return base.CompileOutcome("counting", "real", [
                base.StageResult("translate", True), base.StageResult("optimize", True),
                base.StageResult("compile", False)],
                failure=base.Failure("crash", "compile", message="killed by signal 9"))

    CountingBackend.calls = []
    cache = CompileCache(tmp_path / "cache")
    onnx = tmp_path / "u.onnx"
    onnx.write_bytes(b"graph")
    req = base.CompileRequest("u", "net", onnx, [("input", [1, 1, 1, 8])], ["output"], tmp_path)
    for _ in range(2):
        outcome, _ = cache.compile(Crashing(), req, {"arch": "hailo8"})
        assert outcome.failure.family == "crash" and not outcome.cache_hit
    assert CountingBackend.calls == ["crash", "crash"]


def test_replay_reproduces_the_public_outcomes(tmp_path):
    # compiler=replay replays the public table shipped in the package unless told otherwise
    common = ["compiler=replay", f"compiler.cache_dir={tmp_path / 'cache'}"]
    ok = trial.run(compose_cfg(*common, "unit=source_projector", "model.n_filters=64",
                               "model.skip=64", "unit.width=256"), tmp_path / "ok")
    assert ok.summary["verdict"] == "pass" and ok.summary["evidence"] == "replay"
    enc = trial.run(compose_cfg(*common, "unit=encoder", "model.n_filters=256",
                                "model.time_len=16000"), tmp_path / "enc")
    s = enc.summary
    assert (s["verdict"], s["har_success"], s["hef_success"]) == ("fail", True, False)
    assert s["exception_type"] == "BackendAllocatorException"
    assert s["failure_head"] == "Agent infeasible"
    assert s["evidence"] == "replay"
    failure = json.loads((tmp_path / "enc" / "compile_failure.json").read_text())
    assert failure["exception_type"] == "BackendAllocatorException"


@pytest.mark.slow
def test_replay_distinguishes_rows_by_width(tmp_path):
    common = ["compiler=replay", f"compiler.replay_tsv={PUBLIC_TSV}", "compiler.cache=false",
              "unit=source_projector", "model.n_filters=256", "model.skip=256"]
    verdicts = {w: trial.run(compose_cfg(*common, f"unit.width={w}"),
                             tmp_path / str(w)).summary["verdict"]
                for w in (512, 1024, 2000)}
    assert verdicts == {512: "pass", 1024: "pass", 2000: "fail"}


def test_replay_without_a_recorded_row_stops_with_a_clear_error(tmp_path):
    cfg = compose_cfg("compiler=replay", f"compiler.replay_tsv={PUBLIC_TSV}",
                      "compiler.cache=false", "unit=masker_mask_head", *SMALL)
    with pytest.raises(ConfigError) as err:
        trial.run(cfg, tmp_path / "x")
    assert "has no recorded outcome for unit=masker_mask_head" in str(err.value)
    assert "compiler.replay_missing=estimate" in str(err.value)


def test_replay_of_a_summary_written_by_a_sweep_reproduces_it(tmp_path, counting, monkeypatch):
    for bn in (16, 24):
        _run(tmp_path, f"bn{bn}", "unit=masker_bottleneck", f"model.bn={bn}")
    monkeypatch.undo()  # the replay backend itself from here on
    cfg = compose_cfg(*SMALL, "compiler=replay", f"compiler.replay_tsv={tmp_path / 'summary.tsv'}",
                      "compiler.cache=false", "unit=masker_bottleneck", "model.bn=24")
    replayed = trial.run(cfg, tmp_path / "replayed").summary
    assert replayed["verdict"] == "pass" and replayed["evidence"] == "replay"
    assert replayed["bn"] == 24


def test_a_cache_hit_names_the_layers_of_its_own_net(tmp_path):
    """Two configs that build the same norm graph: the second is answered from the compile
    cache, and its failing layer carries its own net name, not the first trial's."""
    common = ["unit=norm", "unit.width=1024", f"compiler.cache_dir={tmp_path / 'cache'}"]
    first = trial.run(compose_cfg(*common, "model.n_filters=512"), tmp_path / "a")
    second = trial.run(compose_cfg(*common, "model.n_filters=256"), tmp_path / "b")
    assert second.compile.cache_hit and first.summary["verdict"] == "fail"
    for result in (first, second):
        tag = result.summary["run_tag"]
        assert result.summary["first_failing_layer"].startswith(tag + "/"), result.summary


@pytest.mark.parametrize("poison", ["empty_manifest",
                                    pytest.param("entry_is_a_file", marks=pytest.mark.slow),
                                    pytest.param("record_without_key", marks=pytest.mark.slow)])
def test_a_poisoned_cache_entry_is_recomputed_not_a_traceback(tmp_path, poison):
    common = [*SMALL, "unit=encoder", f"compiler.cache_dir={tmp_path / 'cache'}"]
    first = trial.run(compose_cfg(*common), tmp_path / "a")
    kind = "trial" if poison == "record_without_key" else "compile"
    entries = [p for p in (tmp_path / "cache" / kind).glob("*/*") if p.is_dir()]
    assert len(entries) == 1
    entry = entries[0]
    if poison == "empty_manifest":
        (entry / "manifest.json").write_text('{"files": {}}')
    elif poison == "entry_is_a_file":
        import shutil

        shutil.rmtree(entry)
        entry.write_text("not a folder")
        for trial_entry in (tmp_path / "cache" / "trial").glob("*/*"):  # force the compile
            shutil.rmtree(trial_entry)
    else:
        (entry / "record.json").write_text('{"unit": {}}')
        manifest = json.loads((entry / "manifest.json").read_text())
        from tasnet_sweep.compile.cache import file_digest

        manifest["files"]["record.json"] = file_digest(entry / "record.json")
        (entry / "manifest.json").write_text(json.dumps(manifest))
    again = trial.run(compose_cfg(*common), tmp_path / "b")
    assert again.summary["verdict"] == first.summary["verdict"]
    assert again.summary["params"] == first.summary["params"]


def test_a_truncated_sizes_cache_is_counted_again(tmp_path):
    import numpy as np

    from tasnet_sweep.search.lattice import Lattice
    from tasnet_sweep.search.sizes import cached_lattice_sizes

    lat = Lattice.from_spec({"model.n_filters": [16, 32]})
    job = compose_cfg(*SMALL, "unit=encoder")
    calls = []

    def size(cfg, objective):
        calls.append(cfg.model.n_filters)
        return int(cfg.model.n_filters)

    first = cached_lattice_sizes(lat, job, "params", tmp_path, size)
    for npy in tmp_path.glob("sizes-*.npy"):
        npy.write_bytes(npy.read_bytes()[:20])  # cut off mid-write
    again = cached_lattice_sizes(lat, job, "params", tmp_path, size)
    assert list(again) == list(first) == [16, 32] and len(calls) == 4
    assert np.load(next(tmp_path.glob("sizes-*.npy"))).shape == (2,)  # rewritten whole


def _one_entry(tmp_path):
    from tasnet_sweep.compile.cache import ContentStore

    store = ContentStore(tmp_path / "cache", "compile", required=("outcome.json",))
    store.put("k" * 64, {"outcome.json": b'{"verdict": "fail"}'}, {})
    return store, store.path("k" * 64)


def test_an_entry_edited_with_its_digest_recomputed_is_not_trusted(tmp_path, caplog):
    """A digest that the entry declares for itself proves nothing: whoever edits the outcome
    can recompute it. The manifest is signed with the cache's own key."""
    import hashlib

    store, entry = _one_entry(tmp_path)
    assert store.get("k" * 64) == entry
    (entry / "outcome.json").write_bytes(b'{"verdict": "pass"}')  # a FAIL turned into a PASS
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"]["outcome.json"] = hashlib.sha256(b'{"verdict": "pass"}').hexdigest()
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert store.get("k" * 64) is None
    assert "not signed with this cache's key" in caplog.text and not entry.exists()


def test_an_entry_signed_under_another_key_is_not_trusted_and_the_key_is_private(tmp_path):
    import stat

    from tasnet_sweep.compile import cache

    store, entry = _one_entry(tmp_path)
    key_file = tmp_path / "cache" / cache.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    cache._SECRETS.clear()
    key_file.write_bytes(b"another user's cache key, 32 b.")  # the entry was theirs
    assert cache.ContentStore(tmp_path / "cache", "compile").get("k" * 64) is None


def test_a_cache_whose_key_cannot_be_read_is_not_used(tmp_path, caplog):
    from tasnet_sweep.compile import cache

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / cache.KEY_FILE).mkdir()  # unreadable as a file, even for root
    store = cache.ContentStore(tmp_path / "cache", "compile")
    assert store.secret is None and "running without the cache" in caplog.text
    store.put("k" * 64, {"outcome.json": b"{}"}, {})
    assert store.get("k" * 64) is None and not store.path("k" * 64).exists()
