"""Checkpoint resolution against a local HTTP server, and loading with architecture checks."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from lit_gradcam.segmenters.checkpoints import (
    CACHE_ENV,
    SAM_CHECKPOINTS,
    CheckpointArchitectureError,
    CheckpointDownloadError,
    CheckpointSpec,
    default_cache_dir,
    guess_model_type,
    load_sam,
    resolve_checkpoint,
)

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
        elif self.path.startswith("/files/"):
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


def test_download_verifies_and_caches(server: Server, tmp_path: Path) -> None:
    registry = _registry(f"{server.base}/files/sam_tiny.pth")
    path = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry)
    assert path == tmp_path / "sam_tiny.pth"
    assert path.read_bytes() == PAYLOAD
    again = resolve_checkpoint("tiny", cache_dir=tmp_path, registry=registry)
    assert again == path
    assert server.hits["/files/sam_tiny.pth"] == 1  # the second call found the cached file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sam_tiny.pth"]


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
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sam_tiny.pth"
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


def test_official_registry() -> None:
    assert set(SAM_CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}
    assert SAM_CHECKPOINTS["vit_b"].filename == "sam_vit_b_01ec64.pth"
    assert all(len(spec.sha256) == 64 for spec in SAM_CHECKPOINTS.values())


def test_load_sam_round_trips_a_state_dict(tmp_path: Path, make_tiny_sam) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(make_tiny_sam(seed=1).state_dict(), path)
    sam = load_sam("tiny", path, registry={"tiny": make_tiny_sam})
    expected = make_tiny_sam(seed=1).state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in sam.state_dict().items())
    assert not sam.training


def test_load_sam_names_file_and_both_architectures(tmp_path: Path, make_tiny_sam) -> None:
    path = tmp_path / "narrow.pth"
    state = make_tiny_sam(embed_dim=16).state_dict()
    state["image_encoder.patch_embed.proj.weight"] = torch.zeros(768, 3, 16, 16)  # as vit_b's
    torch.save(state, path)
    with pytest.raises(CheckpointArchitectureError) as info:
        load_sam("tiny", path, registry={"tiny": make_tiny_sam})
    message = str(info.value)
    assert str(path) in message and "'tiny'" in message and "looks like a 'vit_b'" in message


def test_load_sam_rejects_non_state_dicts(tmp_path: Path, make_tiny_sam) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointArchitectureError, match="garbage.pth"):
        load_sam("tiny", path, registry={"tiny": make_tiny_sam})


def test_guess_model_type() -> None:
    key = "image_encoder.patch_embed.proj.weight"
    assert guess_model_type({key: torch.empty(1024, 3, 16, 16)}) == "vit_l"
    assert guess_model_type({key: torch.empty(32, 3, 16, 16)}) is None
    assert guess_model_type({}) is None
