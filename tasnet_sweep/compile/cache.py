"""Content-addressed cache of compile outcomes, and of whole trials.

Two levels, both verified on every read:
- a *compile entry* is keyed by the ONNX bytes plus everything that can change the answer
  (backend, its version and settings, the hw profile).  Two configs that build the same graph
  share it.  It holds the outcome, the ONNX file and the backend's artifacts (HAR/HEF).
- a *trial entry* is keyed by the recipe: the resolved model/unit/export/tiling config, the
  compile key inputs and the package/torch versions.  A re-run of the same trial is answered from
  it without building or exporting anything (no torch import at all).

Every entry has a manifest of sha256 digests; an entry whose files do not match it (a crash mid-
write, a bad disk, a hand edit) is reported, removed and recomputed, never trusted.  The manifest
is signed with an HMAC under the cache directory's own key (``.cache_key``, created once, mode
0600), so an entry edited with its digests recomputed, or written by someone who cannot read the
key (another user of a shared folder), fails the check the same way.  A per-key lock is held
while an entry is computed, so parallel workers never compile one key twice at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..atomic import locked, write_bytes, write_json
from .base import CompileOutcome

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
KEY_FILE = ".cache_key"
#: cache root -> its key (None: the key cannot be read, so the cache is not used)
_SECRETS: dict[Path, bytes | None] = {}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_of(*parts) -> str:
    """A stable key from JSON-able parts (dict key order does not matter)."""
    return digest(json.dumps(parts, sort_keys=True, default=str).encode())


class CorruptEntry(Exception):
    pass


def cache_secret(root: str | os.PathLike) -> bytes | None:
    """The cache directory's HMAC key, created on first use (mode 0600, published by a hard
    link so a reader never sees it half-written).  None, with a warning, when it exists but
    cannot be read: the folder is someone else's cache, and this process goes without one."""
    import secrets
    import tempfile

    root = Path(root).resolve()
    if root in _SECRETS:
        return _SECRETS[root]
    path = root / KEY_FILE
    secret: bytes | None = None
    try:
        if not path.exists():
            root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=root, prefix=".cache_key.")  # mode 0600
            try:
                os.write(fd, secrets.token_bytes(32))
                os.fsync(fd)
                os.close(fd)
                try:
                    os.link(tmp, path)
                except FileExistsError:  # another process published its key first
                    pass
            finally:
                os.unlink(tmp)
        secret = path.read_bytes()
        if len(secret) < 16:
            raise ValueError(f"{len(secret)} bytes")
    except (OSError, ValueError) as exc:
        log.warning("the compile cache's key %s cannot be used (%s): running without the cache "
                    "(set compiler.cache_dir to a folder of your own)", path, exc)
        secret = None
    _SECRETS[root] = secret
    return secret


def _signature(secret: bytes, key: str, files: dict) -> str:
    text = json.dumps({"key": key, "files": files}, sort_keys=True).encode()
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


