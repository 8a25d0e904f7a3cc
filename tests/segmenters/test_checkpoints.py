"""Checkpoint resolution against a local HTTP server: cache, download, verification, DDP."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from lit_gradcam.segmenters import integrity
from lit_gradcam.segmenters.checkpoints import (
    CACHE_ENV,
    SAM_CHECKPOINTS,
    CheckpointDownloadError,
    CheckpointSpec,
    default_cache_dir,
    resolve_checkpoint,
)
from lit_gradcam.segmenters.integrity import STAMP_SUFFIX, CheckpointIntegrityError
from lit_gradcam.segmenters.sam import SamSegmenter

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Server:
    base: str
    hits: Counter


class _Handler(BaseHTTPRequestHandler):
    hits: Counter

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.hits[self.path] += 1
        if self.path.startswith("/truncated"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) * 2))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.close_connection = True
        elif self.path.startswith(("/files/", "/slow/")):
            if self.path.startswith("/slow/"):
                time.sleep(0.5)  # long enough for a second downloader to start meanwhile
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        else:
            self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 (any free port), stopped after the test."""
    hits: Counter = Counter()
    handler = type("Handler", (_Handler,), {"hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _registry(url: str, sha256: str = PAYLOAD_SHA) -> dict[str, CheckpointSpec]:
    return {"tiny": CheckpointSpec(url, sha256)}


def _unreachable_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/sam_tiny.pth"


def test_download_verifies_and_caches(server: Server, tmp_path: Path) -> None:
    registry = _registry(f"{server.base}/files/sam_tiny.pth")
    path = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry)
    assert path == tmp_path / "sam_tiny.pth"
    assert path.read_bytes() == PAYLOAD
    again = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry)
    assert again == path
    assert server.hits["/files/sam_tiny.pth"] == 1  # the second call found the cached file
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + STAMP_SUFFIX]


def test_cache_dir_defaults_to_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_hash_mismatch_deletes_download(server: Server, tmp_path: Path) -> None:
    registry = _registry(f"{server.base}/files/sam_tiny.pth", sha256="0" * 64)
    with pytest.raises(CheckpointDownloadError) as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry, progress=False)
    message = str(info.value)
    assert "expected " + "0" * 64 in message and f"got {PAYLOAD_SHA}" in message
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_leaves_nothing(server: Server, tmp_path: Path) -> None:
    url = f"{server.base}/truncated/sam_tiny.pth"
    with pytest.raises(CheckpointDownloadError, match="truncated") as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=_registry(url), progress=False)
    assert f"{len(PAYLOAD)} of {2 * len(PAYLOAD)} bytes" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_url_and_target(server: Server, tmp_path: Path) -> None:
    url = f"{server.base}/missing/sam_tiny.pth"
    with pytest.raises(CheckpointDownloadError, match="404") as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=_registry(url), progress=False)
    assert url in str(info.value) and str(tmp_path / "sam_tiny.pth") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_says_where_to_put_the_file(tmp_path: Path) -> None:
    url = _unreachable_url()
    with pytest.raises(CheckpointDownloadError) as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=_registry(url), progress=False)
    message = str(info.value)
    assert f"could not download {url}" in message
    assert f"save it as {tmp_path / 'sam_tiny.pth'}" in message
    assert list(tmp_path.iterdir()) == []


def test_explicit_path_is_used_as_is(tmp_path: Path) -> None:
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert resolve_checkpoint("vit_b", given) == given
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        resolve_checkpoint("vit_b", tmp_path / "nope.pth")


def test_unknown_model_type(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no official checkpoint for model_type 'vit_x'"):
        resolve_checkpoint("vit_x", cache_dir=tmp_path)


@pytest.fixture
def hash_calls(monkeypatch) -> list[Path]:
    """The files `integrity.sha256_file` hashed during the test (it still hashes them)."""
    calls: list[Path] = []
    real = integrity.sha256_file

    def spy(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(integrity, "sha256_file", spy)
    return calls


def _stamp(path: Path) -> dict:
    return json.loads(path.with_name(path.name + STAMP_SUFFIX).read_text())


def test_download_is_stamped_and_never_hashed_again(
    server: Server, tmp_path: Path, hash_calls: list[Path]
) -> None:
    registry = _registry(f"{server.base}/files/sam_tiny.pth")
    path = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry, progress=False)
    stamp = _stamp(path)
    assert stamp["sha256"] == PAYLOAD_SHA and stamp["size"] == len(PAYLOAD)
    assert stamp["mtime_ns"] == path.stat().st_mtime_ns
    for _ in range(2):
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry, progress=False)
    assert hash_calls == []  # hashed while downloading, then trusted by the stamp


def test_modified_cached_file_is_rehashed_and_rejected(
    server: Server, tmp_path: Path, hash_calls: list[Path]
) -> None:
    registry = _registry(f"{server.base}/files/sam_tiny.pth")
    path = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry, progress=False)
    corrupted = b"\0" * len(PAYLOAD)  # same size: only the mtime tells the stamp it is stale
    path.write_bytes(corrupted)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(CheckpointIntegrityError) as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry, progress=False)
    assert hash_calls == [path]
    message = str(info.value)
    assert str(path) in message and PAYLOAD_SHA in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert "Delete it" in message and f"{server.base}/files/sam_tiny.pth" in message
    assert server.hits["/files/sam_tiny.pth"] == 1  # reported, not silently fetched again


