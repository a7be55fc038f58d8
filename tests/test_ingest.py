"""run_fetch end to end: a messy folder, archives, builtin, http(s) and manifests, cloud URLs, failures,
and the fetch stage as a process (one-line errors; SIGKILL never leaves a partial data/raw)."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from colorize.core.errors import FetchError
from colorize.core.params import FetchParams, validate
from colorize.core.rawstore import iter_raw, read_manifest
from colorize.fetch import sources
from colorize.fetch.ingest import REASONS, run_fetch
from httpserver import Body, Slow, Status, TestServer, serve
from test_images import animated_gif, bomb_png, colourful, encode, gray_as_rgb, png16
from workspace import descendants

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "stages" / "fetch.py"


def fetch_params(real_params: dict[str, Any], **overrides: Any) -> FetchParams:
    return validate("fetch", {**real_params["fetch"], **overrides}, FetchParams)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with serve() as running:
        yield running


def decisions(manifest: dict[str, Any]) -> dict[str, str]:
    """source -> 'accepted', 'duplicate' or the skip reason."""
    result = {entry["source"]: "accepted" for entry in manifest["accepted"]}
    result.update({dup: "duplicate" for entry in manifest["accepted"] for dup in entry["duplicates"]})
    result.update({entry["source"]: entry["reason"] for entry in manifest["skipped"]})
    return result


def check_consistent(raw_dir: Path, originals: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The invariants every data/raw must meet; returns its manifest."""
    manifest = read_manifest(raw_dir)
    accepted, counts = manifest["accepted"], manifest["counts"]
    ids = [entry["id"] for entry in accepted]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert counts["accepted"] == len(accepted) and counts["skipped"] == len(manifest["skipped"])
    assert counts["duplicates"] == sum(len(entry["duplicates"]) for entry in accepted)
    assert counts["found"] == counts["accepted"] + counts["skipped"] + counts["duplicates"]
    assert sum(counts["skipped_by_reason"].values()) == counts["skipped"]
    assert set(counts["skipped_by_reason"]) == set(REASONS)
    stored = dict(iter_raw(raw_dir))
    assert list(stored) == ids
    for entry in accepted:
        assert hashlib.sha256(stored[entry["id"]]).hexdigest() == entry["sha256"]
        assert len(stored[entry["id"]]) == entry["bytes"]
        assert not entry["source"].startswith("/") and "/tmp" not in entry["source"]
        if originals is not None:
            assert stored[entry["id"]] == originals[entry["source"]]
    return manifest


# ---------------------------------------------------------------- the messy folder