class ContentStore:
    """Directories of files under ``root/<kind>/<key[:2]>/<key>/`` with a digest manifest."""

    def __init__(self, root: str | os.PathLike, kind: str, required: tuple[str, ...] = ()):
        self.root = Path(root) / kind
        self.required = required  # files every entry of this kind must list
        self.secret = cache_secret(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    @contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold the key's lock: one worker computes an entry while others wait for it."""
        with locked(self.path(key).with_suffix(".claim")):
            yield

    def get(self, key: str) -> Path | None:
        """The entry's directory if it exists and verifies; a corrupted entry is removed."""
        if self.secret is None:
            return None
        entry = self.path(key)
        if entry.exists() and not entry.is_dir():  # something else sits where the entry goes
            log.warning("cache entry %s is not a folder: removing it and recomputing", entry)
            entry.unlink()
            return None
        manifest = entry / MANIFEST
        if not manifest.exists():
            return None
        try:
            signed = json.loads(manifest.read_text())
            files = signed["files"]
            if not hmac.compare_digest(str(signed.get("mac", "")),
                                       _signature(self.secret, key, files)):
                raise CorruptEntry("its manifest is not signed with this cache's key")
            missing = [name for name in self.required if name not in files]
            if missing:
                raise CorruptEntry(f"its manifest does not list {', '.join(missing)}")
            for name, expected in files.items():
                if not (entry / name).is_file() or file_digest(entry / name) != expected:
                    raise CorruptEntry(f"{name} does not match its digest")
        except (ValueError, KeyError, TypeError, CorruptEntry) as exc:
            log.warning("cache entry %s is corrupted (%s): recomputing it", entry, exc)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return entry

    def put(self, key: str, blobs: dict[str, bytes], files: dict[str, Path],
            known: dict[str, str] | None = None) -> Path:
        """Store ``blobs`` (name -> bytes) and ``files`` (name -> path); manifest last.

        Files are hard-linked where the filesystem allows (one copy on disk for the run folder
        and the cache: every writer here replaces a file rather than changing it in place, and
        the digests would catch one that did), copied otherwise.  ``known``: digests the caller
        took of a file's bytes as it wrote them (the exported ONNX), so it is not read again; a
        file changed since fails the manifest check on the next read, as any other would."""
        entry = self.path(key)
        if self.secret is None:  # no key of ours: nothing is kept
            return entry
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.exists():
            entry.unlink()
        entry.mkdir(parents=True)
        digests = {}
        for name, data in blobs.items():
            write_bytes(entry / name, data)
            digests[name] = digest(data)
        for name, src in files.items():
            dst = entry / name
            restore_file(Path(src), dst)  # a hard link, else a copy
            digests[name] = (known or {}).get(name) or file_digest(dst)
        write_json(entry / MANIFEST, {"files": digests,  # the entry exists once this exists
                                      "mac": _signature(self.secret, key, digests)})
        return entry


def restore_file(src: Path, dst: Path) -> Path:
    """Place a cached file at ``dst`` (a hard link where possible, else a copy)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


REQUEST_FILE = "request.json"


def _rename_net(outcome, old: str | None, new: str) -> None:
    """``<old>/<layer>`` -> ``<new>/<layer>`` in the failure and the stage logs."""
    if not old or old == new:
        return

    def fix(text):
        return text.replace(f"{old}/", f"{new}/") if isinstance(text, str) else text

    if outcome.failure is not None:
        outcome.failure.layer = fix(outcome.failure.layer)
        outcome.failure.message = fix(outcome.failure.message)
    for stage in outcome.stages:
        stage.log = fix(stage.log)


class CompileCache:
    """Answers a compile request from an earlier identical one, or runs the backend and
    stores it."""

    #: families that say more about the machine at the time than about the graph: not cached
    TRANSIENT = frozenset({"crash", "timeout", "missing_sdk"})

    def __init__(self, root: str | os.PathLike):
        self.store = ContentStore(root, "compile", required=("outcome.json",))

    @staticmethod
    def key(onnx_digest: str, backend, hw: dict) -> str:
        return key_of("compile", onnx_digest, backend.name, backend.version(),
                      backend.cache_identity(), hw)

    def compile(self, backend, request, hw: dict, onnx_digest: str | None = None):
        """(outcome, key) for ``request``; ``outcome.cache_hit`` tells whether it was stored.
        ``onnx_digest``: the sha256 of the request's ONNX when the caller has it (taken from
        the bytes it wrote), else the file is read for it."""
        onnx_digest = onnx_digest or file_digest(request.onnx_path)
        key = self.key(onnx_digest, backend, hw)
        with self.store.claim(key):
            entry = self.store.get(key)
            if entry is not None:
                return self.restore(entry, request.work_dir, net_name=request.net_name), key
            outcome = backend.compile(request)
            if outcome.failure is None or outcome.failure.family not in self.TRANSIENT:
                self._put(key, outcome, request, onnx_digest)
        assert isinstance(outcome, CompileOutcome)
        return outcome, key

    def _put(self, key: str, outcome, request, onnx_digest: str) -> None:
        files = {"unit.onnx": Path(request.onnx_path)}
        for stage in outcome.stages:
            if stage.artifact and Path(stage.artifact).is_file():
                files[f"artifacts/{Path(stage.artifact).name}"] = Path(stage.artifact)
        if outcome.report_path and Path(outcome.report_path).is_file():
            files[f"artifacts/{Path(outcome.report_path).name}"] = Path(outcome.report_path)
        blob = json.dumps(outcome.as_dict(), indent=1, default=str).encode()
        asked = json.dumps({"net_name": request.net_name}).encode()
        self.store.put(key, {"outcome.json": blob, REQUEST_FILE: asked}, files,
                       known={"unit.onnx": onnx_digest})

    def restore(self, entry: Path, work_dir: Path, onnx_name: str | None = None,
                net_name: str | None = None):
        """The stored outcome with its artifacts placed in ``work_dir`` (paths rewritten).

        The same graph compiled under another net name (another trial's run tag) names its
        layers ``<that net>/<layer>``; with ``net_name`` they are renamed to this request's."""
        outcome = CompileOutcome.from_dict(json.loads((entry / "outcome.json").read_text()))
        stored = entry / REQUEST_FILE
        if net_name and stored.is_file():
            _rename_net(outcome, json.loads(stored.read_text()).get("net_name"), net_name)
        work_dir = Path(work_dir)

        def place(path: str | None) -> str | None:
            if not path:
                return path
            src = entry / "artifacts" / Path(path).name
            return str(restore_file(src, work_dir / src.name)) if src.is_file() else path

        for stage in outcome.stages:
            stage.artifact = place(stage.artifact)
        outcome.report_path = place(outcome.report_path)
        if onnx_name is not None:
            restore_file(entry / "unit.onnx", work_dir / onnx_name)
        outcome.cache_hit = True
        return outcome


class TrialCache:
    """Whole-trial records keyed by recipe; a hit needs a valid compile entry as well."""

    def __init__(self, root: str | os.PathLike):
        self.store = ContentStore(root, "trial", required=("record.json",))

    def get(self, key: str) -> dict | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        try:
            record = json.loads((entry / "record.json").read_text())
            if not isinstance(record, dict) or not record.get("compile_key"):
                raise CorruptEntry("its record names no compile entry")
        except (ValueError, CorruptEntry) as exc:
            log.warning("cache entry %s is corrupted (%s): recomputing it", entry, exc)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return record

    def put(self, key: str, record: dict) -> None:
        blob = json.dumps(record, indent=1, default=str).encode()
        self.store.put(key, {"record.json": blob}, {})


class CachedBackend:
    """A backend seen through the compile cache (for callers that compile many units)."""

    def __init__(self, backend, cache: CompileCache, hw: dict):
        self.backend, self.cache, self.hw = backend, cache, hw
        self.name, self.evidence = backend.name, backend.evidence
        self.writes_hef = getattr(backend, "writes_hef", False)

    def compile(self, request):
        return self.cache.compile(self.backend, request, self.hw)[0]
