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
from helpers import REPO, SMALL, run_cli

SEARCH = ["-m", "hydra/sweeper=frontier", "search=encoder_width"]
NPZ = ["unit=encoder", "compiler.calibration.source=npz"]

#: (id, extra overrides, words the one error line must contain: the key and what is accepted)
CASES = [
    ("zero_channels", ["model.n_filters=0"], ["model.n_filters=0", "whole number >= 1"]),
    ("multirun_with_cfg", ["-m", "model.bn=8,16", "--cfg", "job"], ["-m/--multirun", "--cfg"]),
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
    ("unquoted_equals_in_value", ["compiler.cache_dir=/tmp/a=b"],
     ["'compiler.cache_dir=/tmp/a=b' is not a valid override", "quote"]),
    ("unclosed_bracket", ["model.bn=[1"], ["'model.bn=[1' is not a valid override", "key=value"]),
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
    ("search_file_not_yaml", ["-m", "--config-dir=cd", "search=bad"],
     ["search/bad.yaml line", "is not valid YAML"]),
    ("experiment_file_not_yaml", ["-m", "--config-dir=cd", "+experiment=bad"],
     ["experiment/bad.yaml line", "is not valid YAML"]),
    ("frontier_without_search", ["-m", "hydra/sweeper=frontier"],
     ["hydra/sweeper=frontier needs search=<name>", "encoder_width"]),
    ("replay_tsv_ragged", ["compiler=replay", "compiler.replay_tsv=ragged.tsv"],
     ["ragged.tsv line 3 has 2 fields where the header has 12"]),
    ("replay_tsv_nul", ["compiler=replay", "compiler.replay_tsv=nul.tsv"],
     ["nul.tsv line 2 holds a NUL byte"]),
    ("replay_tsv_binary", ["compiler=replay", "compiler.replay_tsv=binary.tsv"],
     ["compiler.replay_tsv='binary.tsv'", "hef_success column"]),
    ("replay_tsv_verdict_not_bool", ["compiler=replay", "compiler.replay_tsv=maybe.tsv"],
     ["hef_success='maybe' is not a verdict", "true or false"]),
    ("run_dir_under_a_file", ["hydra.run.dir=a_file/run"],
     ["hydra.run.dir='a_file/run'", "is a file"]),
]


#: the public table's header and a row of it, for the broken tables below
TSV_HEADER = ("case\tmodule\tlayers\tin_chan\tout_chan\tlatent_width\ttime_len\tmodel_config\t"
              "har_success\thef_success\texception\tfailure_head")
TSV_ROW = "c1\tplain_conv1x1\tconv1x1\t64\t64\t256\t256\tin_chan=64\ttrue\ttrue\t\t"
BAD_TABLES = {
    "ragged.tsv": f"{TSV_HEADER}\n{TSV_ROW}\nc2\tnorm\n".encode(),
    "nul.tsv": (TSV_HEADER + "\n" + TSV_ROW.replace("c1", "c\0") + "\n").encode(),
    "binary.tsv": bytes(range(256)) * 8,
    "maybe.tsv": f"{TSV_HEADER}\n{TSV_ROW[:-6]}maybe\t\t\n".encode(),
}


