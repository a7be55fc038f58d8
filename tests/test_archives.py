"""Hostile archives: escaping names, links, devices, zip and tar bombs; nothing lands outside the output."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from colorize.core.errors import ArchiveError
from colorize.core.params import FetchParams, validate
from colorize.fetch.archives import ArchiveLimits, Member, Rejected, iter_archive, unsafe_name
from colorize.fetch.ingest import run_fetch
from test_images import colourful, encode

LIMITS = ArchiveLimits(max_files=100, max_total_bytes=10_000_000, max_file_bytes=5_000_000)
PNG = encode(colourful(16, 16))


def fetch_params(real_params: dict[str, Any], **overrides: Any) -> FetchParams:
    return validate("fetch", {**real_params["fetch"], **overrides}, FetchParams)


def write_zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)  # ZipInfo keeps '..' and '/' as written
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def write_tar(path: Path, members: list[tuple], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            archive.addfile(info, data)
    return path


def verdicts(path: Path, limits: ArchiveLimits = LIMITS) -> dict[str, str]:
    """name -> 'ok' or the rejection reason, reading every member."""
    result = {}
    for entry in iter_archive(path, limits, path.name):
        if isinstance(entry, Member):
            assert entry.read() is not None
            result[entry.name] = "ok"
        else:
            assert isinstance(entry, Rejected) and entry.detail
            result[entry.name] = entry.reason
    return result


@pytest.mark.parametrize("name,unsafe", [
    ("a/b.png", False), ("a..b.png", False), ("../x.png", True), ("a/../../x.png", True), ("/etc/x.png", True),
    ("C:/x.png", True), ("\\\\server\\x.png", True), ("a\\..\\..\\x.png", True), ("x\x00.png", True),
])
def test_unsafe_names(name, unsafe):
    assert (unsafe_name(name) is not None) == unsafe


def test_zip_entries_that_could_escape_are_rejected(tmp_path):
    path = write_zip(tmp_path / "evil.zip", {"ok.png": PNG, "../evil.png": PNG, "/abs.png": PNG,
                                             "a/../../up.png": PNG, "C:/win.png": PNG},
                     links={"inside.png": "ok.png", "outside.png": "../../../etc/passwd"})
    assert verdicts(path) == {"ok.png": "ok", "../evil.png": "unsafe_archive_entry",
                              "/abs.png": "unsafe_archive_entry", "a/../../up.png": "unsafe_archive_entry",
                              "C:/win.png": "unsafe_archive_entry", "inside.png": "archive_link",
                              "outside.png": "unsafe_archive_entry"}


def test_tar_links_and_devices_are_rejected(tmp_path):
    path = write_tar(tmp_path / "evil.tar", [
        tar_member("ok.png", PNG),
        tar_member("sub/inside.png", kind=tarfile.SYMTYPE, link="../ok.png"),
        tar_member("sub/outside.png", kind=tarfile.SYMTYPE, link="../../secret.png"),
        tar_member("abs.png", kind=tarfile.SYMTYPE, link="/etc/passwd"),
        tar_member("hard-in.png", kind=tarfile.LNKTYPE, link="ok.png"),
        tar_member("hard-out.png", kind=tarfile.LNKTYPE, link="../outside.png"),
        tar_member("tty.png", kind=tarfile.CHRTYPE),
        tar_member("disk.png", kind=tarfile.BLKTYPE),
        tar_member("pipe.png", kind=tarfile.FIFOTYPE),
        tar_member("../../escape.png", PNG),
    ])
    assert verdicts(path) == {
        "ok.png": "ok", "sub/inside.png": "archive_link", "sub/outside.png": "unsafe_archive_entry",
        "abs.png": "unsafe_archive_entry", "hard-in.png": "archive_link", "hard-out.png": "unsafe_archive_entry",
        "tty.png": "unsafe_archive_entry", "disk.png": "unsafe_archive_entry", "pipe.png": "unsafe_archive_entry",
        "../../escape.png": "unsafe_archive_entry"}


def test_zip_bomb_stops_before_inflating(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(20_000_000)})
    assert path.stat().st_size < 100_000
    limits = ArchiveLimits(max_files=100, max_total_bytes=1_000_000, max_file_bytes=1_000_000)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **kw: opened.append(a) or real_open(self, *a, **kw))
    with pytest.raises(ArchiveError, match=r"bomb.zip unpacks to more than fetch.max_total_bytes = 1000000"):
        next(iter_archive(path, limits, "bomb.zip"))
    assert opened == []  # refused from the headers: no entry was ever opened for inflating


def test_tar_gz_bomb_stops_at_the_first_header(tmp_path):
    path = write_tar(tmp_path / "bomb.tar.gz", [tar_member("a.png", PNG), tar_member("zeros.png", bytes(20_000_000)),
                                                tar_member("b.png", PNG)], mode="w:gz")
    limits = ArchiveLimits(max_files=100, max_total_bytes=1_000_000, max_file_bytes=1_000_000)
    entries = iter_archive(path, limits, "bomb.tar.gz")
    first = next(entries)
    assert first.name == "a.png" and first.read() == PNG
    with pytest.raises(ArchiveError, match="max_total_bytes"):
        next(entries)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_file_count_is_capped(tmp_path, kind):
    entries = {f"{i}.png": PNG for i in range(11)}
    if kind == "zip":
        path = write_zip(tmp_path / "many.zip", entries)
    else:
        path = write_tar(tmp_path / "many.tar", [tar_member(n, d) for n, d in entries.items()])
    limits = ArchiveLimits(max_files=10, max_total_bytes=10**9, max_file_bytes=10**9)
    with pytest.raises(ArchiveError, match="more than fetch.max_files = 10 entries"):
        list(iter_archive(path, limits, path.name))
    assert len(verdicts(path, ArchiveLimits(11, 10**9, 10**9))) == 11


def test_oversized_member_is_skipped_unread(tmp_path):
    path = write_zip(tmp_path / "big.zip", {"big.png": bytes(2_000), "ok.png": PNG})
    assert verdicts(path, ArchiveLimits(100, 10**6, 1_000)) == {"big.png": "file_too_large", "ok.png": "ok"}


def test_damaged_archives_fail_with_one_line(tmp_path):
    good = write_tar(tmp_path / "good.tar.gz", [tar_member(f"{i}.png", PNG) for i in range(20)], mode="w:gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="cut.tar.gz") as caught:
        verdicts(cut)
    assert "\n" not in str(caught.value)
    text = tmp_path / "fake.zip"
    text.write_text("not an archive")
    with pytest.raises(ArchiveError, match="fake.zip is not a zip or tar archive"):
        list(iter_archive(text, LIMITS, "fake.zip"))


def test_zip_member_with_a_bad_crc_fails(tmp_path):
    path = write_zip(tmp_path / "crc.zip", {"a.png": PNG})
    data = bytearray(path.read_bytes())
    offset = data.index(b"a.png") + len("a.png")  # data begins after the local header's name
    data[offset + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="crc.zip: entry 'a.png' is damaged"):
        verdicts(path)


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_hostile_archive_ingest_writes_only_its_output(tmp_path, real_params):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    archive = write_tar(work / "evil.tar", [
        tar_member("ok.png", PNG),
        tar_member("../../../escaped.png", encode(colourful(16, 16, seed=1))),
        tar_member("/tmp/absolute.png", encode(colourful(16, 16, seed=2))),
        tar_member("link.png", kind=tarfile.SYMTYPE, link="/etc/passwd"),
        tar_member("dev.png", kind=tarfile.CHRTYPE),
    ])
    before = tree(tmp_path)
    counts = run_fetch(fetch_params(real_params, source=str(archive)), work / "data" / "raw",
                       work / "metrics" / "fetch.json", progress=False, workers=1)
    assert counts["accepted"] == 1
    assert counts["skipped_by_reason"]["unsafe_archive_entry"] == 4
    new = tree(tmp_path) - before
    assert all(p.startswith(("deep/work/data", "deep/work/metrics")) for p in new), new
    assert not (tmp_path / "escaped.png").exists() and not Path("/tmp/absolute.png").exists()
    assert sorted(os.listdir(work / "data" / "raw")) == ["manifest.json", "raw-00000.tar"]