def plant_messy_folder(root: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    """Write a folder with one file per case; return source -> expected decision, and source -> bytes."""
    expected: dict[str, str] = {}
    contents: dict[str, bytes] = {}

    def put(rel: str, data: bytes, decision: str | None) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if decision is not None:
            expected[rel], contents[rel] = decision, data

    rgba = np.dstack([colourful(24, 24, 5), np.linspace(0, 255, 576, dtype=np.uint8).reshape(24, 24)])
    palette = Image.fromarray(colourful(20, 20, 6)).convert("P")
    exif = Image.Exif()
    exif[0x0112] = 6
    truncated = encode(colourful(64, 64, 7))
    damaged = bytearray(encode(colourful(32, 32, 8)))
    at = damaged.index(b"IDAT") + 6
    damaged[at:at + 38] = bytes(38)
    duplicate = colourful(30, 20, 9)
    zipped = root.parent / "bundle.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("x.png", encode(colourful(16, 16, 10)))

    put("Urlaub 2024/Strand Ölbild.JPG", encode(colourful(40, 60, 1), "JPEG", quality=90), "accepted")
    put("nested/deeper/still/deep.png", encode(colourful(16, 16, 2)), "accepted")
    put("spaces in name.PNG", encode(colourful(17, 19, 3)), "accepted")
    put("日本語の写真.webp", encode(colourful(30, 30, 4), "WEBP", lossless=True), "accepted")
    put("alpha.png", encode(Image.fromarray(rgba, "RGBA")), "accepted")
    put("palette.gif", encode(palette, "GIF", transparency=0), "accepted")
    put("cmyk.tif", encode(Image.new("CMYK", (12, 12), (0, 200, 255, 0)), "TIFF"), "accepted")
    put("animated.gif", animated_gif([(255, 0, 0), (0, 0, 255)]), "accepted")
    put("rotated.png", encode(Image.fromarray(colourful(10, 30, 11)), exif=exif), "accepted")
    put("wide.png", encode(colourful(20, 7000, 12)), "accepted")
    put("dupes/first.png", encode(duplicate), "accepted")
    put("dupes/same pixels.bmp", encode(duplicate, "BMP"), "duplicate")
    put("dupes/zz same bytes.png", encode(duplicate), "duplicate")
    put("empty.jpg", b"", "empty_file")
    put("truncated.png", truncated[: len(truncated) // 2], "truncated")
    put("corrupt.png", bytes(damaged), "corrupt")
    put("page.jpg", b"<!doctype html><html><body>not found</body></html>", "not_an_image")
    put("readme.txt", b"holiday pictures", "unknown_format")
    put("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic", "unknown_format")
    put("no-extension", encode(colourful(16, 16, 13)), "unknown_format")
    put("bomb.png", bomb_png(100_000, 100_000), "decompression_bomb")
    put("tiny.png", encode(colourful(1, 1, 14)), "too_small")
    put("gray.png", encode(gray_as_rgb(17, 16)[..., 0]), "no_colour")
    put("gray-as-rgb.png", encode(gray_as_rgb(16, 16)), "no_colour")
    put("gray16.png", png16(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257), "no_colour")
    put("bundle.zip", zipped.read_bytes(), "nested_archive")
    # OS junk and hidden files: never candidates, never counted
    for junk in (".DS_Store", "._alpha.png", "__MACOSX/._x.png", ".hidden/secret.png", "Thumbs.db", "desktop.ini",
                 "nested/.thumbnails/t.png"):
        put(junk, encode(colourful(16, 16, 15)), None)
    os.symlink("nowhere.png", root / "dangling.png")
    expected["dangling.png"] = "unreadable"
    for i in range(24):  # enough files that a two-worker run really uses the process pool
        put(f"many/img-{i:02d}.png", encode(colourful(12, 12, 100 + i)), "accepted")
    return expected, contents


@pytest.fixture
def messy(tmp_path) -> tuple[Path, dict[str, str], dict[str, bytes]]:
    root = tmp_path / "messy photos"
    root.mkdir()
    expected, contents = plant_messy_folder(root)
    return root, expected, contents


def test_messy_folder_every_file_is_decided_as_planted(messy, tmp_path, real_params):
    root, expected, contents = messy
    metrics = tmp_path / "metrics" / "fetch.json"
    counts = run_fetch(fetch_params(real_params, source=str(root)), tmp_path / "raw", metrics, progress=False,
                       workers=2)
    manifest = check_consistent(tmp_path / "raw", contents)
    assert decisions(manifest) == expected
    reasons = collections.Counter(v for v in expected.values() if v not in ("accepted", "duplicate"))
    assert counts["skipped_by_reason"] == {r: reasons.get(r, 0) for r in REASONS}
    assert counts["found"] == len(expected) and counts["duplicates"] == 2
    assert json.loads(metrics.read_text()) == {k: counts[k] for k in
                                               ("found", "accepted", "skipped", "duplicates", "skipped_by_reason")}
    by_source = {entry["source"]: entry for entry in manifest["accepted"]}
    assert sorted(by_source["dupes/first.png"]["duplicates"]) == ["dupes/same pixels.bmp", "dupes/zz same bytes.png"]
    assert (by_source["rotated.png"]["width"], by_source["rotated.png"]["height"]) == (10, 30)
    assert (by_source["cmyk.tif"]["mode"], by_source["cmyk.tif"]["format"]) == ("CMYK", "TIFF")
    assert (by_source["wide.png"]["width"], by_source["wide.png"]["height"]) == (7000, 20)
    with tarfile.open(tmp_path / "raw" / by_source["Urlaub 2024/Strand Ölbild.JPG"]["shard"]) as shard:
        assert by_source["Urlaub 2024/Strand Ölbild.JPG"]["id"] + ".jpg" in shard.getnames()
    for entry in manifest["skipped"]:
        assert entry["detail"] and "\n" not in entry["detail"]


def test_keep_gray_and_min_side_change_the_decisions(messy, tmp_path, real_params):
    root, expected, _ = messy
    run_fetch(fetch_params(real_params, source=str(root), keep_gray=True, min_side=1), tmp_path / "raw", None,
              progress=False, workers=1)
    got = decisions(read_manifest(tmp_path / "raw"))
    for name in ("gray.png", "gray-as-rgb.png", "gray16.png", "tiny.png"):
        assert got[name] == "accepted"


def test_output_is_byte_identical_across_runs_and_worker_counts(messy, tmp_path, real_params):
    root, _, _ = messy
    params = fetch_params(real_params, source=str(root), shard_bytes=20_000)
    outputs = []
    for name, workers in (("a", 1), ("b", 2), ("c", 2)):
        run_fetch(params, tmp_path / name, tmp_path / f"{name}.json", progress=False, workers=workers)
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert len(outputs[0]) > 3  # several shards
    assert outputs[0] == outputs[1] == outputs[2]
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_a_moved_folder_gives_the_same_manifest(messy, tmp_path, real_params):
    root, _, _ = messy
    run_fetch(fetch_params(real_params, source=str(root)), tmp_path / "raw1", None, progress=False, workers=1)
    moved = root.rename(tmp_path / "elsewhere")
    run_fetch(fetch_params(real_params, source=str(moved)), tmp_path / "raw2", None, progress=False, workers=1)
    assert (tmp_path / "raw1" / "manifest.json").read_bytes() == (tmp_path / "raw2" / "manifest.json").read_bytes()


# ---------------------------------------------------------------- archives, builtin, local manifests

def test_zip_and_tar_gz_sources(tmp_path, real_params):
    good, gray = encode(colourful(16, 16, 1)), encode(gray_as_rgb(16, 16))
    entries = {"photos/A.PNG": good, "photos/gray.png": gray, "__MACOSX/photos/._A.PNG": b"junk",
               "photos/.DS_Store": b"junk", "photos/inner.zip": b"PK", "../escape.png": good,
               "./more/b.png": encode(colourful(16, 16, 2))}  # as `tar -C folder .` writes names
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    with tarfile.open(tmp_path / "set.tgz", "w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    want = {"photos/A.PNG": "accepted", "photos/gray.png": "no_colour", "photos/inner.zip": "nested_archive",
            "../escape.png": "unsafe_archive_entry", "more/b.png": "accepted"}
    for name in ("set.zip", "set.tgz"):
        run_fetch(fetch_params(real_params, source=str(tmp_path / name)), tmp_path / f"raw-{name}",
                  None, progress=False, workers=1)
        assert decisions(check_consistent(tmp_path / f"raw-{name}")) == want


def test_builtin_source(tmp_path, real_params):
    counts = run_fetch(fetch_params(real_params, source="builtin", builtin={"count": 6, "seed": 0, "style": "pika"}),
                       tmp_path / "raw", None, progress=False, workers=1)
    manifest = check_consistent(tmp_path / "raw")
    assert counts["found"] == 6 and counts["accepted"] >= 1
    assert all(entry["source"].startswith("builtin:") for entry in manifest["accepted"])


def test_builtin_uses_the_generator_with_its_params(tmp_path, real_params, monkeypatch):
    import colorize.fetch.synthetic

    calls = []

    def fake(count, seed, style):
        calls.append((count, seed, style))
        for i in range(count):
            yield f"fake-{i}.png", encode(colourful(16, 16, seed + i))

    monkeypatch.setattr(colorize.fetch.synthetic, "generate_builtin", fake)
    params = fetch_params(real_params, source="builtin", builtin={"count": 3, "seed": 7, "style": "blob"})
    run_fetch(params, tmp_path / "raw", None, progress=False, workers=1)
    assert calls == [(3, 7, "blob")]
    assert sorted(decisions(read_manifest(tmp_path / "raw"))) == ["builtin:fake-0.png", "builtin:fake-1.png",
                                                                  "builtin:fake-2.png"]


def test_local_manifest_with_relative_paths(tmp_path, real_params):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(encode(colourful(16, 16, 1)))
    (tmp_path / "list.csv").write_text("url,sha256\nimgs/a.png,\nimgs/missing.png,\n")
    with pytest.raises(FetchError, match="imgs/missing.png: no such file"):
        run_fetch(fetch_params(real_params, source=str(tmp_path / "list.csv")), tmp_path / "raw", None,
                  progress=False, workers=1)
    run_fetch(fetch_params(real_params, source=str(tmp_path / "list.csv"), on_error="skip"), tmp_path / "raw", None,
              progress=False, workers=1)
    assert decisions(read_manifest(tmp_path / "raw")) == {"imgs/a.png": "accepted",
                                                          "imgs/missing.png": "download_failed"}


def test_pinned_sha256_of_a_local_archive(tmp_path, real_params):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("a.png", encode(colourful(16, 16, 1)))
    digest = hashlib.sha256((tmp_path / "a.zip").read_bytes()).hexdigest()
    run_fetch(fetch_params(real_params, source=str(tmp_path / "a.zip"), sha256=digest), tmp_path / "raw", None,
              progress=False)
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source=str(tmp_path / "a.zip"), sha256="a" * 64), tmp_path / "raw", None,
                  progress=False)
    assert str(caught.value) == f"checksum mismatch for {tmp_path / 'a.zip'}: expected sha256 {'a' * 64}, got {digest}"


# ---------------------------------------------------------------- http(s)

def png_routes(server: TestServer, n: int, prefix: str = "/img", seed: int = 0) -> list[str]:
    return [server.route(f"{prefix}-{i}.png", Body(encode(colourful(16, 16, seed + i)), "image/png"))
            for i in range(n)]


def test_http_image_archive_and_extensionless_url(server, tmp_path, real_params):
    image = encode(colourful(16, 16, 1))
    url = server.route("/one.png", Body(image, "image/png"))
    run_fetch(fetch_params(real_params, source=url), tmp_path / "a", None, progress=False)
    assert decisions(read_manifest(tmp_path / "a")) == {url: "accepted"}

    bare = server.route("/image", Body(encode(colourful(16, 16, 2), "JPEG")))
    run_fetch(fetch_params(real_params, source=bare + "?id=3"), tmp_path / "b", None, progress=False)
    entry = read_manifest(tmp_path / "b")["accepted"][0]
    assert entry["format"] == "JPEG"
    with tarfile.open(tmp_path / "b" / entry["shard"]) as shard:
        assert shard.getnames() == [entry["id"] + ".jpg"]

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("x/1.png", "x/2.png"):
            info = tarfile.TarInfo(name)
            info.size = len(image)
            archive.addfile(info, io.BytesIO(image))
    archive_url = server.route("/set.tar.gz", Body(buffer.getvalue()))
    run_fetch(fetch_params(real_params, source=archive_url), tmp_path / "c", None, progress=False)
    assert decisions(read_manifest(tmp_path / "c")) == {"x/1.png": "accepted", "x/2.png": "duplicate"}


@pytest.mark.parametrize("style", ["lines", "csv", "json"])
def test_http_manifest_formats_with_checksums(server, tmp_path, real_params, style):
    urls = png_routes(server, 5)
    digests = [hashlib.sha256(encode(colourful(16, 16, i))).hexdigest() for i in range(5)]
    flaky = server.route("/flaky.png", Status(500), Body(encode(colourful(16, 16, 50))))
    if style == "lines":
        text = "# five images\n" + "\n".join(urls) + f"\n\n{flaky}\n"
    elif style == "csv":
        text = "url,sha256\n" + "".join(f"{u},{d}\n" for u, d in zip(urls, digests)) + f"{flaky},\n"
    else:
        text = json.dumps({"images": [{"url": u, "sha256": d} for u, d in zip(urls, digests)] + [flaky]})
    manifest_url = server.route(f"/list.{ {'lines': 'txt', 'csv': 'csv', 'json': 'json'}[style] }",
                                Body(text.encode(), "text/plain"))
    counts = run_fetch(fetch_params(real_params, source=manifest_url, backoff_s=0), tmp_path / "raw", None,
                       progress=False)
    assert counts["accepted"] == 6 and server.hits["/flaky.png"] == 2
    assert set(decisions(check_consistent(tmp_path / "raw"))) == set(urls) | {flaky}


def test_a_relative_manifest_entry_is_resolved_against_the_manifest(server, tmp_path, real_params):
    server.route("/sets/a.png", Body(encode(colourful(16, 16, 1))))
    url = server.route("/sets/list.txt", Body(b"a.png\n"))
    run_fetch(fetch_params(real_params, source=url), tmp_path / "raw", None, progress=False)
    assert decisions(read_manifest(tmp_path / "raw")) == {server.url("/sets/a.png"): "accepted"}


def test_a_dead_url_fails_the_run_by_default_or_is_skipped(server, tmp_path, real_params):
    urls = png_routes(server, 6)
    dead = server.route("/dead.png", Status(503))
    listing = server.route("/list.txt", Body("\n".join(urls[:3] + [dead] + urls[3:]).encode()))
    raw = tmp_path / "raw"
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source=listing, retries=2, backoff_s=0), raw, None, progress=False)
    assert str(caught.value) == f"download failed: {dead}: HTTP 503 Service Unavailable (after 3 attempts)"
    assert not raw.exists() and not list(tmp_path.glob(".tmp*"))  # no partial download lands anywhere

    counts = run_fetch(fetch_params(real_params, source=listing, retries=1, backoff_s=0, on_error="skip"), raw, None,
                       progress=False)
    assert counts["accepted"] == 6 and counts["skipped_by_reason"]["download_failed"] == 1
    skipped = read_manifest(raw)["skipped"]
    assert skipped == [{"source": dead, "reason": "download_failed",
                        "detail": f"download failed: {dead}: HTTP 503 Service Unavailable (after 2 attempts)"}]


