"""The download stage: fetch a dataset's source files, verify them, and extract archives safely.

Sources are tried form by form (see :mod:`registry`). Without a mirror, only forms whose files
all have a public URL are tried. With ``DAVE_DATA_MIRROR`` (a directory or an http(s) base URL),
files are taken from ``<mirror>/<dataset>/<path>``, where a mirror may also hold a file
compressed (``.gz``, ``.bz2``, ``.xz``) or split into parts (``<path>.part00``, ``.part01``, …,
possibly of a compressed file). Every file is verified against its pinned checksum before it is
moved into ``data/raw/<dataset>/``; a mismatch removes it and stops with the expected and actual
hash. Missing files move on to the next form; only when no form is complete does the stage fail,
listing what it tried.
"""

from __future__ import annotations

import bz2
import gzip
import http.client
import logging
import lzma
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .. import atomic, hashing
from ..errors import ArchiveError, ChecksumError, DownloadError, SourceUnavailableError
from .registry import DatasetSpec, Member, SourceFile, SourceForm, spec

log = logging.getLogger(__name__)

MIRROR_ENV = "DAVE_DATA_MIRROR"
COMPRESSIONS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    ".gz": lambda f: gzip.GzipFile(fileobj=f),
    ".bz2": lambda f: bz2.BZ2File(f),
    ".xz": lambda f: lzma.LZMAFile(f),
}
MAX_PARTS = 1000
DEFAULT_MAX_BYTES = 4 << 30  # no source file of ours is near 4 GiB
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 30.0  # seconds without progress before a connection counts as stalled
    retries: int = 4
    backoff: float = 1.0  # seconds, doubled after each failed attempt
    max_bytes: int = DEFAULT_MAX_BYTES


class _Missing(Exception):
    """The file is not at this location (404, no such path): try the next variant or form."""


class _Refused(DownloadError):
    """A refusal that another attempt cannot change (e.g. a mirror link leading outside)."""


# ---------------------------------------------------------------------------------------------
# Locations: a local directory or an http(s) base URL, behind one small interface.


class Location:
    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        raise NotImplementedError

    def describe(self, rel: str) -> str:
        raise NotImplementedError

    def list_parts(self, rel: str) -> list[str]:
        raise NotImplementedError


class DirLocation(Location):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise _Refused(f"mirror path {rel!r} escapes the mirror directory; refused")
        return p

    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        p = self._path(rel)
        if not p.is_file():
            raise _Missing(rel)
        return open(p, "rb"), p.stat().st_size

    def describe(self, rel: str) -> str:
        return str(self.root / rel)

    def list_parts(self, rel: str) -> list[str]:
        p = self._path(rel)
        parts = sorted(p.parent.glob(p.name + ".part*")) if p.parent.is_dir() else []
        return [str(PurePosixPath(rel).parent / q.name) for q in parts]


class HttpLocation(Location):
    def __init__(self, base: str, settings: FetchSettings) -> None:
        self.base = base.rstrip("/") + "/"
        self.settings = settings

    def url(self, rel: str) -> str:
        return urllib.parse.urljoin(self.base, urllib.parse.quote(rel))

    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        return _http_open(self.url(rel), self.settings)

    def describe(self, rel: str) -> str:
        return self.url(rel)

    def list_parts(self, rel: str) -> list[str]:
        parts = []
        for i in range(MAX_PARTS):
            candidate = f"{rel}.part{i:02d}"
            try:
                fh, _ = self.open(candidate)
            except _Missing:
                break
            fh.close()
            parts.append(candidate)
        return parts


