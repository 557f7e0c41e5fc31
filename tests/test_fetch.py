"""The download stage: mirrors (directory and HTTP), compressed and split files, checksums,
archives, and a server that breaks: every failure is a clear error and leaves no file behind."""

from __future__ import annotations

import bz2
import dataclasses
import email.message
import gzip
import hashlib
import http.server
import io
import json
import logging
import lzma
import shutil
import socketserver
import threading
import time
import urllib.error
import urllib.parse
import urllib.response
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dave_repro import atomic
from dave_repro.data import fetch, registry
from dave_repro.errors import (
    ArchiveError,
    ChecksumError,
    DataFormatError,
    DownloadError,
    SourceUnavailableError,
)

FAST = fetch.FetchSettings(timeout=0.5, retries=2, backoff=0.01)
UDATA = b"".join(
    b"%d\t%d\t%d\t%d\n" % (u, i, 3, 880000000 + i) for u in range(1, 4) for i in range(1, 30)
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


PIN = {"ml-100k/u.data": sha(UDATA)}


@pytest.fixture(autouse=True)
def lock(tmp_path, monkeypatch) -> Path:
    """The checksum lock at its default (relative) path, in the test's own directory: no test
    reads or writes the repository's checksums.lock.json."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(fetch.STRICT_ENV, raising=False)
    return tmp_path / fetch.LOCK_FILE


def make_mirror(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / "ml-100k" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_real_mirror_ml100k_is_verified(mirror, tmp_path):
    if mirror is None:  # no real data on this machine: the generated mirror below covers the code
        mirror = make_mirror(tmp_path / "m", {"u.data": UDATA})
        res = fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(mirror), checksums=PIN, settings=FAST
        )
    else:
        res = fetch.download("ml-100k", tmp_path / "raw", mirror=str(mirror), settings=FAST)
        assert (
            res.files["u.data"]["sha256"]
            == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
        )
    assert res.form == "grouplens-files"
    assert listing(tmp_path / "raw") == ["u.data"]


@pytest.mark.parametrize("variant", ["gz", "bz2", "xz", "parts", "gz-parts"])
def test_compressed_and_split_files_in_a_mirror(tmp_path, variant):
    comp = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}
    if variant in comp:
        files = {f"u.data.{variant}": comp[variant](UDATA)}
    elif variant == "parts":
        files = {
            f"u.data.part{i:02d}": UDATA[i * 700 : (i + 1) * 700]
            for i in range(len(UDATA) // 700 + 1)
        }
    else:
        gz = gzip.compress(UDATA)
        files = {"u.data.gz.part00": gz[:100], "u.data.gz.part01": gz[100:]}
    mirror = make_mirror(tmp_path / "m", files)
    fetch.download("ml-100k", tmp_path / "raw", mirror=str(mirror), checksums=PIN, settings=FAST)
    assert (tmp_path / "raw" / "u.data").read_bytes() == UDATA


def test_checksum_mismatch_names_file_and_hashes_and_leaves_nothing(tmp_path):
    bad = UDATA.replace(b"880000001", b"880000009")
    mirror = make_mirror(tmp_path / "m", {"u.data": bad})
    out = tmp_path / "raw"
    with pytest.raises(ChecksumError) as exc:
        fetch.download("ml-100k", out, mirror=str(mirror), checksums=PIN, settings=FAST)
    msg = str(exc.value)
    assert "ml-100k/u.data" in msg and PIN["ml-100k/u.data"] in msg and sha(bad) in msg
    assert not out.exists()
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_failed_download_keeps_the_previous_complete_output(tmp_path):
    good = make_mirror(tmp_path / "good", {"u.data": UDATA})
    out = tmp_path / "raw"
    fetch.download("ml-100k", out, mirror=str(good), checksums=PIN, settings=FAST)
    (out / "u.data").write_bytes(b"tampered")  # forces a new fetch
    bad = make_mirror(tmp_path / "bad", {"u.data": b"1\t2\t3\t4\n"})
    with pytest.raises(ChecksumError):
        fetch.download("ml-100k", out, mirror=str(bad), checksums=PIN, settings=FAST)
    assert (out / "u.data").read_bytes() == b"tampered"  # untouched: no half-written replacement


def test_unavailable_dataset_lists_what_was_tried(tmp_path):
    mirror = tmp_path / "empty"
    (mirror / "yelp").mkdir(parents=True)
    with pytest.raises(SourceUnavailableError) as exc:
        fetch.download("yelp", tmp_path / "raw", mirror=str(mirror), settings=FAST)
    assert "eals" in str(exc.value) and "apr-split" in str(exc.value)
    assert not (tmp_path / "raw").exists()


def test_unpinned_file_is_refused_when_pinned_checksums_are_required(tmp_path, lock, monkeypatch):
    monkeypatch.setenv(fetch.STRICT_ENV, "1")  # trust on first use off: the refusal of old
    p = tmp_path / "m" / "digital-music" / "amazon2018" / "Digital_Music.csv"
    p.parent.mkdir(parents=True)
    data = b"B1,A1,5.0,1\n"
    p.write_bytes(data)
    with pytest.raises(ChecksumError) as exc:
        fetch.download("digital-music", tmp_path / "raw", mirror=str(tmp_path / "m"), settings=FAST)
    assert str(exc.value) == (
        "checksum mismatch for digital-music/Digital_Music.csv: expected a pinned checksum (none "
        "is published for this file, checksums.lock.json has no entry for it, and trust on first "
        "use is off (DAVE_REQUIRE_PINNED_CHECKSUMS=1): after verifying the file, pin it in "
        "params.yaml as data.checksums['digital-music/Digital_Music.csv']), got "
        f"{sha(data)}; the file was removed"
    )
    assert not (tmp_path / "raw").exists() and not lock.exists()


# -- archives ----------------------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def archive_download(tmp_path, data: bytes):
    mirror = make_mirror(tmp_path / "m", {"ml-100k.zip": data})
    pins = {**PIN, "ml-100k/ml-100k.zip": md5(data)}
    return fetch.download(
        "ml-100k", tmp_path / "raw", mirror=str(mirror), checksums=pins, settings=FAST
    )


def test_archive_member_is_extracted_and_verified(tmp_path):
    res = archive_download(tmp_path, zip_bytes({"ml-100k/u.data": UDATA, "ml-100k/README": b"x"}))
    assert res.form == "grouplens-archive"
    assert listing(tmp_path / "raw") == ["u.data"]  # the archive itself is not kept


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs/evil.txt", "ml-100k/../../evil.txt"])
def test_archive_path_escape_is_refused(tmp_path, evil):
    with pytest.raises(ArchiveError, match="escape"):
        archive_download(tmp_path, zip_bytes({"ml-100k/u.data": UDATA, evil: b"boom"}))
    assert not (tmp_path / "raw").exists() and not (tmp_path / "evil.txt").exists()


def test_archive_symlink_member_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="symbolic link"):
        archive_download(tmp_path, zip_bytes({"ml-100k/u.data": UDATA}, symlink="ml-100k/link"))
    assert not (tmp_path / "raw").exists()


def test_archive_expanding_far_past_its_size_is_refused(tmp_path):
    bomb = zipfile.ZipFile  # a member much larger than u.data's known size (highly compressible)
    buf = io.BytesIO()
    with bomb(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", b"0" * (6 * 1_979_173))
    with pytest.raises(ArchiveError, match="expected size"):
        archive_download(tmp_path, buf.getvalue())
    assert not (tmp_path / "raw").exists()


def test_truncated_archive_is_a_clear_error(tmp_path):
    data = zip_bytes({"ml-100k/u.data": UDATA})
    mirror = make_mirror(tmp_path / "m", {"ml-100k.zip": data[: len(data) // 2]})
    pins = {**PIN, "ml-100k/ml-100k.zip": md5(data[: len(data) // 2])}
    with pytest.raises(ArchiveError, match="not a readable zip"):
        fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(mirror), checksums=pins, settings=FAST
        )
    assert not (tmp_path / "raw").exists()


# -- HTTP: a real server on 127.0.0.1 ------------------------------------------------------------


class Server:
    """Serves a directory; ``mode`` breaks it: drop (close mid-file), stall, flaky (drop once)."""

    def __init__(self, root: Path, mode: str = "ok") -> None:
        self.root, self.mode, self.requests = root, mode, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                outer.requests += 1
                path = outer.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if outer.mode == "stall":
                    time.sleep(2.0)
                drop = outer.mode == "drop" or (outer.mode == "flaky" and outer.requests == 1)
                self.wfile.write(data[: len(data) // 2] if drop else data)
                self.wfile.flush()
                if drop:
                    self.connection.close()

        class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = ThreadingServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve():
    servers = []

    def start(root, mode="ok"):
        s = Server(root, mode)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_http_mirror_real_data(serve, mirror, tmp_path):
    root = mirror if mirror is not None else make_mirror(tmp_path / "m", {"u.data": UDATA})
    pins = {} if mirror is not None else PIN
    srv = serve(root)
    res = fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=pins, settings=FAST)
    assert (tmp_path / "raw" / "u.data").stat().st_size == (1_979_173 if mirror else len(UDATA))
    assert res.files["u.data"]["origin"].startswith(srv.url)


def test_http_corrupted_file_is_rejected(serve, tmp_path):
    srv = serve(make_mirror(tmp_path / "m", {"u.data": UDATA[:-3] + b"9\n"}))
    with pytest.raises(ChecksumError):
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert not (tmp_path / "raw").exists()


def test_http_server_dropping_the_connection_mid_file(serve, tmp_path):
    srv = serve(make_mirror(tmp_path / "m", {"u.data": UDATA}), mode="drop")
    with pytest.raises(DownloadError, match="attempts"):
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert not (tmp_path / "raw").exists()
    assert srv.requests >= FAST.retries  # it retried with back-off before giving up


def test_http_drop_then_retry_succeeds(serve, tmp_path):
    srv = serve(make_mirror(tmp_path / "m", {"u.data": UDATA}), mode="flaky")
    fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert (tmp_path / "raw" / "u.data").read_bytes() == UDATA


def test_http_stalled_server_times_out(serve, tmp_path):
    srv = serve(make_mirror(tmp_path / "m", {"u.data": UDATA}), mode="stall")
    t0 = time.perf_counter()
    with pytest.raises(DownloadError):
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "raw").exists()


def test_reuse_of_verified_files_needs_no_source(tmp_path):
    mirror = make_mirror(tmp_path / "m", {"u.data": UDATA})
    out = tmp_path / "raw"
    fetch.download("ml-100k", out, mirror=str(mirror), checksums=PIN, settings=FAST)
    shutil.rmtree(mirror)
    (mirror / "ml-100k").mkdir(parents=True)
    res = fetch.download("ml-100k", out, mirror=str(mirror), checksums=PIN, settings=FAST)
    assert "kept from the previous run" in res.files["u.data"]["origin"]


# -- where a missing source was looked for: exactly the paths and URLs tried --------------------

SPLIT = ", .part01, …"  # how a split lookup is printed after its first part
COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def looked_for(message: str) -> dict[str, dict]:
    """Each form's block of a SourceUnavailableError: the note on its first line, the files
    found (their origins), the file not found, every location printed for it, and the files
    not looked for."""
    forms: dict[str, dict] = {}
    form: dict = {}
    for line in message.splitlines()[1:]:
        if line.startswith("  - form "):
            name, _, note = line.removeprefix("  - form ").partition(":")
            form = forms[name] = {
                "note": note.strip(),
                "found": [],
                "missing": None,
                "looked": [],
                "skipped": [],
            }
        elif line.startswith(" " * 8):
            form["looked"].append(line.strip().split("  (")[0])
        elif line.startswith(" " * 6):
            name, _, what = line.strip().partition(": ")
            if what.startswith("not found"):
                form["missing"] = name
            elif what.startswith("not looked for"):
                form["skipped"].append(name)
            else:
                form["found"].append(what.removeprefix("found at "))
    return forms


def expected_locations(at: Callable[[str], str], rel: str) -> list[str]:
    """The lookups docs/data.md promises for a mirror file ``rel``, in order."""
    plain = [at(rel + suffix) for suffix in ("", *COMPRESS)]
    return plain + [at(rel + suffix + ".part00") + SPLIT for suffix in ("", *COMPRESS)]


def mirror_of(kind: str, root: Path, serve):
    """(DAVE_DATA_MIRROR value, how the error names the mirror, location -> file under root)."""
    if kind == "dir":
        return str(root), f"the mirror directory {root}", Path
    srv = serve(root)

    def to_path(url: str) -> Path:
        assert url.startswith(srv.url), url
        return root / urllib.parse.unquote(url.removeprefix(srv.url))

    return srv.url, f"the mirror {srv.url}", to_path


def place(where: str, to_path: Callable[[str], Path], data: bytes) -> str:
    """Put ``data`` at a printed location, encoded as its name says (compressed, split in two
    parts); return the location of its first byte."""
    first = where.removesuffix(SPLIT)
    name = first.removesuffix(".part00") if where.endswith(SPLIT) else first
    suffix = next((s for s in COMPRESS if name.endswith(s)), None)
    data = COMPRESS[suffix](data) if suffix else data
    if where.endswith(SPLIT):
        pieces = {first: data[: len(data) // 2], name + ".part01": data[len(data) // 2 :]}
    else:
        pieces = {first: data}
    for loc, piece in pieces.items():
        to_path(loc).parent.mkdir(parents=True, exist_ok=True)
        to_path(loc).write_bytes(piece)
    return first


def content(ds: str, f: registry.SourceFile) -> tuple[bytes, dict[str, str]]:
    """Bytes for source file ``f`` and the data.checksums entries that accept them."""
    if not f.is_archive:
        data = f"{f.name} of {ds}\n".encode()
        return data, {f"{ds}/{f.name}": sha(data)}
    members = {m.path: f"{m.name} of {ds}\n".encode() for m in f.members}
    data = zip_bytes(members)
    pins = {f"{ds}/{m.name}": sha(members[m.path]) for m in f.members}
    return data, {**pins, f"{ds}/{f.name}": md5(data)}


def test_missing_source_in_a_directory_mirror_names_each_path_looked_up(tmp_path):
    m = tmp_path / "m"
    (m / "ml-100k").mkdir(parents=True)
    with pytest.raises(SourceUnavailableError) as exc:
        fetch.download("ml-100k", tmp_path / "raw", mirror=str(m), settings=FAST)
    looked = {
        name: "\n".join(
            f"        {where}" for where in expected_locations(str, f"{m}/ml-100k/{name}")
        )
        for name in ("ml-100k.zip", "u.data")
    }
    assert str(exc.value) == (
        f"ml-100k: no complete source found in the mirror directory {m} (DAVE_DATA_MIRROR). "
        "The public URLs were not tried: with a mirror set, only the mirror is used (unset "
        "DAVE_DATA_MIRROR to download from them). Looked for, form by form:\n"
        "  - form grouplens-archive:\n"
        "      ml-100k.zip: not found (no such file); looked for:\n"
        f"{looked['ml-100k.zip']}\n"
        "  - form grouplens-files:\n"
        "      u.data: not found (no such file); looked for:\n"
        f"{looked['u.data']}"
    )
    assert f"{m}/ml-100k/ml-100k/" not in str(exc.value)  # the old message doubled the dataset
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("kind", ["dir", "http"])
@pytest.mark.parametrize("ds", list(registry.REGISTRY))
def test_every_form_names_exactly_where_its_files_are_looked_up(ds, kind, serve, tmp_path):
    """For every dataset and form, from an empty mirror: the error names, for each form, the
    first file not found at exactly the paths (URLs) the docs promise; putting the file at the
    first one printed makes it found there, until the form is complete and downloads."""
    dspec = registry.spec(ds)
    for target in dspec.forms:
        root = tmp_path / target.name
        root.mkdir()
        mirror, described, to_path = mirror_of(kind, root, serve)

        def at(rel: str, mirror: str = mirror) -> str:
            return str(Path(mirror) / rel) if kind == "dir" else mirror + rel

        out, pins, placed = tmp_path / "raw" / target.name, {}, []
        for n in range(len(target.files)):
            with pytest.raises(SourceUnavailableError) as exc:
                fetch.download(ds, out, mirror=mirror, checksums=pins, settings=FAST)
            head, *_ = str(exc.value).splitlines()
            assert head == (
                f"{ds}: no complete source found in {described} (DAVE_DATA_MIRROR). The public "
                "URLs were not tried: with a mirror set, only the mirror is used (unset "
                "DAVE_DATA_MIRROR to download from them). Looked for, form by form:"
            )
            forms = looked_for(str(exc.value))
            assert list(forms) == [form.name for form in dspec.forms]
            for form in dspec.forms:
                done = placed if form is target else []
                missing = form.files[len(done)]
                block = forms[form.name]
                assert block["found"] == done
                assert block["missing"] == missing.name
                assert block["looked"] == expected_locations(at, f"{ds}/{missing.mirror_path}")
                assert block["skipped"] == [f.name for f in form.files[len(done) + 1 :]]
            data, accept = content(ds, target.files[n])
            placed.append(place(forms[target.name]["looked"][0], to_path, data))
            pins.update(accept)
        res = fetch.download(ds, out, mirror=mirror, checksums=pins, settings=FAST)
        assert res.form == target.name
        assert [res.files[o]["origin"] for f in target.files for o in f.outputs()] == [
            where + (f":{m.path}" if f.is_archive else "")
            for where, f in zip(placed, target.files, strict=True)
            for m in (f.members or (None,))
        ]
        assert sorted(p.name for p in out.iterdir()) == sorted(target.outputs())


@pytest.mark.parametrize("kind", ["dir", "http"])
def test_each_compressed_and_split_lookup_printed_is_where_the_file_is_found(kind, serve, tmp_path):
    root = tmp_path / "m"
    (root / "ml-100k").mkdir(parents=True)
    mirror, _, to_path = mirror_of(kind, root, serve)
    with pytest.raises(SourceUnavailableError) as exc:
        fetch.download("ml-100k", tmp_path / "raw", mirror=mirror, checksums=PIN, settings=FAST)
    printed = looked_for(str(exc.value))["grouplens-files"]["looked"]
    assert len(printed) == 8
    for i, where in enumerate(printed):
        shutil.rmtree(root / "ml-100k")
        first = place(where, to_path, UDATA)
        out = tmp_path / f"raw-{i}"
        res = fetch.download("ml-100k", out, mirror=mirror, checksums=PIN, settings=FAST)
        assert res.form == "grouplens-files" and (out / "u.data").read_bytes() == UDATA
        split = " (+1 parts)" if where.endswith(SPLIT) else ""
        assert res.files["u.data"]["origin"] == first + split


class FakeWeb:
    """Stands in for the one opener fetch uses: serves ``files`` by URL, 404 for anything else,
    and records every URL requested."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requested: list[str] = []

    def __call__(self, req, timeout):
        url = req.full_url
        self.requested.append(url)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", email.message.Message(), None)
        headers = email.message.Message()
        headers["Content-Length"] = str(len(self.files[url]))
        return urllib.response.addinfourl(io.BytesIO(self.files[url]), headers, url, 200)


@pytest.fixture()
def web(monkeypatch) -> FakeWeb:
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    fake = FakeWeb()
    monkeypatch.setattr(fetch, "_urlopen", fake)
    return fake


@pytest.mark.parametrize("ds", list(registry.REGISTRY))
def test_public_urls_are_named_exactly_as_requested(ds, web, tmp_path):
    dspec = registry.spec(ds)
    public = [form for form in dspec.forms if all(f.url for f in form.files)]
    assert public  # every dataset has a form that can be downloaded without a mirror
    for target in public:
        web.files.clear()
        out, pins, placed = tmp_path / "raw" / target.name, {}, []
        for n in range(len(target.files)):
            web.requested.clear()
            with pytest.raises(SourceUnavailableError) as exc:
                fetch.download(ds, out, checksums=pins, settings=FAST)
            msg = str(exc.value)
            assert msg.splitlines()[0] == (
                f"{ds}: no complete source found at the public URLs (DAVE_DATA_MIRROR is not "
                "set). Looked for, form by form:"
            )
            forms = looked_for(msg)
            assert list(forms) == [form.name for form in dspec.forms]
            for form in dspec.forms:
                block = forms[form.name]
                if form not in public:
                    names = ", ".join(f.name for f in form.files if f.url is None)
                    assert block["note"] == f"not tried: no public URL for {names} (mirror only)"
                    assert block["looked"] == [] and block["missing"] is None
                    continue
                done = placed if form is target else []
                missing = form.files[len(done)]
                assert block["found"] == done and block["missing"] == missing.name
                assert block["looked"] == [missing.url]  # the URL itself, no variants
                assert f"{missing.name}: not found (HTTP 404 Not Found); looked for:" in msg
            # every URL requested is printed, in order, and nothing else was requested
            assert web.requested == [w for b in forms.values() for w in b["found"] + b["looked"]]
            data, accept = content(ds, target.files[n])
            where = forms[target.name]["looked"][0]
            web.files[where] = data
            placed.append(where)
            pins.update(accept)
        res = fetch.download(ds, out, checksums=pins, settings=FAST)
        assert res.form == target.name
        assert [
            res.files[f.name if not f.is_archive else f.members[0].name]["origin"]
            for f in target.files
        ] == [f.url + (f":{f.members[0].path}" if f.is_archive else "") for f in target.files]


# -- trust on first use: the checksum lock -----------------------------------------------------

DM = "digital-music/Digital_Music.csv"
DM_DATA = b"B000000001,A00000001,5.0,1500000000\nB000000002,A00000001,4.0,1500000001\n"


def dm_mirror(root: Path, data: bytes) -> tuple[str, str]:
    """A mirror holding Digital_Music.csv: (the mirror, where the file is)."""
    p = root / "digital-music" / "amazon2018" / "Digital_Music.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return str(root), str(p)


def first_use_warning(checksum: str, size: int, origin: str) -> str:
    return (
        f"{DM}: no checksum is published for this file; trusting it on first use and recording "
        f"{checksum} ({size} bytes, from {origin}) in checksums.lock.json. Review it and commit "
        "checksums.lock.json: every later download of this file is verified against it."
    )


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_first_download_of_an_unpinned_file_records_it_in_the_lock(tmp_path, lock, caplog):
    mirror, origin = dm_mirror(tmp_path / "m", DM_DATA)
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        res = fetch.download("digital-music", tmp_path / "raw", mirror=mirror, settings=FAST)
    assert (tmp_path / "raw" / "Digital_Music.csv").read_bytes() == DM_DATA
    assert res.files["Digital_Music.csv"]["checksum"] == sha(DM_DATA)
    assert res.files["Digital_Music.csv"]["checksum_source"] == (
        "first use, recorded in checksums.lock.json"
    )
    assert warnings(caplog) == [first_use_warning(sha(DM_DATA), len(DM_DATA), origin)]
    doc = json.loads(lock.read_text())
    recorded = doc["files"][DM].pop("recorded_utc")
    assert time.strptime(recorded, "%Y-%m-%dT%H:%M:%SZ")
    assert doc["files"] == {DM: {"checksum": sha(DM_DATA), "bytes": len(DM_DATA), "origin": origin}}
    assert doc["version"] == 1 and "trust on first use" in doc["about"]
    doc["files"][DM]["recorded_utc"] = recorded
    assert lock.read_text() == atomic.dumps_json(doc)  # canonical: a re-write changes no byte
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


def test_first_download_from_the_public_url_records_it(tmp_path, lock, web, caplog):
    url = registry.spec("digital-music").forms[0].files[0].url
    web.files[url] = DM_DATA
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        res = fetch.download("digital-music", tmp_path / "raw", settings=FAST)
    assert res.files["Digital_Music.csv"]["origin"] == url
    assert warnings(caplog) == [first_use_warning(sha(DM_DATA), len(DM_DATA), url)]
    assert fetch.read_lock(lock) == {DM: sha(DM_DATA)}


def test_later_downloads_are_verified_against_the_lock(tmp_path, lock, caplog):
    mirror, origin = dm_mirror(tmp_path / "m", DM_DATA)
    out = tmp_path / "raw"
    fetch.download("digital-music", out, mirror=mirror, settings=FAST)
    before = lock.read_bytes(), lock.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        kept = fetch.download("digital-music", out, mirror=mirror, settings=FAST)
        shutil.rmtree(out)  # as on a fresh clone: fetched again, verified against the lock
        again = fetch.download("digital-music", out, mirror=mirror, settings=FAST)
    assert kept.files["Digital_Music.csv"]["origin"] == fetch.KEPT
    assert again.files["Digital_Music.csv"]["origin"] == origin
    for res in (kept, again):
        assert res.files["Digital_Music.csv"]["checksum"] == sha(DM_DATA)
        assert res.files["Digital_Music.csv"]["checksum_source"] == "checksums.lock.json"
    assert warnings(caplog) == []
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before  # read, never re-written

    other = DM_DATA.replace(b"5.0", b"1.0")
    dm_mirror(tmp_path / "m", other)
    shutil.rmtree(out)
    with pytest.raises(ChecksumError) as exc:
        fetch.download("digital-music", out, mirror=mirror, settings=FAST)
    assert str(exc.value) == (
        f"checksum mismatch for {DM}: expected {sha(DM_DATA)} (recorded in checksums.lock.json on "
        f"first use), got {sha(other)}; the file was removed. This is not the file first "
        "downloaded; if it is a re-release you have verified, pin its checksum in params.yaml as "
        f"data.checksums['{DM}'] (a pin takes precedence over checksums.lock.json)"
    )
    assert not out.exists() and [p.name for p in tmp_path.rglob(".tmp-*")] == []
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before


def test_a_pin_in_params_wins_over_the_lock(tmp_path, lock, caplog):
    mirror, _ = dm_mirror(tmp_path / "m", DM_DATA)
    fetch.download("digital-music", tmp_path / "raw", mirror=mirror, settings=FAST)
    before = lock.read_bytes()
    other = DM_DATA.replace(b"5.0", b"1.0")
    dm_mirror(tmp_path / "m", other)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        res = fetch.download(
            "digital-music",
            tmp_path / "raw",
            mirror=mirror,
            checksums={DM: sha(other)},
            settings=FAST,
        )
    assert (tmp_path / "raw" / "Digital_Music.csv").read_bytes() == other
    assert res.files["Digital_Music.csv"]["checksum_source"] == "params.yaml data.checksums"
    assert warnings(caplog) == [
        f"{DM}: params.yaml data.checksums pins {sha(other)}, which takes precedence over "
        f"{sha(DM_DATA)} recorded in checksums.lock.json"
    ]
    assert lock.read_bytes() == before  # the lock records first uses only
    shutil.rmtree(tmp_path / "raw")
    with pytest.raises(ChecksumError, match=f"expected {sha(b'x')}, got {sha(other)}"):
        fetch.download(
            "digital-music",
            tmp_path / "raw",
            mirror=mirror,
            checksums={DM: sha(b"x")},
            settings=FAST,
        )


def test_files_with_a_published_checksum_never_use_the_lock(tmp_path, lock, monkeypatch):
    mirror = make_mirror(tmp_path / "m", {"u.data": UDATA})
    fetch.download("ml-100k", tmp_path / "raw", mirror=str(mirror), checksums=PIN, settings=FAST)
    assert not lock.exists()  # pinned in params: nothing to record
    # published in the registry: a (hand-made) lock entry for it is ignored, nothing is recorded
    ml = registry.spec("ml-100k")
    form = ml.form("grouplens-files")
    published = dataclasses.replace(
        form, files=(dataclasses.replace(form.files[0], checksum=sha(UDATA)),)
    )
    monkeypatch.setitem(registry.REGISTRY, "ml-100k", dataclasses.replace(ml, forms=(published,)))
    atomic.write_json(lock, {"files": {"ml-100k/u.data": sha(b"something else")}})
    before = lock.read_bytes()
    shutil.rmtree(tmp_path / "raw")
    res = fetch.download("ml-100k", tmp_path / "raw", mirror=str(mirror), settings=FAST)
    assert res.files["u.data"]["checksum"] == sha(UDATA)
    assert res.files["u.data"]["checksum_source"] == "published"
    assert lock.read_bytes() == before
    lock.write_text("{")  # not even read for them: a damaged lock never blocks such a dataset
    shutil.rmtree(tmp_path / "raw")
    fetch.download("ml-100k", tmp_path / "raw", mirror=str(mirror), settings=FAST)
    assert lock.read_text() == "{"


def test_a_lock_that_cannot_be_written_refuses_the_file(tmp_path, lock, monkeypatch):
    mirror, _ = dm_mirror(tmp_path / "m", DM_DATA)

    def read_only(*_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fetch.atomic, "write_json", read_only)
    with pytest.raises(DownloadError) as exc:
        fetch.download("digital-music", tmp_path / "raw", mirror=mirror, settings=FAST)
    assert str(exc.value) == (
        f"cannot record the checksum of {DM} in checksums.lock.json ([Errno 13] Permission "
        f"denied); pin it in params.yaml as data.checksums['{DM}'] instead"
    )
    assert not (tmp_path / "raw").exists()  # never a file in place that no checksum covers


def test_a_corrupt_lock_is_a_clear_error(tmp_path, lock):
    mirror, _ = dm_mirror(tmp_path / "m", DM_DATA)
    lock.write_text(json.dumps({"files": {DM: "sha256:12"}}))
    with pytest.raises(DataFormatError) as exc:
        fetch.download("digital-music", tmp_path / "raw", mirror=mirror, settings=FAST)
    assert str(exc.value).startswith("checksums.lock.json: not a checksum lock (ValueError: ")
    assert str(exc.value).endswith("; fix it, or restore it from git")
    assert not (tmp_path / "raw").exists()


def test_an_entry_recorded_meanwhile_is_compared_not_overwritten(tmp_path, lock, caplog):
    """Two downloads of the same unpinned file at once: the second to record finds the first's
    entry; the same checksum adds nothing (no second warning), another one is refused."""
    entry = {"checksum": sha(DM_DATA), "bytes": len(DM_DATA), "origin": "a"}
    fetch._record_first_use(fetch.LOCK_FILE, {DM: entry})
    before = lock.read_bytes(), lock.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        fetch._record_first_use(fetch.LOCK_FILE, {DM: entry})
    assert warnings(caplog) == []
    with pytest.raises(ChecksumError, match=r"expected \S+ \(recorded in checksums.lock.json on"):
        fetch._record_first_use(fetch.LOCK_FILE, {DM: {**entry, "checksum": sha(b"other")}})
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before
