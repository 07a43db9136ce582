import multiprocessing as mp

from tasnet_sweep.atomic import write_json
from tasnet_sweep.report.tsv import SUMMARY_COLUMNS, append_row, read_rows, rebuild


def _append_many(path, worker, n):
    for i in range(n):
        append_row(path, {"run_tag": f"w{worker}_{i}", "run_dir": f"/r/{worker}/{i}",
                          "params": i, "failure_head": "tab\there\nnewline"})


def test_concurrent_writers_never_lose_or_interleave_rows(tmp_path):
    path = tmp_path / "summary.tsv"
    procs = [mp.Process(target=_append_many, args=(path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    rows = read_rows(path)
    assert len(rows) == 60
    assert {r["run_tag"] for r in rows} == {f"w{w}_{i}" for w in range(4) for i in range(15)}
    assert all(list(r) == list(SUMMARY_COLUMNS) for r in rows)
    assert all(r["failure_head"] == "tab here newline" for r in rows)
    assert not list(tmp_path.glob("*.tmp"))


def test_rerun_of_the_same_run_dir_replaces_its_row(tmp_path):
    path = tmp_path / "summary.tsv"
    append_row(path, {"run_tag": "a", "run_dir": "/x", "params": 1})
    append_row(path, {"run_tag": "a", "run_dir": "/x", "params": 2})
    assert [r["params"] for r in read_rows(path)] == ["2"]


def test_rebuild_regenerates_the_summary_from_results_and_skips_broken_ones(tmp_path):
    for i in range(3):
        write_json(tmp_path / f"job{i}" / "result.json",
                   {"summary": {"run_tag": f"t{i}", "run_dir": str(tmp_path / f"job{i}")}})
    (tmp_path / "job9").mkdir()
    (tmp_path / "job9" / "result.json").write_text('{"summary": {"run_t')  # cut off mid-write
    rows = read_rows(rebuild(tmp_path)[0])
    assert [r["run_tag"] for r in rows] == ["t0", "t1", "t2"]


def test_a_torn_or_garbage_row_is_dropped_and_a_rerun_replaces_its_row(tmp_path):
    path = tmp_path / "summary.tsv"
    append_row(path, {"run_tag": "a", "run_dir": "/x", "verdict": "pass", "params": 1})
    with open(path, "a") as f:
        f.write("b\tfull\t3\t")  # a writer cut off mid-row
    append_row(path, {"run_tag": "b", "run_dir": "/y", "verdict": "fail", "params": 2})
    append_row(path, {"run_tag": "b", "run_dir": "/y", "verdict": "pass", "params": 2})
    rows = read_rows(path)
    assert [(r["run_tag"], r["verdict"]) for r in rows] == [("a", "pass"), ("b", "pass")]
    assert all(len(r) == len(SUMMARY_COLUMNS) and None not in r for r in rows)


def test_a_carriage_return_in_a_cell_does_not_split_the_row(tmp_path):
    path = tmp_path / "summary.tsv"
    append_row(path, {"run_tag": "a", "run_dir": "/x", "failure_head": "line one\rline two"})
    append_row(path, {"run_tag": "b", "run_dir": "/y"})
    rows = read_rows(path)
    assert [r["run_tag"] for r in rows] == ["a", "b"]
    assert rows[0]["failure_head"] == "line one line two"


def test_a_file_that_is_not_a_summary_is_left_alone_and_the_row_goes_beside_it(tmp_path,
                                                                                caplog):
    for name, content in (("binary.tsv", b"\x00\xffPNG\x00"),
                          ("table.tsv", b"name\tscore\nx\t1\n")):
        path = tmp_path / name
        path.write_bytes(content)
        written = append_row(path, {"run_tag": "a", "run_dir": "/x", "verdict": "pass"})
        assert path.read_bytes() == content  # not touched
        assert written == path.with_name(path.stem + ".tasnet_sweep.tsv")
        assert [r["run_tag"] for r in read_rows(written)] == ["a"]
        assert str(written) in caplog.text


def test_files_written_atomically_get_the_mode_a_plain_open_would(tmp_path):
    import os
    import stat

    from tasnet_sweep.atomic import write_text

    mask = os.umask(0o027)
    try:
        import importlib

        from tasnet_sweep import atomic

        importlib.reload(atomic)  # the mask is read once, when the module loads
        path = atomic.write_text(tmp_path / "result.json", "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(mask)
        importlib.reload(atomic)
    assert stat.S_IMODE(write_text(tmp_path / "b.json", "{}").stat().st_mode) == 0o666 & ~mask