class UrlLocation(Location):
    """The canonical public URL of one file (no mirror)."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings

    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        return _http_open(rel, self.settings)

    def describe(self, rel: str) -> str:
        return rel

    def list_parts(self, rel: str) -> list[str]:
        return []


def _http_open(url: str, settings: FetchSettings) -> tuple[IO[bytes], int | None]:
    req = urllib.request.Request(url, headers={"User-Agent": "dave-repro"})
    try:
        resp = urllib.request.urlopen(req, timeout=settings.timeout)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as exc:
        if exc.code in (403, 404, 410):
            raise _Missing(url) from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    length = resp.headers.get("Content-Length")
    return resp, int(length) if length and length.isdigit() else None


def mirror_location(settings: FetchSettings, mirror: str | None = None) -> Location | None:
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    if mirror.startswith(("http://", "https://")):
        return HttpLocation(mirror, settings)
    if mirror.startswith("file://"):
        mirror = urllib.parse.urlparse(mirror).path
    root = Path(mirror).expanduser()
    if not root.is_dir():
        raise DownloadError(f"{MIRROR_ENV}={mirror!r} is neither an http(s) URL nor a directory")
    return DirLocation(root)


# ---------------------------------------------------------------------------------------------
# Copying one stream to a temporary file, with a byte cap and truncation detection.


def _copy_stream(src: IO[bytes], dst: IO[bytes], name: str, expected: int | None, cap: int) -> int:
    n = 0
    # read1: whatever has arrived (up to a chunk), so a stall is reported after the bytes that
    # did arrive, and every byte counts against the cap as it comes
    read = getattr(src, "read1", src.read)
    while True:
        try:
            chunk = read(_CHUNK)
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as exc:
            raise DownloadError(f"{name}: connection broke after {n} bytes ({type(exc).__name__})") from None
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
            raise ArchiveError(f"{name}: corrupt or truncated data after {n} bytes ({exc})") from None
        if not chunk:
            break
        n += len(chunk)
        if n > cap:
            raise ArchiveError(f"{name}: more than {cap} bytes, far past its expected size; refused")
        dst.write(chunk)
    if expected is not None and n != expected:
        raise DownloadError(f"{name}: got {n} bytes, expected {expected} (truncated transfer)")
    return n


def _with_retries(fn: Callable[[], Any], what: str, settings: FetchSettings) -> Any:
    delay = settings.backoff
    for attempt in range(1, settings.retries + 1):
        try:
            return fn()
        except (_Missing, ChecksumError, ArchiveError, _Refused):
            raise
        except (DownloadError, OSError, socket.timeout) as exc:
            if attempt == settings.retries:
                raise DownloadError(f"{what}: failed after {attempt} attempts: {exc}") from None
            log.warning("%s: attempt %d failed (%s); retrying in %.1fs", what, attempt, exc, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _variants(rel: str) -> Iterator[tuple[str, str | None, bool]]:
    """(path, compression suffix, split) in the order a mirror is searched."""
    yield rel, None, False
    for suffix in COMPRESSIONS:
        yield rel + suffix, suffix, False
    yield rel, None, True
    for suffix in COMPRESSIONS:
        yield rel + suffix, suffix, True


def fetch_file(
    loc: Location, rel: str, dest: Path, settings: FetchSettings, size: int | None
) -> str:
    """Fetch ``rel`` (in any accepted variant) into ``dest``; return where it came from."""
    cap = min(settings.max_bytes, 2 * size + (1 << 20)) if size else settings.max_bytes
    for path, compression, split in _variants(rel):
        parts = loc.list_parts(path) if split else [path]
        if not parts:
            continue

        def attempt(parts: list[str] = parts, compression: str | None = compression) -> None:
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=atomic.TMP_PREFIX) as td:
                joined = Path(td) / "joined"
                with open(joined, "wb") as out:
                    for part in parts:
                        fh, length = loc.open(part)
                        with fh:
                            _copy_stream(fh, out, loc.describe(part), length, settings.max_bytes)
                with atomic.atomic_path(dest) as tmp, open(tmp, "wb") as out:
                    if compression is None:
                        with open(joined, "rb") as src:
                            _copy_stream(src, out, loc.describe(parts[0]), None, cap)
                    else:
                        with open(joined, "rb") as raw, COMPRESSIONS[compression](raw) as src:
                            _copy_stream(src, out, loc.describe(parts[0]), None, cap)

        try:
            _with_retries(attempt, loc.describe(path), settings)
        except _Missing:
            continue
        return loc.describe(parts[0]) + (f" (+{len(parts) - 1} parts)" if len(parts) > 1 else "")
    raise _Missing(rel)


# ---------------------------------------------------------------------------------------------
# Archives.


def extract_members(archive: Path, members: tuple[Member, ...], dest_dir: Path, settings: FetchSettings,
                    name: str | None = None) -> None:
    """Take the named members out of a zip, refusing links, path escapes and size bombs.

    ``name`` is the archive's name in messages (it is fetched under a temporary one).
    """
    label = name or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{label}: not a readable zip archive ({exc})") from None
    with zf:
        infos = {}
        for info in zf.infolist():
            _check_member_name(label, info)
            infos[info.filename] = info
        for m in members:
            info = infos.get(m.path)
            if info is None:
                raise ArchiveError(f"{label}: member {m.path!r} not found")
            cap = min(settings.max_bytes, 2 * m.size + (1 << 20)) if m.size else settings.max_bytes
            if info.file_size > cap:
                raise ArchiveError(f"{label}: member {m.path!r} declares {info.file_size} bytes, "
                                   f"far past its expected size; refused")
            target = dest_dir / m.name
            with atomic.atomic_path(target) as tmp, zf.open(info) as src, open(tmp, "wb") as out:
                _copy_stream(src, out, f"{label}:{m.path}", None, cap)


def _check_member_name(archive: str, info: zipfile.ZipInfo) -> None:
    name = info.filename
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r} would escape the target directory; refused")
    mode = (info.external_attr >> 16) & 0o170000
    if mode == 0o120000:
        raise ArchiveError(f"{archive}: member {name!r} is a symbolic link; refused")


# ---------------------------------------------------------------------------------------------
# The stage.


@dataclass
class FetchResult:
    dataset: str
    form: str
    files: dict[str, dict[str, str]]  # local name -> {"origin", "checksum", "sha256"}


def _pinned(ds: str, name: str, registry_checksum: str | None, overrides: dict[str, str]) -> str | None:
    return overrides.get(f"{ds}/{name}", registry_checksum)


def download(
    dataset: str,
    out_dir: Path,
    *,
    checksums: dict[str, str] | None = None,
    mirror: str | None = None,
    settings: FetchSettings | None = None,
) -> FetchResult:
    """Fetch ``dataset`` into ``out_dir``, which is replaced as a whole only on success.

    Files are staged in a temporary sibling directory; ``out_dir`` afterwards holds exactly the
    verified files of one form, or (on failure) whatever it held before.
    """
    settings = settings or FetchSettings()
    ds: DatasetSpec = spec(dataset)
    overrides = checksums or {}
    mloc = mirror_location(settings, mirror)
    tried: list[str] = []
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_stale_temporaries(out_dir.parent, out_dir.name)
    for form in ds.forms:
        if mloc is None and any(f.url is None for f in form.files):
            tried.append(f"{form.name}: no public URL for "
                         f"{', '.join(f.name for f in form.files if f.url is None)} (mirror only)")
            continue
        try:
            with atomic.atomic_dir(out_dir) as stage:
                files: dict[str, dict[str, str]] = {}
                for f in form.files:
                    files.update(_fetch_one(ds, f, stage, out_dir, mloc, settings, overrides))
        except _Missing as exc:
            where = mloc.describe(f"{dataset}/{exc.args[0]}") if mloc else str(exc.args[0])
            tried.append(f"{form.name}: {where} not found")
            continue
        return FetchResult(dataset, form.name, files)
    source = f"mirror {mloc.describe(dataset)}" if mloc else "the public URLs"
    raise SourceUnavailableError(
        f"{dataset}: no complete source found in {source}. Tried:\n"
        + "\n".join(f"  - {t}" for t in tried)
    )


def _fetch_one(
    ds: DatasetSpec,
    f: SourceFile,
    stage: Path,
    previous: Path,
    mloc: Location | None,
    settings: FetchSettings,
    overrides: dict[str, str],
) -> dict[str, dict[str, str]]:
    outputs = f.outputs()
    # Reuse verified files of an earlier run: a content check, never file times.
    if all((previous / o).is_file() for o in outputs) and _already_verified(ds, f, previous, overrides):
        for o in outputs:
            shutil.copyfile(previous / o, stage / o)
        return {o: _record(stage / o, "(kept from the previous run, re-verified)",
                           _member_pin(ds, f, o, overrides)) for o in outputs}
    loc: Location
    if mloc is not None:
        loc, rel = mloc, f"{ds.name}/{f.mirror_path}"
    else:
        loc, rel = UrlLocation(settings), f.url or ""
    target = stage / (f.name if not f.is_archive else f"{atomic.TMP_PREFIX}{f.name}")
    origin = fetch_file(loc, rel, target, settings, f.size)
    pinned = _pinned(ds.name, f.name, f.checksum, overrides)
    try:
        _verify_pinned(target, pinned, f"{ds.name}/{f.name}")
        if not f.is_archive:
            return {f.name: _record(target, origin, pinned)}
        extract_members(target, f.members, stage, settings, f.name)
    finally:
        if f.is_archive:
            target.unlink(missing_ok=True)
    result = {}
    for m in f.members:
        mpin = _pinned(ds.name, m.name, m.checksum, overrides)
        if mpin is not None:
            hashing.verify(stage / m.name, mpin, f"{ds.name}/{m.name} (from {f.name})")
        result[m.name] = _record(stage / m.name, f"{origin}:{m.path}", mpin)
    return result


def _member_pin(ds: DatasetSpec, f: SourceFile, name: str, overrides: dict[str, str]) -> str | None:
    if not f.is_archive:
        return _pinned(ds.name, f.name, f.checksum, overrides)
    m = next(m for m in f.members if m.name == name)
    return _pinned(ds.name, m.name, m.checksum, overrides)


def _already_verified(ds: DatasetSpec, f: SourceFile, out_dir: Path, overrides: dict[str, str]) -> bool:
    for o in f.outputs():
        pin = _member_pin(ds, f, o, overrides)
        if pin is None:
            return False
        algorithm, expected = hashing.parse_checksum(pin)
        if hashing.file_digest(out_dir / o, algorithm) != expected:
            return False
    return True


def _verify_pinned(path: Path, pinned: str | None, name: str) -> None:
    if pinned is None:
        actual = hashing.sha256_file(path)
        path.unlink(missing_ok=True)
        raise ChecksumError(
            name,
            "a pinned checksum (none is published for this file; after verifying the file, pin "
            f"it in params.yaml as data.checksums['{name}'])",
            f"sha256:{actual}",
        )
    hashing.verify(path, pinned, name)


def _record(path: Path, origin: str, pinned: str | None) -> dict[str, str]:
    return {"origin": origin, "checksum": pinned or "", "sha256": hashing.sha256_file(path)}