def test_a_wrong_checksum_in_a_manifest_fails_even_when_skipping(server, tmp_path, real_params):
    url = png_routes(server, 1)[0]
    actual = hashlib.sha256(encode(colourful(16, 16, 0))).hexdigest()
    listing = server.route("/list.csv", Body(f"{url},{'b' * 64}\n".encode()))
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source=listing, on_error="skip"), tmp_path / "raw", None, progress=False)
    assert str(caught.value) == f"checksum mismatch for {url}: expected sha256 {'b' * 64}, got {actual}"


def test_a_failed_run_keeps_the_previous_raw_data(server, tmp_path, real_params):
    raw = tmp_path / "data" / "raw"
    run_fetch(fetch_params(real_params, source=png_routes(server, 1)[0]), raw, None, progress=False)
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    slow = server.route("/slow.zip", Slow(b"PK", delay_s=5))
    with pytest.raises(FetchError, match="timed out"):
        run_fetch(fetch_params(real_params, source=slow, timeout_s=0.1, retries=0), raw, None, progress=False)
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before
    assert sorted(p.name for p in raw.parent.iterdir()) == ["raw"]


# ---------------------------------------------------------------- cloud URLs (through fsspec)

@pytest.fixture
def memory_bucket(monkeypatch):
    """fsspec's in-memory filesystem standing in for a bucket (the code path of s3://, gs://, ...)."""
    import fsspec

    monkeypatch.setitem(sources.CLOUD_SCHEMES, "memory", "memory")
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/bucket", recursive=True)