def _bad_files(where: Path) -> None:
    np.savez(where / "wrong_shape.npz", np.zeros((4, 1, 7, 3), np.float32))
    np.savez(where / "wrong_dtype.npz", np.array(["a", "b"]))
    (where / "garbage.npz").write_bytes(b"not a zip file at all")
    (where / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00not a wave")
    for name, data in BAD_TABLES.items():
        (where / name).write_bytes(data)
    for group in ("search", "experiment"):  # a bracket left open
        (where / "cd" / group).mkdir(parents=True)
        (where / "cd" / group / "bad.yaml").write_text("knobs:\n  model.bn: [16, 32\n")
    (where / "a_file").write_text("in the way of a folder")
    rate = 8000
    _wav(where / "short.wav", rate, np.zeros(10, np.int16))
    tone = (0.1 * np.sin(np.arange(rate) / 5)).astype(np.float32)
    tone[100] = np.nan
    _wav(where / "nan.wav", rate, tone)
    tone[100] = np.inf
    _wav(where / "inf.wav", rate, tone)


def _wav(path: Path, rate: int, samples: np.ndarray) -> None:
    from scipy.io import wavfile

    wavfile.write(path, rate, samples)


def _assert_rejected(done: subprocess.CompletedProcess, words: list[str], cwd: Path) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (cwd / "outputs").exists()
    assert not list(cwd.glob("multirun")) and not list(cwd.rglob("result.json"))


#: the cases the fast tier runs (one subprocess each); the slow tier runs every case
FAST_CASES = {"zero_channels", "unquoted_equals_in_value", "unknown_hw_group",
              "path_traversal_run_tag", "bad_point_in_grid", "huge_channels"}


@pytest.mark.parametrize("args,words", [
    pytest.param(*c[1:], id=c[0], marks=() if c[0] in FAST_CASES else pytest.mark.slow)
    for c in CASES])
def test_bad_override_or_file_is_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    _bad_files(tmp_path)
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags go before the overrides
    overrides = [a for a in args if not a.startswith("-")]
    done = run_cli([*flags, *SMALL, *overrides, "tracking=none"], cwd=tmp_path, timeout=120)
    _assert_rejected(done, words, tmp_path)


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(WAV_CASES) >= 25
    assert {c[0] for c in CASES} >= FAST_CASES


WAV_CASES = [
    ("unreadable_wav", "garbage.wav", ["garbage.wav", "expected a .wav file"]),
    ("missing_wav", "missing.wav", ["missing.wav", "expected a .wav file"]),
    ("ten_samples_wav", "short.wav", ["short.wav holds 10 samples", "at least 16"]),
    ("nan_wav", "nan.wav", ["nan.wav has 1 NaN or infinite sample(s)", "finite"]),
    ("inf_wav", "inf.wav", ["inf.wav has 1 NaN or infinite sample(s)", "finite"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("wav,words", [pytest.param(*c[1:], id=c[0]) for c in WAV_CASES])
def test_separate_rejects_an_unreadable_wav(tmp_path, wav, words):
    _bad_files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.separate", *SMALL,
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


@pytest.mark.parametrize("table", sorted(BAD_TABLES))
@pytest.mark.parametrize("command", ["agreement", pytest.param("fit_profile",
                                                               marks=pytest.mark.slow)])
def test_agreement_and_fit_profile_refuse_a_broken_table_in_one_line(tmp_path, capsys, command,
                                                                     table):
    import importlib

    _bad_files(tmp_path)
    main = importlib.import_module(f"tasnet_sweep.commands.{command}").main
    args = ["--tsv", str(tmp_path / table)]
    if command == "fit_profile":
        args += ["--out", str(tmp_path / "hw.yaml")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and table in err[0] and "expected" in err[0], err
    assert not (tmp_path / "hw.yaml").exists()


def test_an_audio_file_too_large_to_decode_is_refused_before_reading(tmp_path, monkeypatch):
    from tasnet_sweep.runtime import audio

    _bad_files(tmp_path)
    monkeypatch.setattr(audio, "MAX_AUDIO_BYTES", 1000)  # the nan.wav is 32 KB
    with pytest.raises(audio.AudioError, match=r"nan.wav is 0.0 GiB: expected at most"):
        audio.read_audio(tmp_path / "nan.wav")


def test_rebuild_summary_skips_a_result_json_of_another_shape(tmp_path, capsys):
    from tasnet_sweep.commands import rebuild_summary

    for name, text in {"0": '{"summary": {"run_dir": "0", "verdict": "pass"}}',
                       "1": "[1, 2, 3]", "2": '{"summary": "text"}', "3": "{"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(text)
    assert rebuild_summary.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 rows" in out and "(3 result.json without a trial's summary skipped)" in out
    rows = _rows(tmp_path / "summary.tsv")
    assert [r["run_dir"] for r in rows] == ["0"]


def test_a_trial_whose_summary_row_hit_a_full_disk_joins_with_the_next(tmp_path, monkeypatch,
                                                                        caplog):
    import errno

    from helpers import compose_cfg

    from tasnet_sweep import trial
    from tasnet_sweep.report import tsv

    sweep = tmp_path / "sweep"
    summary = sweep / "summary.tsv"
    real = tsv.append_row
    calls = []

    def full_disk_once(path, row, *args):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, row, *args)

    monkeypatch.setattr(trial, "append_row", full_disk_once)
    cfg = compose_cfg(*SMALL, "unit=encoder", "tracking=none")
    first = trial.run(cfg, sweep / "0", summary)
    assert (sweep / "0" / "result.json").is_file() and not summary.exists()
    assert "could not be updated (No space left on device)" in caplog.text
    assert "rebuild_summary" in caplog.text
    trial.run(compose_cfg(*SMALL, "unit=encoder", "tracking=none", "model.bn=8"),
              sweep / "1", summary)
    rows = _rows(summary)
    assert sorted(r["run_dir"] for r in rows) == [str(sweep / "0"), str(sweep / "1")]
    assert rows[0]["verdict"] == first.summary["verdict"]


@pytest.mark.parametrize("fault, words", [
    ("read_only", "is not writable (a read-only disk?)"),
    ("full", "MiB free: expected at least 64 MiB"),
])
def test_a_read_only_or_full_output_disk_is_named_before_hydra_writes(tmp_path, monkeypatch,
                                                                       fault, words):
    import os

    from tasnet_sweep import cli

    monkeypatch.chdir(tmp_path)
    if fault == "read_only":
        monkeypatch.setattr(os, "access", lambda path, mode: False)
    else:
        real = os.statvfs(tmp_path)
        monkeypatch.setattr(os, "statvfs", lambda path: type(real).__new__(
            type(real), (*real[:4], 10, *real[5:])))  # f_bavail: 10 blocks
    (problem,) = cli.output_problems(["-m", "hydra.sweep.dir=runs/${now:%H}"])
    assert problem.startswith("hydra.sweep.dir='runs/${now:%H}' is invalid") and words in problem
    assert cli.output_problems([]) == [problem.replace("hydra.sweep.dir='runs/${now:%H}'",
                                                       "hydra.run.dir='outputs/runs'")]
    assert not (tmp_path / "runs").exists()
