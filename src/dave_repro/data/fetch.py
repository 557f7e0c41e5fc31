"""The download stage: fetch a dataset's source files, verify them, and extract archives safely.

Sources are tried form by form (see :mod:`registry`). Without a mirror, only forms whose files
all have a public URL are tried, each at exactly that URL. With ``DAVE_DATA_MIRROR`` (a directory
or an http(s) base URL), files are taken from ``<mirror>/<dataset>/<path>`` only (the public URLs
are then not tried), where a mirror may also hold a file compressed (``.gz``, ``.bz2``, ``.xz``) or
split into parts (``<path>.part00``, ``.part01``, …, possibly of a compressed file).

Every file is verified before it is moved into ``data/raw/<dataset>/``: against the checksum
pinned in ``params.yaml`` (``data.checksums``) if there is one, else the registry's published one,
else the one recorded in the checksum lock (``checksums.lock.json``). A file with none of these is
trusted on first use: its sha256 is recorded in the lock (with a warning saying so), and every
later download of it is verified against that entry. ``DAVE_REQUIRE_PINNED_CHECKSUMS=1`` refuses
such a file instead. A mismatch removes the file and stops with the expected and actual hash.
Missing files move on to the next form; only when no form is complete does the stage fail,
naming every path or URL it looked at.
"""

from __future__ import annotations

import bz2
import gzip
import http.client
import json
import logging
import lzma
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .. import atomic, hashing
from ..errors import (
    ArchiveError,
    ChecksumError,
    DataFormatError,
    DownloadError,
    SourceUnavailableError,
)
from .registry import DatasetSpec, Member, SourceFile, spec

log = logging.getLogger(__name__)

MIRROR_ENV = "DAVE_DATA_MIRROR"
STRICT_ENV = "DAVE_REQUIRE_PINNED_CHECKSUMS"  # "1": refuse unpinned files, never trust on first use
# The checksum lock, relative to the workspace root (where params.yaml is and `dave` runs).
LOCK_FILE = Path("checksums.lock.json")
LOCK_VERSION = 1
LOCK_ABOUT = (
    "sha256 of source files that publish no checksum, recorded by `dave download` on their "
    "first download (trust on first use). Review and commit this file: every later download of "
    "a file listed here is verified against it. A pin in params.yaml (data.checksums) takes "
    "precedence; files with a published checksum are never listed. See docs/data.md."
)
COMPRESSIONS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    ".gz": lambda f: gzip.GzipFile(fileobj=f),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}
MAX_PARTS = 1000
DEFAULT_MAX_BYTES = 4 << 30  # no source file of ours is near 4 GiB
_CHUNK = 1 << 20
KEPT = "(kept from the previous run, re-verified)"
_urlopen = urllib.request.urlopen  # the one opener every HTTP request goes through


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 30.0  # seconds without progress before a connection counts as stalled
    retries: int = 4
    backoff: float = 1.0  # seconds, doubled after each failed attempt
    max_bytes: int = DEFAULT_MAX_BYTES


class _Missing(Exception):
    """The file is not at this location (404, no such path): try the next variant or form.

    ``where`` is the location exactly as looked up (a path or URL), ``why`` what was found there.
    """

    def __init__(self, where: str, why: str) -> None:
        super().__init__(where, why)
        self.where, self.why = where, why


class _NotFound(Exception):
    """No variant of a source file was found; ``looked``: every (location, reason) tried."""

    def __init__(self, looked: list[tuple[str, str]]) -> None:
        super().__init__(looked)
        self.looked = looked


class _Refused(DownloadError):
    """A refusal that another attempt cannot change (e.g. a mirror link leading outside)."""


# ---------------------------------------------------------------------------------------------
# Locations: a local directory or an http(s) base URL, behind one small interface.


class Location:
    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        """Open ``rel``; raise :class:`_Missing` (naming ``describe(rel)``) when it is not there."""
        raise NotImplementedError

    def describe(self, rel: str) -> str:
        """``rel`` exactly as it is looked up: a path or a URL."""
        raise NotImplementedError

    def list_parts(self, rel: str) -> list[str]:
        """The parts ``rel.part00``, ``rel.part01``, … in order; :class:`_Missing` if none."""
        raise NotImplementedError

    def variants(self, rel: str) -> Iterator[tuple[str, str | None, bool]]:
        """(path, compression suffix, split) in the order a mirror is searched."""
        yield rel, None, False
        for suffix in COMPRESSIONS:
            yield rel + suffix, suffix, False
        yield rel, None, True
        for suffix in COMPRESSIONS:
            yield rel + suffix, suffix, True


