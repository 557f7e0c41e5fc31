"""The download stage: mirrors (directory and HTTP), compressed and split files, checksums,
archives, and a server that breaks: every failure is a clear error and leaves no file behind."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import shutil
import socketserver
import threading
import time
import zipfile
from pathlib import Path

import pytest

from dave_repro.data import fetch
from dave_repro.errors import ArchiveError, ChecksumError, DownloadError, SourceUnavailableError

FAST = fetch.FetchSettings(timeout=0.5, retries=2, backoff=0.01)
UDATA = b"".join(
    b"%d\t%d\t%d\t%d\n" % (u, i, 3, 880000000 + i) for u in range(1, 4) for i in range(1, 30)
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


PIN = {"ml-100k/u.data": sha(UDATA)}


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


def test_unpinned_file_is_refused_with_its_hash(tmp_path):
    p = tmp_path / "m" / "digital-music" / "amazon2018" / "Digital_Music.csv"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"B1,A1,5.0,1\n")
    with pytest.raises(ChecksumError) as exc:
        fetch.download("digital-music", tmp_path / "raw", mirror=str(tmp_path / "m"), settings=FAST)
    assert sha(b"B1,A1,5.0,1\n") in str(exc.value) and "data.checksums" in str(exc.value)
    assert not (tmp_path / "raw").exists()


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
