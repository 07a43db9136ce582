"""Security basics, checked on the source: no shell strings, no unsafe deserialisation of user
files, and names that become paths or compiler names are sanitised first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO, compose_cfg

from tasnet_sweep.checks import validate
from tasnet_sweep.trial import _net_name

SOURCES = sorted([*(REPO / "tasnet_sweep").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")])


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    kw = next((k for k in call.keywords if k.arg == name), None)
    return None if kw is None else (kw.value.value if isinstance(kw.value, ast.Constant)
                                    else "<expr>")


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve")
                   for n in names):
                found.append(f"{path.name}:{node.lineno} imports a pickle-like module")
    for call in _calls(tree):
        name = _name(call.func)
        where = f"{path.name}:{call.lineno} {name}"
        bare = isinstance(call.func, ast.Name)  # eval(...), not module.eval()
        if name in ("os.system", "os.popen", "subprocess.getoutput",
                    "subprocess.getstatusoutput") or bare and name in ("eval", "exec"):
            found.append(f"{where}: runs a string")
        if _kw(call, "shell") not in (None, False):
            found.append(f"{where}: shell={_kw(call, 'shell')}")
        if name.endswith("torch.load") and _kw(call, "weights_only") is not True:
            found.append(f"{where}: torch.load without weights_only=True")
        if name in ("np.load", "numpy.load") and _kw(call, "allow_pickle") not in (None, False):
            found.append(f"{where}: np.load with allow_pickle")
        if name.startswith(("yaml.load", "yaml.unsafe_load")) and \
                "Safe" not in ast.unparse(call):
            found.append(f"{where}: yaml.load without SafeLoader")
    return found


def test_the_scan_sees_the_package_and_finds_what_it_looks_for(tmp_path):
    assert len(SOURCES) > 40
    probe = tmp_path / "probe.py"
    probe.write_text("import os, pickle\nos.system('x')\ntorch.load(p)\n"
                     "subprocess.run(c, shell=True)\nmodel.eval()\n")
    assert len(_findings(probe)) == 4  # the scanner itself can fail (and .eval() is fine)


def test_no_shell_strings_and_no_unsafe_deserialisation_in_the_package():
    found = [f for path in SOURCES for f in _findings(path)]
    assert found == []


def test_every_torch_load_says_weights_only():
    loads = [(p, c) for p in SOURCES for c in _calls(ast.parse(p.read_text()))
             if _name(c.func).endswith("torch.load")]
    assert loads  # checkpoints are read somewhere; each one safely
    assert all(_kw(c, "weights_only") is True for _, c in loads)


@pytest.mark.parametrize("tag", ["../up", "a/b", "/abs", ".hidden", "x" * 200, "a\\b", "",
                                 "a b", "a;rm -rf", "$(id)", "a\nb"])
def test_unsafe_run_tags_are_rejected(tag):
    """The tag names the run directory (``<time>_<run_tag>``), so it must stay one path part."""
    cfg = compose_cfg()
    cfg.run_tag = tag
    assert any(p.startswith("run_tag=") for p in validate(cfg))


@pytest.mark.parametrize("name", ["../encoder", "encoder/../../x", "/etc/passwd", "full;id"])
def test_unknown_unit_names_never_reach_a_path(name):
    cfg = compose_cfg("run_tag=t")  # the default tag embeds the unit name: check the unit alone
    cfg.unit.name = name
    assert any(p.startswith("unit.name=") for p in validate(cfg))


@pytest.mark.parametrize("tag", ["enc_N64=1,2+x-y.z", "a..b", "run"])
def test_net_names_given_to_the_compiler_are_letters_digits_and_underscores(tag):
    net = _net_name(tag)
    assert net and len(net) <= 64 and all(c.isalnum() or c == "_" for c in net)
