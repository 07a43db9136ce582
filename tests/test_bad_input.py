"""Bad input through the real CLI: one clear line naming the key, exit 2, no traceback, no files.

Each case is a malformed override or file a user could plausibly type or hand over; the run must
stop in preflight before Hydra creates any directory.  A corrupted cache entry is the exception:
it is data the tool wrote itself, so it is recomputed rather than refused.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SMALL, run_cli

SEARCH = ["-m", "hydra/sweeper=frontier", "search=encoder_width"]
NPZ = ["unit=encoder", "compiler.calibration.source=npz"]

#: (id, extra overrides, words the one error line must contain: the key and what is accepted)
CASES = [
    ("zero_channels", ["model.n_filters=0"], ["model.n_filters=0", "whole number >= 1"]),
    ("negative_channels", ["model.bn=-3"], ["model.bn=-3", "whole number >= 1"]),
    ("text_channels", ["model.hidden=abc"], ["model.hidden", "Integer"]),
    ("fractional_channels", ["model.skip=1.5"], ["model.skip", "Integer"]),
    ("zero_time_len", ["model.time_len=0"], ["model.time_len=0", ">= 1"]),
    ("even_conv_kernel", ["model.conv_kernel=4"], ["model.conv_kernel=4", "odd"]),
    ("kernel_below_stride", ["model.kernel_size=4"], ["model.kernel_size=4", "stride"]),
    ("unknown_norm", ["model.norm=BN"], ["model.norm='BN'", "gLN"]),
    ("truncate_too_deep", ["model.truncate_k_blocks=99"], ["model.truncate_k_blocks=99", "1 to"]),
    ("tile_wider_than_input", ["tiling=temporal", "tiling.tile_width=100000"],
     ["tiling.tile_width=100000", "expected 1 to"]),
    ("channel_block_not_divisor", ["tiling=blocked", "tiling.tile_width=50",
                                   "tiling.channel_block=24"],
     ["tiling.channel_block=24", "divisor"]),
    ("tile_width_without_mode", ["tiling.tile_width=64"], ["tiling.tile_width=64", "mode"]),
    ("unknown_hw_arch", ["hw.arch=hailo99"], ["hw.arch='hailo99'", "hailo8l"]),
    ("unknown_hw_group", ["hw=hailo99"], ["hw=hailo99", "hailo10h"]),
    ("unknown_unit", ["unit=bogus"], ["unit=bogus", "encoder"]),
    ("unknown_unit_op", ["unit=norm", "unit.op=batchnorm"], ["unit.op='batchnorm'", "cLN"]),
    ("unit_block_out_of_range", ["unit=conv1d_block", "unit.block=99"], ["unit.block=99", "0 to"]),
    ("unknown_compiler", ["compiler=bogus"], ["compiler=bogus", "replay"]),
    ("negative_timeout", ["compiler.timeout_s=-1"], ["compiler.timeout_s=-1", "> 0"]),
    ("bad_allocator_timeout", ["compiler.allocator_timeout=soon"],
     ["compiler.allocator_timeout='soon'", "30m"]),
    ("opset_out_of_range", ["export.opset=99"], ["export.opset=99", "7 to 20"]),
    ("unknown_top_key", ["nonexistent_key=3"], ["nonexistent_key", "model"]),
    ("unknown_model_key", ["model.nokey=3"], ["model.nokey", "n_filters"]),
    ("path_traversal_run_tag", ["run_tag=../../etc"], ["run_tag='../../etc'", "A-Z"]),
    ("slash_in_run_tag", ["run_tag=a/b"], ["run_tag='a/b'", "A-Z"]),
    ("tracking_uri_a_folder", ["tracking.tracking_uri=/tmp/x"],
     ["tracking.tracking_uri='/tmp/x'", "sqlite"]),
    ("storage_scheme_typo", [*SEARCH, "search.storage=postgress://u@localhost/db"],
     ["search.storage='postgress://u@localhost/db'", "postgresql"]),
    ("storage_not_journal", [*SEARCH, "search.storage=/tmp/optuna.db"],
     ["search.storage='/tmp/optuna.db'", ".journal"]),
    ("storage_without_search", ["search.storage=sqlite:///x.db"],
     ["search.storage", "search=<name>", "encoder_width"]),
    ("bad_point_in_grid", ["-m", "model.n_filters=32,0"],
     ["model.n_filters=0", "in 1 of 2 jobs"]),
    ("calibration_missing_file", [*NPZ, "compiler.calibration.path=missing.npz"],
     ["compiler.calibration.path='missing.npz'", ".npz"]),
    ("calibration_wrong_shape", [*NPZ, "compiler.calibration.path=wrong_shape.npz"],
     ["calibration data for input 'input'", "expected NHWC [N, 1, 800, 1]"]),
    ("calibration_wrong_dtype", [*NPZ, "compiler.calibration.path=wrong_dtype.npz"],
     ["calibration data for input 'input'", "float32"]),
    ("calibration_not_npz", [*NPZ, "compiler.calibration.path=garbage.npz"],
     ["compiler.calibration.path='garbage.npz'", ".npz"]),
    ("timeout_infinite", ["compiler.timeout_s=inf"], ["compiler.timeout_s=inf", "86400"]),
    ("huge_channels", ["model.n_filters=10000000"], ["model.n_filters=10000000", "GB"]),
    ("huge_depth", ["model.n_blocks=100000"], ["model.n_blocks=100000", "at most 1024"]),
    ("huge_input", ["model.time_len=100000000"], ["model.time_len=100000000", "GB"]),
    ("summary_name_absolute", ["summary_name=/tmp/evil.tsv"],
     ["summary_name='/tmp/evil.tsv'", "plain name"]),
    ("summary_name_escapes", ["summary_name=../../evil.tsv"],
     ["summary_name='../../evil.tsv'", "plain name"]),
    ("study_name_a_path", [*SEARCH, "search.study_name=../evil"],
     ["search.study_name='../evil'", "plain name"]),
    ("password_in_tracking_uri", ["tracking.tracking_uri=http://u:pw@127.0.0.1:9"],
     ["tracking.tracking_uri='http://***@127.0.0.1:9'", "MLFLOW_TRACKING_PASSWORD"]),
]


def _bad_files(where: Path) -> None:
    np.savez(where / "wrong_shape.npz", np.zeros((4, 1, 7, 3), np.float32))
    np.savez(where / "wrong_dtype.npz", np.array(["a", "b"]))
    (where / "garbage.npz").write_bytes(b"not a zip file at all")
    (where / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00not a wave")


def _assert_rejected(done: subprocess.CompletedProcess, words: list[str], cwd: Path) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (cwd / "outputs").exists()
    assert not list(cwd.glob("multirun")) and not list(cwd.rglob("result.json"))


#: the cases the fast tier runs (one subprocess each); the slow tier runs every case
FAST_CASES = {"zero_channels", "unknown_hw_group", "path_traversal_run_tag", "bad_point_in_grid",
              "huge_channels"}


@pytest.mark.parametrize("args,words", [
    pytest.param(*c[1:], id=c[0], marks=() if c[0] in FAST_CASES else pytest.mark.slow)
    for c in CASES])
def test_bad_override_or_file_is_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    _bad_files(tmp_path)
    flags = [a for a in args if a == "-m"]  # Hydra's flags go before the overrides
    overrides = [a for a in args if a != "-m"]
    done = run_cli([*flags, *SMALL, *overrides, "tracking=none"], cwd=tmp_path, timeout=120)
    _assert_rejected(done, words, tmp_path)


def test_the_corpus_is_large_enough():
    assert len(CASES) + 2 >= 25  # + the two separate cases below
    assert FAST_CASES <= {c[0] for c in CASES}


@pytest.mark.slow
@pytest.mark.parametrize("wav,words", [
    ("garbage.wav", ["garbage.wav", "expected a .wav file"]),
    ("missing.wav", ["missing.wav", "expected a .wav file"]),
], ids=["unreadable_wav", "missing_wav"])
def test_separate_rejects_an_unreadable_wav(tmp_path, wav, words):
    _bad_files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run([sys.executable, "-m", "tasnet_sweep.separate", *SMALL,
                           f"runtime.input={wav}", "runtime.random_weights=true"],
                          cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    _assert_rejected(done, words, tmp_path)


def _rows(summary: Path) -> list[dict]:
    with open(summary, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.slow
def test_a_corrupted_cache_entry_is_recomputed_not_trusted(tmp_path):
    cache = tmp_path / "cache"
    args = [*SMALL, "unit=encoder", f"compiler.cache_dir={cache}", "tracking=none",
            f"hydra.run.dir={tmp_path / 'run1'}"]
    first = run_cli(args, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    entries = list((cache / "compile").glob("*/*/outcome.json"))
    trials = list((cache / "trial").glob("*/*/record.json"))
    assert len(entries) == 1 and len(trials) == 1
    entries[0].write_text('{"verdict": "pass", "tampered": true}')  # digest no longer matches
    trials[0].write_bytes(trials[0].read_bytes()[:10])  # cut off mid-write

    args[-1] = f"hydra.run.dir={tmp_path / 'run2'}"
    second = run_cli(args, cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "corrupted" in second.stdout + second.stderr
    (row,) = _rows(tmp_path / "run2" / "summary.tsv")
    (before,) = _rows(tmp_path / "run1" / "summary.tsv")
    assert row["cache_hit"] == "false"  # recomputed, not restored from the bad entry
    assert row["verdict"] == before["verdict"] and row["macs"] == before["macs"]
    assert (tmp_path / "run2" / "encoder.onnx").is_file()
    assert "tampered" not in next((cache / "compile").glob("*/*/outcome.json")).read_text()
