"""Read the files inside a zip or tar archive without extracting anything to disk, refusing hostile entries.

Nothing is ever extracted: members are read into memory one at a time, so an entry named `../../x` or
`/etc/x` can never be written anywhere. Such entries, links and device files are still reported as
`Rejected` so the fetch records them. The file count and the total uncompressed size are capped, and
checked from the headers before the data is decompressed, so a zip bomb stops early.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from colorize.core.errors import ArchiveError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass(frozen=True)
class ArchiveLimits:
    """Safety caps: entries, total uncompressed bytes, and bytes of any one member."""

    max_files: int
    max_total_bytes: int
    max_file_bytes: int


@dataclass(frozen=True)
class Member:
    """A regular file inside an archive; `read()` is valid until the iteration moves on."""

    name: str
    size: int
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Rejected:
    """An entry refused without reading it, with a short reason and one line of detail."""

    name: str
    reason: str
    detail: str


def has_archive_suffix(name: str) -> bool:
    """True for names ending in .zip, .tar, .tar.gz, .tgz (and .tar.bz2/.tar.xz), any case."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_kind(path: Path) -> str | None:
    """'zip', 'tar' (plain or compressed) or None, judged from the content, not the name."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except (OSError, EOFError, tarfile.TarError):
        return None


def unsafe_name(name: str) -> str | None:
    """Why an entry name could escape an extraction folder (absolute, drive, `..`, NUL), or None."""
    if "\x00" in name:
        return "name contains a NUL byte"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in parts:
        return "path with '..'"
    return None


def _link_verdict(name: str, target: str, hard: bool) -> Rejected:
    """Links are never followed; one pointing outside the archive is unsafe, one inside merely skipped."""
    kind = "hard link" if hard else "symlink"
    base = "" if hard else posixpath.dirname(name.replace("\\", "/"))
    resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if target.startswith(("/", "\\")) or resolved == ".." or resolved.startswith("../"):
        return Rejected(name, "unsafe_archive_entry", f"{kind} to {target!r}, outside the archive")
    return Rejected(name, "archive_link", f"{kind} to {target!r}: not followed (the target is read on its own)")


def iter_archive(path: Path, limits: ArchiveLimits, label: str) -> Iterator[Member | Rejected]:
    """Yield every file entry of a zip or tar archive, in archive order; directories are left out.

    Raises `ArchiveError` (naming `label`) for an unreadable archive or when a cap is exceeded.
    """
    kind = archive_kind(path)
    if kind == "zip":
        yield from _iter_zip(path, limits, label)
    elif kind == "tar":
        yield from _iter_tar(path, limits, label)
    else:
        raise ArchiveError(f"{label} is not a zip or tar archive (or it is damaged)")


def _over_count(label: str, limits: ArchiveLimits) -> ArchiveError:
    return ArchiveError(f"{label} holds more than fetch.max_files = {limits.max_files} entries: refusing it "
                        "(raise fetch.max_files if it is genuine)")


def _over_size(label: str, total: int, limits: ArchiveLimits) -> ArchiveError:
    return ArchiveError(f"{label} unpacks to more than fetch.max_total_bytes = {limits.max_total_bytes} bytes "
                        f"({total}+ claimed): refusing it as a possible zip bomb")


def _too_large(name: str, size: int, limits: ArchiveLimits) -> Rejected:
    return Rejected(name, "file_too_large",
                    f"{size} bytes is more than any image within fetch.max_pixels ({limits.max_file_bytes})")


def _iter_zip(path: Path, limits: ArchiveLimits, label: str) -> Iterator[Member | Rejected]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{label} is not a readable zip archive: {exc}") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_files:
            raise _over_count(label, limits)
        # The central directory states every size up front: refuse a bomb before inflating a byte.
        total = sum(info.file_size for info in infos)
        if total > limits.max_total_bytes:
            raise _over_size(label, total, limits)
        for info in infos:
            yield _zip_entry(archive, info, limits, label)


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits,
               label: str) -> Member | Rejected:
    name = info.filename
    problem = unsafe_name(name)
    if problem:
        return Rejected(name, "unsafe_archive_entry", problem)
    file_type = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # 3: unix
    if file_type == stat.S_IFLNK:
        with archive.open(info) as member:
            target = member.read(4096).decode("utf-8", "replace")
        return _link_verdict(name, target, hard=False)
    if file_type not in (0, stat.S_IFREG):
        return Rejected(name, "unsafe_archive_entry", "device file, fifo or socket")
    if info.file_size > limits.max_file_bytes:
        return _too_large(name, info.file_size, limits)

    def read() -> bytes:
        try:
            with archive.open(info) as member:
                data = member.read(info.file_size + 1)  # never more than the header claimed
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise ArchiveError(f"{label}: entry {name!r} is damaged: {exc}") from None
        if len(data) != info.file_size:
            raise ArchiveError(f"{label}: entry {name!r} holds {len(data)} bytes, its header says {info.file_size}")
        return data

    return Member(name, info.file_size, read)


def _iter_tar(path: Path, limits: ArchiveLimits, label: str) -> Iterator[Member | Rejected]:
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{label} is not a readable tar archive: {exc}") from None
    with archive:
        count = total = 0
        while True:
            try:
                info = archive.next()  # headers one at a time: the caps stop a bomb at the first bad one
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ArchiveError(f"{label} is truncated or damaged: {exc}") from None
            if info is None:
                return
            if info.isdir():
                continue
            count += 1
            if count > limits.max_files:
                raise _over_count(label, limits)
            if info.isreg():
                total += info.size
                if total > limits.max_total_bytes:
                    raise _over_size(label, total, limits)
            yield _tar_entry(archive, info, limits, label)


def _tar_entry(archive: tarfile.TarFile, info: tarfile.TarInfo, limits: ArchiveLimits,
               label: str) -> Member | Rejected:
    name = info.name
    problem = unsafe_name(name)
    if problem:
        return Rejected(name, "unsafe_archive_entry", problem)
    if info.issym() or info.islnk():
        return _link_verdict(name, info.linkname, hard=info.islnk())
    if not info.isreg():
        return Rejected(name, "unsafe_archive_entry", "device file, fifo or other special entry")
    if info.size > limits.max_file_bytes:
        return _too_large(name, info.size, limits)

    def read() -> bytes:
        try:
            member = archive.extractfile(info)
            data = member.read() if member is not None else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{label}: entry {name!r} is truncated or damaged: {exc}") from None
        if len(data) != info.size:
            raise ArchiveError(f"{label}: entry {name!r} is truncated ({len(data)} of {info.size} bytes)")
        return data

    return Member(name, info.size, read)