class DirLocation(Location):
    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return f"the mirror directory {self.root}"

    def _path(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise _Refused(f"mirror path {rel!r} escapes the mirror directory; refused")
        return p

    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        p = self._path(rel)
        if not p.is_file():
            why = "not a regular file" if p.exists() else "no such file"
            raise _Missing(self.describe(rel), why)
        return open(p, "rb"), p.stat().st_size

    def describe(self, rel: str) -> str:
        return str(self.root / rel)

    def list_parts(self, rel: str) -> list[str]:
        p = self._path(rel)
        parts = sorted(p.parent.glob(p.name + ".part*")) if p.parent.is_dir() else []
        if not parts:
            raise _Missing(self.describe(f"{rel}.part00"), "no such file")
        return [str(PurePosixPath(rel).parent / q.name) for q in parts]


class HttpLocation(Location):
    def __init__(self, base: str, settings: FetchSettings) -> None:
        self.base = base.rstrip("/") + "/"
        self.settings = settings

    def __str__(self) -> str:
        return f"the mirror {self.base}"

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
                if not parts:
                    raise
                break
            fh.close()
            parts.append(candidate)
        return parts


class UrlLocation(Location):
    """The canonical public URL of one file (no mirror): looked up at exactly that URL."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings

    def __str__(self) -> str:
        return "the public URLs"

    def open(self, rel: str) -> tuple[IO[bytes], int | None]:
        return _http_open(rel, self.settings)

    def describe(self, rel: str) -> str:
        return rel

    def list_parts(self, rel: str) -> list[str]:
        raise _Missing(rel, "public URLs are never split")

    def variants(self, rel: str) -> Iterator[tuple[str, str | None, bool]]:
        yield rel, None, False  # compressed or split copies are a mirror's feature only


def _http_open(url: str, settings: FetchSettings) -> tuple[IO[bytes], int | None]:
    req = urllib.request.Request(url, headers={"User-Agent": "dave-repro"})
    try:
        resp = _urlopen(req, timeout=settings.timeout)  # http/https only
    except urllib.error.HTTPError as exc:
        if exc.code in (403, 404, 410):
            raise _Missing(url, f"HTTP {exc.code} {exc.reason}") from None
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
    return DirLocation(root.absolute())


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
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
            raise DownloadError(
                f"{name}: connection broke after {n} bytes ({type(exc).__name__})"
            ) from None
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
            raise ArchiveError(
                f"{name}: corrupt or truncated data after {n} bytes ({exc})"
            ) from None
        if not chunk:
            break
        n += len(chunk)
        if n > cap:
            raise ArchiveError(
                f"{name}: more than {cap} bytes, far past its expected size; refused"
            )
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
        except (DownloadError, OSError) as exc:  # OSError: also timeouts (socket.timeout)
            if attempt == settings.retries:
                raise DownloadError(f"{what}: failed after {attempt} attempts: {exc}") from None
            log.warning("%s: attempt %d failed (%s); retrying in %.1fs", what, attempt, exc, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def fetch_file(
    loc: Location, rel: str, dest: Path, settings: FetchSettings, size: int | None
) -> str:
    """Fetch ``rel`` (in any variant ``loc`` accepts) into ``dest``; return where it came from.

    Raises :class:`_NotFound` listing every location looked at (exactly as looked up) when no
    variant is there.
    """
    cap = min(settings.max_bytes, 2 * size + (1 << 20)) if size else settings.max_bytes
    looked: list[tuple[str, str]] = []
    for path, compression, split in loc.variants(rel):
        try:
            parts = loc.list_parts(path) if split else [path]
        except _Missing as exc:
            looked.append((f"{exc.where}, .part01, …", exc.why))
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
        except _Missing as exc:
            # a split part that vanished between listing and reading is named as it is
            looked.append((exc.where if not split else f"{exc.where} (a part)", exc.why))
            continue
        return loc.describe(parts[0]) + (f" (+{len(parts) - 1} parts)" if len(parts) > 1 else "")
    raise _NotFound(looked)


# ---------------------------------------------------------------------------------------------
# Archives.


def extract_members(
    archive: Path,
    members: tuple[Member, ...],
    dest_dir: Path,
    settings: FetchSettings,
    name: str | None = None,
) -> None:
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
                raise ArchiveError(
                    f"{label}: member {m.path!r} declares {info.file_size} bytes, "
                    f"far past its expected size; refused"
                )
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
# The checksum lock: trust on first use for files that publish no checksum.


def read_lock(path: Path) -> dict[str, str]:
    """``<dataset>/<file name>`` -> checksum, from the lock at ``path`` (none: empty)."""
    files = _lock_document(path)["files"]
    return {key: entry["checksum"] for key, entry in files.items()}


def _lock_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"files": {}}
    except OSError as exc:
        raise DownloadError(f"{path}: cannot read the checksum lock ({exc.strerror})") from None
    try:
        doc = json.loads(text)
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
        for key, entry in files.items():
            if isinstance(entry, str):  # a hand-written "<algorithm>:<hex>" is accepted too
                files[key] = entry = {"checksum": entry}
            hashing.parse_checksum(entry["checksum"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataFormatError(
            path,
            f"not a checksum lock ({type(exc).__name__}: {exc}); fix it, or restore it from git",
        ) from None
    return doc


def _record_first_use(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Add ``entries`` to the lock (atomically; concurrent downloads wait for each other)."""
    from ..locks import artifact_lock

    key = "checksum-lock-" + hashing.sha256_bytes(str(path.absolute()).encode())[:16]
    with artifact_lock(key, wait=120.0):
        doc = _lock_document(path)
        files = doc["files"]
        added = {}
        for name, entry in entries.items():
            if name in files:  # recorded meanwhile by another download of the same file
                if files[name]["checksum"] != entry["checksum"]:
                    raise _lock_mismatch(name, files[name]["checksum"], entry["checksum"], path)
                continue
            added[name] = entry
            files[name] = {
                **entry,
                "recorded_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        if not added:
            return
        doc.update(about=LOCK_ABOUT, version=LOCK_VERSION)
        try:
            atomic.write_json(path, doc)
        except OSError as exc:
            names = ", ".join(f"data.checksums['{n}']" for n in entries)
            raise DownloadError(
                f"cannot record the checksum of {', '.join(entries)} in {path} ({exc}); "
                f"pin it in params.yaml as {names} instead"
            ) from None
    for name, entry in added.items():
        log.warning(
            "%s: no checksum is published for this file; trusting it on first use and recording "
            "%s (%d bytes, from %s) in %s. Review it and commit %s: every later download of this "
            "file is verified against it.",
            name,
            entry["checksum"],
            entry["bytes"],
            entry["origin"],
            path,
            path,
        )


def _lock_mismatch(name: str, locked: str, actual: str, path: Path) -> ChecksumError:
    err = ChecksumError(name, f"{locked} (recorded in {path} on first use)", actual)
    err.args = (
        f"{err.args[0]}. This is not the file first downloaded; if it is a re-release you have "
        f"verified, pin its checksum in params.yaml as data.checksums['{name}'] (a pin takes "
        f"precedence over {path})",
    )
    return err


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class _Pins:
    """Where each file's expected checksum comes from: params.yaml, the registry, the lock."""

    dataset: str
    overrides: dict[str, str]
    lock_path: Path
    trust_on_first_use: bool
    first_use: dict[str, dict[str, Any]] = field(default_factory=dict)  # to record in the lock
    _locked: dict[str, str] | None = None  # read when first needed: only for unpublished files
    _warned: set[str] = field(default_factory=set)

    def locked(self, key: str) -> str | None:
        if self._locked is None:
            self._locked = read_lock(self.lock_path)
        return self._locked.get(key)

    def expected(self, name: str, published: str | None) -> tuple[str | None, str]:
        """(checksum or None, where it comes from) for local file ``name``."""
        key = f"{self.dataset}/{name}"
        locked = self.locked(key) if published is None else None  # never for published ones
        if key in self.overrides:
            pin = self.overrides[key]
            if locked is not None and _differ(pin, locked) and key not in self._warned:
                self._warned.add(key)
                log.warning(
                    "%s: params.yaml data.checksums pins %s, which takes precedence over "
                    "%s recorded in %s",
                    key,
                    pin,
                    locked,
                    self.lock_path,
                )
            return pin, "params.yaml data.checksums"
        if published is not None:
            return published, "published"
        if locked is not None:
            return locked, str(self.lock_path)
        return None, ""

    def verify(
        self, path: Path, name: str, published: str | None, origin: str, label: str | None = None
    ) -> tuple[str, str]:
        """Verify ``path`` (local name ``name``); return (checksum, source). Trust on first use
        where nothing is pinned: the entry is recorded in the lock when the form is complete."""
        key = f"{self.dataset}/{name}"
        pin, source = self.expected(name, published)
        if pin is not None:
            try:
                hashing.verify(path, pin, label or key)
            except ChecksumError as exc:
                if source == str(self.lock_path):
                    raise _lock_mismatch(key, pin, exc.actual, self.lock_path) from None
                raise
            return pin, source
        actual = f"sha256:{hashing.sha256_file(path)}"
        if not self.trust_on_first_use:
            path.unlink(missing_ok=True)
            raise ChecksumError(
                label or key,
                f"a pinned checksum (none is published for this file, {self.lock_path} has no "
                f"entry for it, and trust on first use is off ({STRICT_ENV}=1): after verifying "
                f"the file, pin it in params.yaml as data.checksums['{key}'])",
                actual,
            )
        self.first_use[key] = {"checksum": actual, "origin": origin, "bytes": path.stat().st_size}
        return actual, f"first use, recorded in {self.lock_path}"


def _differ(a: str, b: str) -> bool:
    try:
        (alg_a, hex_a), (alg_b, hex_b) = hashing.parse_checksum(a), hashing.parse_checksum(b)
    except ValueError:
        return a != b
    return alg_a == alg_b and hex_a != hex_b


# ---------------------------------------------------------------------------------------------
# The stage.


@dataclass
class FetchResult:
    dataset: str
    form: str
    # local name -> {"origin", "checksum", "checksum_source", "sha256"}
    files: dict[str, dict[str, str]]


def download(
    dataset: str,
    out_dir: Path,
    *,
    checksums: dict[str, str] | None = None,
    mirror: str | None = None,
    settings: FetchSettings | None = None,
    lock: str | os.PathLike[str] | None = None,
    trust_on_first_use: bool | None = None,
) -> FetchResult:
    """Fetch ``dataset`` into ``out_dir``, which is replaced as a whole only on success.

    Files are staged in a temporary sibling directory; ``out_dir`` afterwards holds exactly the
    verified files of one form, or (on failure) whatever it held before. ``lock`` is the checksum
    lock (default :data:`LOCK_FILE`); ``trust_on_first_use`` (default: unless
    ``DAVE_REQUIRE_PINNED_CHECKSUMS`` is set) records files with no checksum in it.
    """
    settings = settings or FetchSettings()
    ds: DatasetSpec = spec(dataset)
    lock_path = Path(lock) if lock is not None else LOCK_FILE
    tofu = not _strict() if trust_on_first_use is None else trust_on_first_use
    mloc = mirror_location(settings, mirror)
    tried: list[str] = []
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_stale_temporaries(out_dir.parent, out_dir.name)
    for form in ds.forms:
        if mloc is None and any(f.url is None for f in form.files):
            tried.append(
                f"form {form.name}: not tried: no public URL for "
                f"{', '.join(f.name for f in form.files if f.url is None)} (mirror only)"
            )
            continue
        pins = _Pins(ds.name, checksums or {}, lock_path, tofu)
        report: list[str] = []
        try:
            with atomic.atomic_dir(out_dir) as stage:
                files: dict[str, dict[str, str]] = {}
                for i, f in enumerate(form.files):
                    try:
                        origin, got = _fetch_one(ds, f, stage, out_dir, mloc, settings, pins)
                    except _NotFound as exc:
                        report.extend(_not_found(f.name, exc.looked))
                        report.extend(
                            f"{g.name}: not looked for (the form is incomplete)"
                            for g in form.files[i + 1 :]
                        )
                        raise
                    report.append(
                        f"{f.name}: " + (origin if origin == KEPT else f"found at {origin}")
                    )
                    files.update(got)
                if pins.first_use:  # before the files are in place: none is ever unrecorded
                    _record_first_use(lock_path, pins.first_use)
        except _NotFound:
            tried.append(f"form {form.name}:\n" + "\n".join(f"      {r}" for r in report))
            continue
        return FetchResult(dataset, form.name, files)
    if mloc is not None:
        where = (
            f"in {mloc} ({MIRROR_ENV}). The public URLs were not tried: with a mirror set, only "
            f"the mirror is used (unset {MIRROR_ENV} to download from them)"
        )
    else:
        where = f"at the public URLs ({MIRROR_ENV} is not set)"
    raise SourceUnavailableError(
        f"{dataset}: no complete source found {where}. Looked for, form by form:\n"
        + "\n".join(f"  - {t}" for t in tried)
    )


def _not_found(name: str, looked: list[tuple[str, str]]) -> list[str]:
    """Report lines: every location looked at, exactly as looked up, one a line."""
    reasons = {why for _, why in looked}
    if len(reasons) == 1:
        return [f"{name}: not found ({reasons.pop()}); looked for:"] + [f"  {w}" for w, _ in looked]
    return [f"{name}: not found; looked for:"] + [f"  {w}  ({why})" for w, why in looked]


def _fetch_one(
    ds: DatasetSpec,
    f: SourceFile,
    stage: Path,
    previous: Path,
    mloc: Location | None,
    settings: FetchSettings,
    pins: _Pins,
) -> tuple[str, dict[str, dict[str, str]]]:
    """Fetch and verify one file of a form; (where it came from, a record per local file)."""
    outputs = f.outputs()
    # Reuse verified files of an earlier run: a content check, never file times.
    if all((previous / o).is_file() for o in outputs) and _already_verified(f, previous, pins):
        for o in outputs:
            shutil.copyfile(previous / o, stage / o)
        return KEPT, {
            o: _record(stage / o, KEPT, *pins.expected(o, _published(f, o))) for o in outputs
        }
    loc: Location
    if mloc is not None:
        loc, rel = mloc, f"{ds.name}/{f.mirror_path}"
    else:
        loc, rel = UrlLocation(settings), f.url or ""
    target = stage / (f.name if not f.is_archive else f"{atomic.TMP_PREFIX}{f.name}")
    origin = fetch_file(loc, rel, target, settings, f.size)
    try:
        pinned = pins.verify(target, f.name, f.checksum, origin)
        if not f.is_archive:
            return origin, {f.name: _record(target, origin, *pinned)}
        extract_members(target, f.members, stage, settings, f.name)
    finally:
        if f.is_archive:
            target.unlink(missing_ok=True)
    result = {}
    for m in f.members:
        mpin, msource = pins.expected(m.name, m.checksum)
        if mpin is not None:
            pins.verify(
                stage / m.name,
                m.name,
                m.checksum,
                f"{origin}:{m.path}",
                label=f"{ds.name}/{m.name} (from {f.name})",
            )
        else:  # covered by the archive's checksum
            msource = f"the checksum of {f.name}"
        result[m.name] = _record(stage / m.name, f"{origin}:{m.path}", mpin, msource)
    return origin, result


def _published(f: SourceFile, name: str) -> str | None:
    if not f.is_archive:
        return f.checksum
    return next(m for m in f.members if m.name == name).checksum


def _already_verified(f: SourceFile, out_dir: Path, pins: _Pins) -> bool:
    for o in f.outputs():
        pin, _ = pins.expected(o, _published(f, o))
        if pin is None:
            return False
        algorithm, expected = hashing.parse_checksum(pin)
        if hashing.file_digest(out_dir / o, algorithm) != expected:
            return False
    return True


def _record(path: Path, origin: str, checksum: str | None, source: str) -> dict[str, str]:
    return {
        "origin": origin,
        "checksum": checksum or "",
        "checksum_source": source,
        "sha256": hashing.sha256_file(path),
    }
