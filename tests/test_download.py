"""Downloads against a local HTTP server with scripted faults, and through an fsspec filesystem."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import fsspec
import pytest

from colorize.core.errors import ChecksumError, DownloadError
from colorize.fetch.download import RetryPolicy, download_fs, download_http, read_fs_bytes, retrying
from httpserver import Body, Drop, Slow, Status, TestServer, serve

DATA = bytes(range(256)) * 400  # 100 KiB
DIGEST = hashlib.sha256(DATA).hexdigest()
FAST = RetryPolicy(timeout_s=2.0, retries=3, backoff_s=0.0)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with serve() as running:
        yield running


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must never go through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def get(url: str, dest, policy: RetryPolicy = FAST, **kwargs) -> str:
    return download_http(url, dest, policy, max_bytes=10**7, **kwargs)


def test_download_writes_the_file_and_returns_its_digest(server, tmp_path):
    url = server.route("/a.bin", Body(DATA))
    assert get(url, tmp_path / "a.bin", expected_sha256=DIGEST) == DIGEST
    assert (tmp_path / "a.bin").read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_500_then_success_is_retried(server, tmp_path):
    url = server.route("/flaky", Status(500), Status(503), Body(DATA))
    assert get(url, tmp_path / "f") == DIGEST
    assert server.hits["/flaky"] == 3


def test_a_dropped_connection_is_retried(server, tmp_path):
    url = server.route("/drop", Drop(DATA), Body(DATA))
    assert get(url, tmp_path / "d") == DIGEST
    assert server.hits["/drop"] == 2


def test_retries_are_bounded_and_leave_no_partial_file(server, tmp_path):
    url = server.route("/always-drops", Drop(DATA))
    with pytest.raises(DownloadError) as caught:
        get(url, tmp_path / "x", RetryPolicy(2.0, 2, 0.0))
    message = str(caught.value)
    assert server.hits["/always-drops"] == 3
    assert message.startswith(f"download failed: {url}: connection dropped") and "after 3 attempts" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_a_4xx_is_not_retried(server, tmp_path):
    url = server.url("/missing")
    with pytest.raises(DownloadError, match=r"HTTP 404"):
        get(url, tmp_path / "m")
    assert server.hits["/missing"] == 1


def test_a_wrong_checksum_fails_naming_file_and_both_digests(server, tmp_path):
    url = server.route("/a.bin", Body(DATA))
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as caught:
        get(url, tmp_path / "a.bin", expected_sha256=wrong)
    assert str(caught.value) == f"checksum mismatch for {url}: expected sha256 {wrong}, got {DIGEST}"
    assert server.hits["/a.bin"] == 1  # a mismatch is not retried
    assert list(tmp_path.iterdir()) == []


def test_a_response_slower_than_the_timeout_fails(server, tmp_path):
    url = server.route("/slow", Slow(DATA, delay_s=5.0))
    started = time.perf_counter()
    with pytest.raises(DownloadError, match=r"timed out after 0.2 s.*after 2 attempts"):
        get(url, tmp_path / "s", RetryPolicy(timeout_s=0.2, retries=1, backoff_s=0.0))
    # Without the timeout the first attempt alone would last the server's whole 5 s delay.
    assert time.perf_counter() - started < 4.5
    assert list(tmp_path.iterdir()) == []


def test_a_slow_response_then_a_fast_one_succeeds(server, tmp_path):
    url = server.route("/slow-once", Slow(DATA, delay_s=5.0), Body(DATA))
    assert get(url, tmp_path / "s", RetryPolicy(timeout_s=0.2, retries=1, backoff_s=0.0)) == DIGEST


def test_backoff_doubles(server, tmp_path):
    url = server.route("/down", Status(502))
    waits: list[float] = []
    with pytest.raises(DownloadError, match="HTTP 502"):
        get(url, tmp_path / "x", RetryPolicy(2.0, 3, 0.25), sleep=waits.append)
    assert waits == [0.25, 0.5, 1.0]


def test_a_refused_connection_is_a_clear_error(tmp_path):
    with serve() as stopped:
        url = stopped.url("/gone")
    with pytest.raises(DownloadError, match=r"cannot connect.*after 2 attempts"):
        get(url, tmp_path / "x", RetryPolicy(1.0, 1, 0.0))


def test_a_body_over_the_cap_is_refused(server, tmp_path):
    url = server.route("/big", Body(DATA))
    with pytest.raises(DownloadError, match="more than fetch.max_total_bytes = 1000 bytes"):
        download_http(url, tmp_path / "b", FAST, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_retrying_passes_non_transient_errors_through():
    calls = []

    def attempt():
        calls.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError):
        retrying(attempt, "x", FAST)
    assert len(calls) == 1


@pytest.fixture
def memory_fs():
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/data/a.bin", DATA)
    yield fs
    fs.rm("/bucket", recursive=True)


def test_fsspec_download_copies_and_verifies(memory_fs, tmp_path):
    url = "memory://bucket/data/a.bin"
    assert download_fs(memory_fs, "/bucket/data/a.bin", url, tmp_path / "a", FAST, max_bytes=10**7,
                       expected_sha256=DIGEST) == DIGEST
    assert (tmp_path / "a").read_bytes() == DATA
    with pytest.raises(ChecksumError, match=f"checksum mismatch for {url}: expected sha256 1{'0' * 63}"):
        download_fs(memory_fs, "/bucket/data/a.bin", url, tmp_path / "b", FAST, max_bytes=10**7,
                    expected_sha256="1" + "0" * 63)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_fsspec_missing_file_and_oversized_file(memory_fs, tmp_path):
    with pytest.raises(DownloadError, match="memory://bucket/nope: not found"):
        download_fs(memory_fs, "/bucket/nope", "memory://bucket/nope", tmp_path / "n", FAST, max_bytes=10**7)
    with pytest.raises(DownloadError, match="more than fetch.max_total_bytes = 10"):
        download_fs(memory_fs, "/bucket/data/a.bin", "memory://x", tmp_path / "n", FAST, max_bytes=10)


def test_fsspec_transient_errors_are_retried(tmp_path):
    class Flaky:
        calls = 0

        def cat_file(self, path):
            Flaky.calls += 1
            if Flaky.calls < 3:
                raise ConnectionResetError("reset by peer")
            return DATA

    assert read_fs_bytes(Flaky(), "/x", "s3://b/x", FAST) == DATA
    assert Flaky.calls == 3
