"""Fault class: downloads and archives.

Servers that stall mid-body, never answer, or fail and then recover (retries with back-off,
observed); compressed files and zip members that expand past their expected size, declared or
not; archive members that escape the target; a mirror link that points outside the mirror; a
download killed or terminated mid-transfer. Each ends in a clear error (or success after a
retry), and the workspace holds no file of the failed attempt. (More cases: tests/test_fetch.py.)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import tiny_params
from faults import dave, wait_for

from dave_repro.data import fetch
from dave_repro.errors import ArchiveError, DownloadError

FAST = fetch.FetchSettings(timeout=0.5, retries=2, backoff=0.01)
UDATA = b"".join(
    b"%d\t%d\t%d\t%d\n" % (u, i, 3, 880000000 + i) for u in range(1, 4) for i in range(1, 30)
)
PIN = {"ml-100k/u.data": "sha256:" + hashlib.sha256(UDATA).hexdigest()}


@pytest.fixture(autouse=True)
def own_lock(tmp_path, monkeypatch) -> None:
    """Each test's checksum lock is its own (the default relative path, in its directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(fetch.STRICT_ENV, raising=False)


def nothing_left(tmp_path: Path) -> None:
    """No raw directory of the failed download, and no temporary anywhere."""
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


# -- a server whose every request is answered by a chosen behaviour ----------------------------

Behaviour = Callable[[http.server.BaseHTTPRequestHandler, bytes], None]