def test_cloud_folder_and_cloud_archive(memory_bucket, tmp_path, real_params):
    memory_bucket.pipe("/bucket/photos/a.png", encode(colourful(16, 16, 1)))
    memory_bucket.pipe("/bucket/photos/sub/B.JPG", encode(colourful(16, 16, 2), "JPEG"))
    memory_bucket.pipe("/bucket/photos/.DS_Store", b"junk")
    memory_bucket.pipe("/bucket/photos/empty.png", b"")
    run_fetch(fetch_params(real_params, source="memory://bucket/photos"), tmp_path / "a", None, progress=False)
    assert decisions(check_consistent(tmp_path / "a")) == {"a.png": "accepted", "sub/B.JPG": "accepted",
                                                           "empty.png": "empty_file"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("c.png", encode(colourful(16, 16, 3)))
    memory_bucket.pipe("/bucket/set.zip", buffer.getvalue())
    run_fetch(fetch_params(real_params, source="memory://bucket/set.zip"), tmp_path / "b", None, progress=False)
    assert decisions(read_manifest(tmp_path / "b")) == {"c.png": "accepted"}


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed: it would go online")
def test_a_cloud_scheme_without_its_plugin_says_what_to_install(tmp_path, real_params):
    expected = r"s3://bucket/x: the s3:// filesystem is not installed.*pip install 'dvc\[s3\]'"
    with pytest.raises(FetchError, match=expected):
        run_fetch(fetch_params(real_params, source="s3://bucket/x"), tmp_path / "raw", None, progress=False)


# ---------------------------------------------------------------- clear failures

@pytest.mark.parametrize("source,message", [
    ("buildin", "fetch.source 'buildin' is neither 'builtin', an existing file or folder, nor a URL"),
    ("gopher://host/x", "unknown URL scheme gopher://"),
])
def test_unknown_sources_fail_with_one_line(tmp_path, real_params, source, message):
    with pytest.raises(FetchError, match=message):
        run_fetch(fetch_params(real_params, source=source), tmp_path / "raw", None, progress=False)


def test_a_pinned_digest_with_a_folder_is_refused(tmp_path, real_params):
    with pytest.raises(FetchError, match="fetch.sha256 pins a single file, but fetch.source is the folder"):
        run_fetch(fetch_params(real_params, source=str(tmp_path), sha256="a" * 64), tmp_path / "raw", None,
                  progress=False)


def test_nothing_usable_fails_saying_how_many_were_found(tmp_path, real_params):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "gray.png").write_bytes(encode(gray_as_rgb(16, 16)))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source=str(folder)), tmp_path / "raw", None, progress=False)
    assert str(caught.value) == (f"fetch: nothing usable in {str(folder)!r}: 3 files found, all skipped "
                                 "(empty_file 1, unknown_format 1, no_colour 1)")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"x")
    with pytest.raises(FetchError, match="no files found in"):
        run_fetch(fetch_params(real_params, source=str(empty)), tmp_path / "raw", None, progress=False)
    assert not (tmp_path / "raw").exists()


