"""Copy one remote file to a local path, safely: timeouts, bounded retries with exponential backoff on
connection errors and HTTP 5xx/429, a pinned sha256 verified, and the destination appears only when the
copy is complete and verified (a partial download stays a `.part` file that is removed).

http(s) goes through the standard library; cloud URLs through an fsspec filesystem (what DVC's remotes use).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.error import HTTPError, URLError

from colorize.core.errors import ChecksumError, DownloadError

USER_AGENT = "colorize-fetch/0.1 (+https://dvc.org)"
CHUNK_BYTES = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Network settings from params: per-read timeout, extra attempts, first backoff (doubles each time)."""

    timeout_s: float
    retries: int
    backoff_s: float


class _Transient(Exception):
    """A failure worth another attempt (connection error, timeout, 5xx, short body)."""


def retrying(attempt: Callable[[], T], what: str, policy: RetryPolicy,
             sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run `attempt`, retrying transient failures `policy.retries` times with exponential backoff."""
    for number in range(policy.retries + 1):
        try:
            return attempt()
        except _Transient as exc:
            if number == policy.retries:
                tries = f"{number + 1} attempt" + ("s" if number else "")
                raise DownloadError(f"download failed: {what}: {exc} (after {tries})") from None
            sleep(policy.backoff_s * 2**number)
    raise AssertionError("unreachable")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(label: str, expected: str | None, actual: str) -> None:
    """Raise `ChecksumError` naming the file and both digests when a pinned digest differs."""
    if expected is not None and expected.lower() != actual:
        raise ChecksumError(f"checksum mismatch for {label}: expected sha256 {expected.lower()}, got {actual}")


@contextlib.contextmanager
def _part_file(dest: Path):
    """A `.part` sibling of `dest` that is removed unless it was renamed into place."""
    part = dest.with_name(dest.name + ".part")
    try:
        yield part
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


def download_http(url: str, dest: Path, policy: RetryPolicy, *, max_bytes: int,
                  expected_sha256: str | None = None, sleep: Callable[[float], Any] = time.sleep) -> str:
    """Download an http(s) URL to `dest`; return its sha256. Raises `DownloadError`/`ChecksumError`."""
    with _part_file(dest) as part:
        digest = retrying(lambda: _http_attempt(url, part, policy.timeout_s, max_bytes), url, policy, sleep)
        verify_sha256(url, expected_sha256, digest)
        os.replace(part, dest)
    return digest


def _http_attempt(url: str, part: Path, timeout_s: float, max_bytes: int) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            while chunk := response.read(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadError(f"download of {url} stopped: more than fetch.max_total_bytes = "
                                        f"{max_bytes} bytes")
                digest.update(chunk)
                _write(out, chunk, part)
    except HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Transient(f"timed out after {timeout_s:g} s") from None
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise DownloadError(f"download failed: {url}: {exc.reason}") from None
        raise _Transient(f"cannot connect: {exc.reason}") from None
    except TimeoutError:
        raise _Transient(f"timed out after {timeout_s:g} s (no data)") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _Transient(f"connection dropped after {received} bytes ({type(exc).__name__})") from None
    except OSError as exc:
        raise _Transient(f"connection error: {exc}") from None
    # Without chunked encoding a closed connection looks like the end of the body: check the length.
    if expected is not None and received != expected:
        raise _Transient(f"connection dropped after {received} of {expected} bytes")
    return digest.hexdigest()


def _write(out: Any, chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:  # a full disk is no network error: do not retry it
        raise DownloadError(f"cannot write {part}: {exc}") from None


# fsspec implementations raise their own types for network trouble; these mean "it will not get better".
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError,
              TypeError, NotImplementedError, ImportError)


def _fs_call(call: Callable[[], T], url: str) -> T:
    try:
        return call()
    except FileNotFoundError:
        raise DownloadError(f"download failed: {url}: not found") from None
    except _PERMANENT as exc:
        raise DownloadError(f"download failed: {url}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # botocore, aiohttp, ... errors: transient by default, retried a bounded number
        raise _Transient(f"{type(exc).__name__}: {exc}") from None


def download_fs(fs: Any, path: str, url: str, dest: Path, policy: RetryPolicy, *, max_bytes: int,
                expected_sha256: str | None = None, sleep: Callable[[float], Any] = time.sleep) -> str:
    """Copy one file of an fsspec filesystem to `dest`; return its sha256. Same guarantees as http."""
    size = retrying(lambda: _fs_call(lambda: fs.size(path), url), url, policy, sleep)
    if size is not None and size > max_bytes:
        raise DownloadError(f"download of {url} refused: {size} bytes is more than fetch.max_total_bytes = {max_bytes}")
    with _part_file(dest) as part:
        retrying(lambda: _fs_call(lambda: fs.get_file(path, str(part)), url), url, policy, sleep)
        digest = sha256_file(part)
        verify_sha256(url, expected_sha256, digest)
        os.replace(part, dest)
    return digest


def read_fs_bytes(fs: Any, path: str, url: str, policy: RetryPolicy,
                  sleep: Callable[[float], Any] = time.sleep) -> bytes:
    """Read one (image-sized) file of an fsspec filesystem into memory, with retries."""
    return retrying(lambda: _fs_call(lambda: fs.cat_file(path), url), url, policy, sleep)