def ok(h: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def stall_mid_body(h: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data[: len(data) // 3])
    h.wfile.flush()
    time.sleep(3.0)  # far past the client's timeout: the rest never comes in time


def silent(h: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
    time.sleep(3.0)  # accepts the connection, never answers


def error_500(h: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
    h.send_error(500, "Internal Server Error")


class Server:
    def __init__(self, files: dict[str, bytes], behaviours: list[Behaviour]) -> None:
        """Request n gets ``behaviours[n]`` (the last one repeats); unknown paths get 404."""
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                data = files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                n = outer.requests
                outer.requests += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    behaviours[min(n, len(behaviours) - 1)](self, data)

        class Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Threading(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve():
    servers: list[Server] = []

    def start(files: dict[str, bytes], *behaviours: Behaviour) -> Server:
        s = Server({f"ml-100k/{k}": v for k, v in files.items()}, list(behaviours) or [ok])
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_server_that_stalls_mid_body_times_out_retries_and_leaves_nothing(serve, tmp_path):
    srv = serve({"u.data": UDATA}, stall_mid_body)
    t0 = time.perf_counter()
    with pytest.raises(DownloadError) as exc:
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert time.perf_counter() - t0 < 15
    msg = str(exc.value)
    assert msg.startswith(f"{srv.url}ml-100k/u.data: failed after 2 attempts: ")
    assert f"connection broke after {len(UDATA) // 3} bytes" in msg
    assert srv.requests == FAST.retries
    nothing_left(tmp_path)


def test_server_that_never_answers_times_out(serve, tmp_path):
    srv = serve({"u.data": UDATA}, silent)
    with pytest.raises(DownloadError, match="failed after 2 attempts: .*timed out"):
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert srv.requests == FAST.retries
    nothing_left(tmp_path)


def test_retries_back_off_exponentially_then_succeed(serve, tmp_path, monkeypatch, caplog):
    srv = serve({"u.data": UDATA}, error_500, error_500, stall_mid_body, ok)
    slept: list[float] = []
    monkeypatch.setattr(fetch, "time", SimpleNamespace(sleep=slept.append))  # fetch's clock only
    settings = fetch.FetchSettings(timeout=0.5, retries=4, backoff=0.5)
    with caplog.at_level(logging.WARNING, logger="dave_repro.data.fetch"):
        res = fetch.download(
            "ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=settings
        )
    assert slept == [0.5, 1.0, 2.0]  # doubled after each failed attempt
    assert srv.requests == 4
    url = f"{srv.url}ml-100k/u.data"
    assert [r.getMessage() for r in caplog.records] == [
        f"{url}: attempt 1 failed ({url}: HTTP 500 Internal Server Error); retrying in 0.5s",
        f"{url}: attempt 2 failed ({url}: HTTP 500 Internal Server Error); retrying in 1.0s",
        f"{url}: attempt 3 failed ({url}: connection broke after {len(UDATA) // 3} bytes "
        "(TimeoutError)); retrying in 2.0s",
    ]
    assert (tmp_path / "raw/u.data").read_bytes() == UDATA and res.form == "grouplens-files"
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


def test_server_errors_that_persist_give_up_with_the_status(serve, tmp_path):
    srv = serve({"u.data": UDATA}, error_500)
    with pytest.raises(
        DownloadError, match=r"failed after 2 attempts: .*HTTP 500 Internal Server Error"
    ):
        fetch.download("ml-100k", tmp_path / "raw", mirror=srv.url, checksums=PIN, settings=FAST)
    assert srv.requests == FAST.retries
    nothing_left(tmp_path)


# -- expansion past the expected size ---------------------------------------------------------

UDATA_SIZE = 1_979_173  # the registry's expected size of ml-100k's u.data


def test_compressed_mirror_file_expanding_past_its_size_is_refused(tmp_path):
    (tmp_path / "m/ml-100k").mkdir(parents=True)
    bomb = gzip.compress(b"1\t1\t1\t1\n" * (UDATA_SIZE // 2), compresslevel=9)  # 4x the size
    assert len(bomb) < UDATA_SIZE // 50
    (tmp_path / "m/ml-100k/u.data.gz").write_bytes(bomb)
    cap = 2 * UDATA_SIZE + (1 << 20)
    with pytest.raises(ArchiveError) as exc:
        fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(tmp_path / "m"), checksums=PIN, settings=FAST
        )
    assert str(exc.value) == (
        f"{tmp_path}/m/ml-100k/u.data.gz: more than {cap} bytes, far past its "
        "expected size; refused"
    )
    nothing_left(tmp_path)


def _forge_size(archive: bytes, name: str, declared: int) -> bytes:
    """Rewrite a stored zip member's declared uncompressed size in both of its headers."""
    data = bytearray(archive)
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, declared)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    assert name.encode() in data[central:]
    return bytes(data)


def test_zip_member_expanding_past_what_it_declares_is_refused(tmp_path):
    big = UDATA * 3000  # ~2 x the expected size, declared as the small UDATA
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", big)
    archive = _forge_size(buf.getvalue(), "ml-100k/u.data", len(UDATA))
    (tmp_path / "m/ml-100k").mkdir(parents=True)
    (tmp_path / "m/ml-100k/ml-100k.zip").write_bytes(archive)
    pins = {**PIN, "ml-100k/ml-100k.zip": "md5:" + hashlib.md5(archive).hexdigest()}
    with pytest.raises(ArchiveError) as exc:
        fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(tmp_path / "m"), checksums=pins, settings=FAST
        )
    # extraction stops at the declared size, where the member's CRC cannot match
    msg = str(exc.value)
    assert msg.startswith("ml-100k.zip:ml-100k/u.data: corrupt or truncated data after ")
    assert msg.endswith("bytes (Bad CRC-32 for file 'ml-100k/u.data')")
    nothing_left(tmp_path)


@pytest.mark.parametrize("evil", ["..\\evil.txt", "C:/evil.txt", "ml-100k/./../../evil.txt"])
def test_more_archive_member_escapes(tmp_path, evil):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", UDATA)
        zf.writestr(zipfile.ZipInfo(evil), b"boom")
    (tmp_path / "m/ml-100k").mkdir(parents=True)
    (tmp_path / "m/ml-100k/ml-100k.zip").write_bytes(buf.getvalue())
    pins = {**PIN, "ml-100k/ml-100k.zip": "md5:" + hashlib.md5(buf.getvalue()).hexdigest()}
    message = f"ml-100k.zip: member {evil!r} would escape the target directory; refused"
    with pytest.raises(ArchiveError, match=re.escape(message)):
        fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(tmp_path / "m"), checksums=pins, settings=FAST
        )
    nothing_left(tmp_path)
    assert not list(tmp_path.rglob("evil.txt"))


def test_mirror_link_pointing_outside_the_mirror_is_refused(tmp_path):
    outside = tmp_path / "secret"
    outside.write_bytes(UDATA)
    (tmp_path / "m/ml-100k").mkdir(parents=True)
    os.symlink(outside, tmp_path / "m/ml-100k/u.data")
    with pytest.raises(DownloadError) as exc:
        fetch.download(
            "ml-100k", tmp_path / "raw", mirror=str(tmp_path / "m"), checksums=PIN, settings=FAST
        )
    # refused at once: another attempt could not change the answer
    assert str(exc.value) == "mirror path 'ml-100k/u.data' escapes the mirror directory; refused"
    nothing_left(tmp_path)


# -- the download stage killed or terminated mid-transfer ----------------------------------------


def _dave_download_workspace(tmp_path: Path, params: dict) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "params.yaml").write_text(yaml.safe_dump(tiny_params(params, PIN), sort_keys=False))
    return ws


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_download_interrupted_mid_transfer_then_recovers(serve, tmp_path, params, sig, monkeypatch):
    slow = serve({"u.data": UDATA}, stall_mid_body)
    ws = _dave_download_workspace(tmp_path, params)
    monkeypatch.setenv("DAVE_DATA_MIRROR", slow.url)
    proc = dave(ws, "download", "ml-100k")
    raw = ws / "data/raw"
    assert wait_for(lambda: slow.requests > 0 and bool(list(raw.rglob(".tmp-*"))), 60, proc)
    time.sleep(0.2)  # mid-transfer: part of the file has arrived
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert not (raw / "ml-100k").exists()  # never a partial source directory
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and err.strip().splitlines()[-1].endswith(
            "terminated (SIGTERM); completed artifacts are kept, partial ones were discarded"
        )
        assert list(raw.rglob(".tmp-*")) == []  # a clean exit removes its temporaries
    else:
        assert list(raw.glob(".tmp-ml-100k.*"))  # SIGKILL cannot clean up: the next run does
    good = serve({"u.data": UDATA}, ok)
    monkeypatch.setenv("DAVE_DATA_MIRROR", good.url)
    again = dave(ws, "download", "ml-100k")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert (raw / "ml-100k/u.data").read_bytes() == UDATA
    assert list(raw.rglob(".tmp-*")) == []


def test_checksum_mismatch_through_the_cli(tmp_path, params, monkeypatch):
    (tmp_path / "m/ml-100k").mkdir(parents=True)
    bad = UDATA.replace(b"880000003", b"880000004")
    (tmp_path / "m/ml-100k/u.data").write_bytes(bad)
    ws = _dave_download_workspace(tmp_path, params)
    env = {**os.environ, "DAVE_DATA_MIRROR": str(tmp_path / "m")}
    env.pop("DAVE_PARAMS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "dave_repro.cli", "download", "ml-100k"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        f"checksum mismatch for ml-100k/u.data: expected {PIN['ml-100k/u.data']}, got sha256:"
        f"{hashlib.sha256(bad).hexdigest()}; the file was removed"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in (ws / "data/raw").iterdir()) == []


def test_nothing_listening_is_retried_then_refused(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="failed after 2 attempts: .*Connection refused"):
        fetch.download(
            "ml-100k",
            tmp_path / "raw",
            mirror=f"http://127.0.0.1:{port}/",
            checksums=PIN,
            settings=FAST,
        )
    nothing_left(tmp_path)


def test_trust_on_first_use_through_the_cli(tmp_path, params):
    """`dave download digital-music` with no pinned checksum: the first run records the file in
    the workspace's checksums.lock.json and says so; a normal re-run is up to date and rewrites
    nothing (what DVC and Snakemake see stays unchanged); a different file is refused later."""
    data = b"B000000001,A00000001,5.0,1500000000\n"
    src = tmp_path / "m/digital-music/amazon2018/Digital_Music.csv"
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    ws = _dave_download_workspace(tmp_path, params)
    env = {**os.environ, "DAVE_DATA_MIRROR": str(tmp_path / "m")}
    for var in ("DAVE_PARAMS", fetch.STRICT_ENV):
        env.pop(var, None)

    def download() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dave_repro.cli", "download", "digital-music"],
            cwd=ws,
            env=env,
            capture_output=True,
            text=True,
        )

    first = download()
    assert first.returncode == 0, first.stderr
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    line = next(ln for ln in first.stderr.splitlines() if "WARNING" in ln)
    assert line.endswith(
        "digital-music/Digital_Music.csv: no checksum is published for this file; trusting it on "
        f"first use and recording {actual} ({len(data)} bytes, from {src}) in checksums.lock.json. "
        "Review it and commit checksums.lock.json: every later download of this file is verified "
        "against it."
    )
    lock = ws / "checksums.lock.json"
    assert json.loads(lock.read_text())["files"]["digital-music/Digital_Music.csv"]["checksum"] == (
        actual
    )
    manifest = ws / "data/raw/digital-music/manifest.json"
    assert json.loads(manifest.read_text())["files"]["Digital_Music.csv"]["checksum"] == actual

    def state() -> tuple:
        return tuple((p.read_bytes(), p.stat().st_mtime_ns) for p in (lock, manifest))

    before = state()
    again = download()
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr
    assert "WARNING" not in again.stderr
    assert state() == before

    other = data.replace(b"5.0", b"1.0")
    src.write_bytes(other)
    shutil.rmtree(ws / "data/raw/digital-music")  # as on a fresh clone with the lock committed
    refused = download()
    assert refused.returncode == 2
    assert (
        "checksum mismatch for digital-music/Digital_Music.csv: expected "
        f"{actual} (recorded in checksums.lock.json on first use), got sha256:"
        f"{hashlib.sha256(other).hexdigest()}; the file was removed. This is not the file first "
        "downloaded"
    ) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert lock.read_bytes() == before[0][0]
    assert sorted(p.name for p in (ws / "data/raw").iterdir()) == []