def test_file_put_in_the_cache_by_hand_is_hashed_once_offline(
    tmp_path: Path, hash_calls: list[Path]
) -> None:
    path = tmp_path / "sam_tiny.pth"
    path.write_bytes(PAYLOAD)
    registry = _registry(_unreachable_url())
    for _ in range(3):
        assert resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry) == path
    assert hash_calls == [path]
    assert _stamp(path)["sha256"] == PAYLOAD_SHA


def test_truncated_file_in_the_cache_names_both_hashes_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "sam_tiny.pth"
    path.write_bytes(PAYLOAD[:1000])
    url = _unreachable_url()
    with pytest.raises(CheckpointIntegrityError) as info:
        resolve_checkpoint("tiny", cache_dir=tmp_path, registry=_registry(url))
    message = str(info.value)
    assert str(path) in message and f"expected {PAYLOAD_SHA}" in message
    assert hashlib.sha256(PAYLOAD[:1000]).hexdigest() in message
    assert f"download {url} and save it as {path}" in message
    assert not path.with_name(path.name + STAMP_SUFFIX).exists()


def test_user_copy_of_an_official_file_is_checked_once(
    tmp_path: Path, hash_calls: list[Path]
) -> None:
    registry = _registry(_unreachable_url())
    given = tmp_path / "mine" / "sam_tiny.pth"
    given.parent.mkdir()
    given.write_bytes(PAYLOAD)
    for _ in range(2):
        assert resolve_checkpoint("tiny", given, registry=registry) == given
    assert hash_calls == [given] and _stamp(given)["sha256"] == PAYLOAD_SHA


def test_corrupted_user_copy_of_an_official_file_gets_a_clear_error(tmp_path: Path) -> None:
    given = tmp_path / "sam_vit_b_01ec64.pth"
    given.write_bytes(b"half a download")
    segmenter = SamSegmenter("vit_b", checkpoint=str(given))
    with pytest.raises(CheckpointIntegrityError) as info:
        segmenter.model  # noqa: B018 (the property loads the checkpoint)
    message = str(info.value)
    assert str(given) in message and f"expected {SAM_CHECKPOINTS['vit_b'].sha256}" in message
    assert hashlib.sha256(b"half a download").hexdigest() in message
    assert SAM_CHECKPOINTS["vit_b"].url in message and "another name" in message


def test_users_own_weights_are_recorded_and_rehashed_when_changed(
    tmp_path: Path, hash_calls: list[Path]
) -> None:
    given = tmp_path / "finetuned.pth"
    given.write_bytes(b"weights")
    resolve_checkpoint("vit_b", given)
    resolve_checkpoint("vit_b", given)
    assert hash_calls == [given]
    assert _stamp(given)["sha256"] == hashlib.sha256(b"weights").hexdigest()
    given.write_bytes(b"better weights")  # a new size: the stamp is stale
    resolve_checkpoint("vit_b", given)
    assert hash_calls == [given, given]
    assert _stamp(given)["sha256"] == hashlib.sha256(b"better weights").hexdigest()


def test_unwritable_stamp_warns_and_still_verifies(tmp_path: Path) -> None:
    given = tmp_path / "sam_tiny.pth"
    given.write_bytes(PAYLOAD)
    given.with_name(given.name + STAMP_SUFFIX).mkdir()  # in the way of the stamp, even for root
    with pytest.warns(UserWarning, match="hashed again on every load"):
        assert resolve_checkpoint("tiny", given, registry=_registry(_unreachable_url())) == given


_RANK = """
import sys
import torch.distributed as dist
from lit_gradcam.segmenters.checkpoints import CheckpointSpec, resolve_checkpoint

dist.init_process_group("gloo")
registry = {"tiny": CheckpointSpec(sys.argv[1], sys.argv[2])}
print(resolve_checkpoint("tiny", cache_dir=sys.argv[3], registry=registry, progress=False))
dist.destroy_process_group()
"""


def test_ddp_ranks_of_a_node_download_once(server: Server, tmp_path: Path) -> None:
    """Two gloo processes of one node resolve together: one downloads, the other waits."""
    url = f"{server.base}/slow/sam_tiny.pth"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ranks = []
    for rank in range(2):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        args = [sys.executable, "-c", _RANK, url, PAYLOAD_SHA, str(tmp_path)]
        ranks.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=120)[0].strip() for process in ranks]
    assert [process.returncode for process in ranks] == [0, 0]
    assert outputs == [str(tmp_path / "sam_tiny.pth")] * 2
    assert server.hits["/slow/sam_tiny.pth"] == 1
    assert _stamp(tmp_path / "sam_tiny.pth")["sha256"] == PAYLOAD_SHA


def test_official_registry() -> None:
    assert set(SAM_CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}
    assert SAM_CHECKPOINTS["vit_b"].filename == "sam_vit_b_01ec64.pth"
    assert all(len(spec.sha256) == 64 for spec in SAM_CHECKPOINTS.values())
