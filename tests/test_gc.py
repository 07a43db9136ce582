"""One copy on disk (cache entries hard-link the run's files) and
``python -m tasnet_sweep.commands.gc`` removing what no summary lists and no kept run uses."""

from __future__ import annotations

import shutil

from helpers import SMALL, compose_cfg

from tasnet_sweep import trial
from tasnet_sweep.commands import gc


def _trial(outputs, sweep, name, width, summary=True):
    cfg = compose_cfg(*SMALL, "unit=encoder", f"model.n_filters={width}", "tracking=none",
                      f"compiler.cache_dir={outputs / 'cache'}")
    run = outputs / "multirun" / sweep / name
    return trial.run(cfg, run, run.parent / "summary.tsv" if summary else None), run


def test_the_cache_shares_the_runs_files_and_gc_frees_what_nothing_uses(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    kept, kept_dir = _trial(outputs, "s", "0_kept", 16)
    _, gone_dir = _trial(outputs, "s", "1_deleted", 24)
    _, orphan_dir = _trial(outputs, "s", "2_orphan", 32, summary=False)  # cut before its row
    onnx = kept_dir / "encoder.onnx"
    assert onnx.stat().st_nlink == 2  # the run's ONNX and the cache's are one file
    shutil.rmtree(gone_dir)  # the user deleted a run: its cache entries are unused now

    assert gc.main(["--outputs", str(outputs), "--dry-run"]) == 0
    listed = capsys.readouterr().out
    # the orphan run, and the compile and trial entries of the deleted and the orphan run
    assert f"would remove {orphan_dir}" in listed and "5 item(s)" in listed.splitlines()[-1]
    assert orphan_dir.exists() and len(list((outputs / "cache" / "compile").glob("*/*/"))) == 3

    assert gc.main(["--outputs", str(outputs)]) == 0
    assert not orphan_dir.exists() and kept_dir.exists()
    assert len([p for p in (outputs / "cache" / "compile").glob("*/*") if p.is_dir()]) == 1
    assert len([p for p in (outputs / "cache" / "trial").glob("*/*") if p.is_dir()]) == 1
    again, _ = _trial(outputs, "s", "3_again", 16)  # the kept trial still comes from the cache
    assert again.compile.cache_hit
    assert gc.main(["--outputs", str(tmp_path / "nope")]) == 2