# ---------------------------------------------------------------- the stage as a process

def stage_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_stage_params(folder: Path, real_params: dict[str, Any], **fetch: Any) -> Path:
    data = dict(real_params)
    data["fetch"] = {**real_params["fetch"], **fetch}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (folder / "dvc.yaml").touch()  # a project: its scratch place is folder/.tmp
    return path


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STAGE), *args], cwd=cwd, env=stage_env(), capture_output=True,
                          text=True, timeout=120)


def test_stage_success_and_one_line_errors(messy, tmp_path, real_params):
    root, expected, _ = messy
    write_stage_params(tmp_path, real_params, source=str(root))
    done = run_stage(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"fetch: {list(expected.values()).count('accepted')} of {len(expected)} files")
    assert json.loads((tmp_path / "metrics" / "fetch.json").read_text())["found"] == len(expected)
    check_consistent(tmp_path / "data" / "raw")

    for fetch, message in (({"source": "nowhere"}, "error: fetch.source 'nowhere' is neither"),
                           ({"min_side": 0}, "error: params.yaml: fetch.min_side must be an integer >= 1")):
        write_stage_params(tmp_path, real_params, **{"source": str(root), **fetch})
        failed = run_stage(tmp_path)
        assert failed.returncode == 1
        assert failed.stderr.startswith(message) and failed.stderr.count("\n") == 1, failed.stderr
        assert "Traceback" not in failed.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def kill_when(process: subprocess.Popen, ready, timeout: float = 30) -> bool:
    """SIGKILL `process` as soon as `ready()`; False if it ended first. Its worker processes must follow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            children = descendants(process.pid)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            gone_by = time.monotonic() + 10
            while children and time.monotonic() < gone_by:
                children = {pid for pid in children if Path(f"/proc/{pid}").exists()}
                time.sleep(0.05)
            assert not children, f"worker processes outlived the killed stage: {children}"
            return True
        time.sleep(0.002)
    process.kill()
    raise AssertionError("the stage never reached the point to kill it at")


def spool_started(data_dir: Path) -> bool:
    return any(p.stat().st_size > 0 for p in data_dir.parent.glob(".tmp/run-*/.tmp-raw-*/.work/spool"))


def test_sigkill_mid_ingest_leaves_no_or_the_previous_raw_data(server, tmp_path, real_params):
    images = {i: encode(colourful(16, 16, 500 + i)) for i in range(60)}
    slow = [server.route(f"/slow-{i}.png", Slow(data, 0.15)) for i, data in images.items()]
    fast = [server.route(f"/fast-{i}.png", Body(data)) for i, data in images.items()]
    slow_list = server.route("/slow.txt", Body("\n".join(slow).encode()))
    fast_list = server.route("/fast.txt", Body("\n".join(fast).encode()))
    data_dir = tmp_path / "data"
    stage = [sys.executable, str(STAGE)]

    # the very first run killed: no data/raw at all
    write_stage_params(tmp_path, real_params, source=slow_list)
    process = subprocess.Popen(stage, cwd=tmp_path, env=stage_env(), stderr=subprocess.DEVNULL)
    assert kill_when(process, lambda: spool_started(data_dir))
    assert not (data_dir / "raw").exists()

    # a good run, then a killed one: the good one stays, byte for byte
    write_stage_params(tmp_path, real_params, source=fast_list)
    assert run_stage(tmp_path).returncode == 0
    previous, previous_metrics = snapshot(data_dir / "raw"), (tmp_path / "metrics" / "fetch.json").read_bytes()
    write_stage_params(tmp_path, real_params, source=slow_list)
    process = subprocess.Popen(stage, cwd=tmp_path, env=stage_env(), stderr=subprocess.DEVNULL)
    assert kill_when(process, lambda: spool_started(data_dir))
    assert list(data_dir.parent.glob(".tmp/run-*/.tmp-raw-*"))  # the kill did interrupt a run in progress
    assert snapshot(data_dir / "raw") == previous
    assert (tmp_path / "metrics" / "fetch.json").read_bytes() == previous_metrics

    # the next run succeeds and sweeps the leftovers
    write_stage_params(tmp_path, real_params, source=fast_list, shard_bytes=4096)
    done = run_stage(tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["raw"]
    assert not list(data_dir.parent.glob(".tmp/run-*"))
    assert check_consistent(data_dir / "raw")["counts"]["accepted"] == 60


def test_sigkill_while_writing_shards_never_leaves_a_partial_store(tmp_path, real_params):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(300):
        (folder / f"{i:03d}.png").write_bytes(encode(colourful(16, 16, 1000 + i)))
    data_dir = tmp_path / "data"
    write_stage_params(tmp_path, real_params, source=str(folder), shard_bytes=1024)  # one shard per image
    process = subprocess.Popen([sys.executable, str(STAGE)], cwd=tmp_path, env=stage_env(),
                               stderr=subprocess.DEVNULL)
    partial = ".tmp/run-*/.tmp-raw-*/raw-*.tar"
    # 300 shards to write once the second exists: the kill lands mid-write (the stage ending first fails).
    assert kill_when(process, lambda: any(data_dir.parent.glob(partial.replace("raw-*.tar", "raw-00001.tar"))))
    assert any(tmp_path.glob(partial)), "the kill should find shards half written"
    raw = data_dir / "raw"
    assert not raw.exists()
    assert run_stage(tmp_path).returncode == 0
    assert check_consistent(raw)["counts"]["accepted"] == 300
    assert len(list(raw.glob("raw-*.tar"))) == 300


def test_a_pinned_digest_of_a_url_is_verified(server, tmp_path, real_params):
    data = encode(colourful(16, 16, 3))
    url = server.route("/pinned.png", Body(data))
    digest = hashlib.sha256(data).hexdigest()
    run_fetch(fetch_params(real_params, source=url, sha256=digest), tmp_path / "raw", None, progress=False)
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source=url, sha256="c" * 64), tmp_path / "raw", None, progress=False)
    assert str(caught.value) == f"checksum mismatch for {url}: expected sha256 {'c' * 64}, got {digest}"
    assert decisions(read_manifest(tmp_path / "raw")) == {url: "accepted"}  # the good run's data is kept


def test_fewer_images_than_min_images_fail_before_the_raw_data_is_replaced(tmp_path, real_params):
    raw = tmp_path / "raw"
    run_fetch(fetch_params(real_params, source="builtin", builtin={"count": 4, "seed": 0, "style": "pika"}),
              raw, None, progress=False, workers=1)
    before = sorted((p.name, p.read_bytes()) for p in raw.iterdir())
    with pytest.raises(FetchError) as caught:
        run_fetch(fetch_params(real_params, source="builtin", min_images=5,
                               builtin={"count": 2, "seed": 1, "style": "pika"}), raw, None, progress=False, workers=1)
    assert str(caught.value) == ("fetch: 2 usable images in 'builtin', fewer than fetch.min_images=5; "
                                 "nothing was written")
    assert sorted((p.name, p.read_bytes()) for p in raw.iterdir()) == before


# ---------------------------------------------------------------- a list of sources

def test_a_list_of_sources_is_their_union(tmp_path, real_params):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    shared = encode(colourful(12, 12, 40))
    (first / "a.png").write_bytes(encode(colourful(12, 12, 41)))
    (first / "same name.png").write_bytes(encode(colourful(12, 12, 42)))
    (second / "same name.png").write_bytes(encode(colourful(12, 12, 43)))  # same name, other pixels
    (first / "shared.png").write_bytes(shared)
    (second / "shared copy.png").write_bytes(shared)                     # same pixels: kept once
    (second / "notes.txt").write_bytes(b"not a picture")
    params = fetch_params(real_params, source=[str(first), "builtin", str(second)],
                          builtin={"count": 3, "seed": 0, "style": "pika"})
    counts = run_fetch(params, tmp_path / "raw", None, progress=False, workers=1)
    manifest = check_consistent(tmp_path / "raw")
    found = decisions(manifest)
    assert {name: decision for name, decision in found.items() if not name.startswith("1/")} == {
        "0/a.png": "accepted", "0/same name.png": "accepted", "0/shared.png": "accepted",
        "2/same name.png": "accepted", "2/shared copy.png": "duplicate", "2/notes.txt": "unknown_format"}
    from_builtin = {name: decision for name, decision in found.items() if name.startswith("1/")}
    assert len(from_builtin) == 3 and all(name.startswith("1/builtin:") for name in from_builtin)
    assert set(from_builtin.values()) == {"accepted"}
    assert counts["accepted"] == 4 + 3 and counts["duplicates"] == 1
    # Each entry alone accepts what the union accepted from it: the union adds and loses nothing.
    alone = run_fetch(fetch_params(real_params, source=str(second)), tmp_path / "raw2", None, progress=False,
                      workers=1)
    assert alone["accepted"] == 2


@pytest.mark.parametrize(("value", "message"), [([], "non-empty list"), (["builtin", ""], r"fetch.source\[1\]"),
                                                 ([3], r"fetch.source\[0\]"), ({"a": 1}, "fetch.source")])
def test_bad_source_lists_are_refused_before_work(real_params, value, message):
    with pytest.raises(ValueError, match=message):
        fetch_params(real_params, source=value)


def test_a_digest_pin_cannot_apply_to_a_list(tmp_path, real_params):
    params = fetch_params(real_params, source=["builtin", "builtin"], sha256="0" * 64)
    with pytest.raises(FetchError, match="a list of sources"):
        run_fetch(params, tmp_path / "raw", None, progress=False)
