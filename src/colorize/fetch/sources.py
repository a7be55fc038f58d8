"""Turn `fetch.source` into a deterministic stream of candidate files, each either read (`Candidate`) or
already decided (`Skip`, with a reason), without judging pixels (that is `colorize.core.images`' job).

Kinds of source: `builtin`; a local folder (recursive, sorted, hidden files and OS junk ignored); a local
file that is an archive, an image or a URL manifest; an http(s) URL of any of those; a cloud URL (s3://,
gs://, azure://, ... through the fsspec filesystem DVC itself uses), of a folder or of one file.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import os
import posixpath
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

from PIL import Image, UnidentifiedImageError

from colorize.core.errors import ChecksumError, DownloadError, SourceError
from colorize.core.images import DECODED_FORMATS, IMAGE_EXTENSIONS
from colorize.core.parallel import bounded_map
from colorize.core.params import BuiltinParams, FetchParams
from colorize.fetch.archives import (
    ArchiveLimits,
    Rejected,
    archive_kind,
    has_archive_suffix,
    iter_archive,
)
from colorize.fetch.download import RetryPolicy, download_fs, download_http, read_fs_bytes, sha256_file, verify_sha256

# OS and tool droppings that are never pictures; names starting with "." are ignored too.
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "ehthumbs_vista.db", "icon\r", "__macosx",
                        "$recycle.bin", "system volume information"})
MANIFEST_SUFFIXES = (".txt", ".csv", ".json", ".urls")
HTTP_SCHEMES = ("http", "https")
# Cloud schemes DVC's remotes support -> the `dvc[...]` extra that installs their fsspec filesystem.
CLOUD_SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "azure": "azure", "az": "azure",
                 "abfs": "azure", "abfss": "azure", "oss": "oss", "hdfs": "hdfs", "webhdfs": "webhdfs",
                 "ssh": "ssh", "sftp": "ssh", "webdav": "webdav", "webdavs": "webdav"}
DOWNLOAD_THREADS = 8  # manifests: downloads overlap, results stay in manifest order


@dataclass(frozen=True)
class Candidate:
    """A file to judge: its stable description, lower-case extension ('' = let the content decide), bytes."""

    source: str
    ext: str
    data: bytes


@dataclass(frozen=True)
class Skip:
    """A file decided without decoding it."""

    source: str
    reason: str
    detail: str


Item = Candidate | Skip


@dataclass(frozen=True)
class FetchSettings:
    """The fetch params that govern reading sources."""

    sha256: str | None
    on_error: str
    limits: ArchiveLimits
    policy: RetryPolicy

    @classmethod
    def from_params(cls, params: FetchParams) -> FetchSettings:
        # No image within max_pixels needs more than 8 bytes a pixel (16-bit RGBA) plus metadata.
        max_file = min(params.max_total_bytes, params.max_pixels * 8 + 2**24)
        return cls(params.sha256, params.on_error,
                   ArchiveLimits(params.max_files, params.max_total_bytes, max_file),
                   RetryPolicy(params.timeout_s, params.retries, params.backoff_s))


@dataclass(frozen=True)
class ManifestEntry:
    """One URL (or, in a local manifest, a path) listed by a manifest, with its optional pinned digest."""

    url: str
    sha256: str | None


def extension(name: str) -> str:
    """Lower-case extension of the last path component, '' if none."""
    return PurePosixPath(urlsplit(name).path if "://" in name else name).suffix.lower()


def is_junk(rel_path: str) -> bool:
    """Hidden files and folders, macOS resource forks, Windows thumbnails and the like."""
    return any(part.startswith(".") or part.lower() in JUNK_NAMES
               for part in rel_path.replace("\\", "/").split("/") if part not in ("", "."))


def sift(source: str, name: str, size: int, limits: ArchiveLimits) -> Skip | None:
    """Decide what the name and size alone decide: archives inside a source, non-image extensions,
    empty and oversized files."""
    ext = extension(name)
    if has_archive_suffix(name):
        return Skip(source, "nested_archive", "archives inside a source are not unpacked")
    if ext not in IMAGE_EXTENSIONS:
        return Skip(source, "unknown_format", f"extension {ext or '(none)'!r} is not an image format the fetch reads")
    return sift_size(source, size, limits)


def sift_size(source: str, size: int, limits: ArchiveLimits) -> Skip | None:
    """Empty and oversized files are decided without reading them."""
    if size == 0:
        return Skip(source, "empty_file", "the file is empty (0 bytes)")
    if size > limits.max_file_bytes:
        return Skip(source, "file_too_large",
                    f"{size} bytes is more than any image within fetch.max_pixels ({limits.max_file_bytes})")
    return None


def iter_source(source: str | tuple[str, ...], params: FetchParams, workdir: Path,
                on_total: Callable[[int], None] = lambda n: None) -> Iterator[Item]:
    """Yield every candidate file of `fetch.source`, in a deterministic order.

    `workdir` holds downloads (deleted as soon as read); `on_total` is told the file count once known.
    A list of sources is their union, in list order. Raises `SourceError`, `DownloadError`,
    `ChecksumError` or `ArchiveError` with one line.
    """
    settings = FetchSettings.from_params(params)
    if isinstance(source, tuple):
        yield from _union(source, settings, params, workdir, on_total)
        return
    text = source.strip()
    scheme = urlsplit(text).scheme.lower()
    if text == "builtin":
        _refuse_pin(settings, "the built-in data set")
        yield from _builtin(params.builtin, on_total)
    elif scheme in HTTP_SCHEMES:
        dest = workdir / ("source" + _safe_suffix(text))
        download_http(text, dest, settings.policy, max_bytes=settings.limits.max_total_bytes,
                      expected_sha256=settings.sha256)
        yield from _single_file(dest, text, settings, workdir, on_total, temporary=True)
    elif scheme == "file":
        path = Path(url2pathname(urlsplit(text).path))
        yield from _local(path, str(path), settings, workdir, on_total)
    elif scheme in CLOUD_SCHEMES:
        yield from _cloud(text, settings, workdir, on_total)
    elif len(scheme) > 1 and "://" in text:
        raise SourceError(f"fetch.source {text!r}: unknown URL scheme {scheme}:// (use http(s)://, "
                          f"{', '.join(s + '://' for s in sorted(CLOUD_SCHEMES))} or a local path)")
    else:
        yield from _local(Path(text).expanduser(), text, settings, workdir, on_total)


def _union(sources: tuple[str, ...], settings: FetchSettings, params: FetchParams, workdir: Path,
           on_total: Callable[[int], None]) -> Iterator[Item]:
    """Every entry's items in turn, each name prefixed with the entry's position in the list (`1/cat.png`),
    so equal names in two folders stay apart and the manifest does not depend on where the folders are
    (equal pixels are still kept once: fetch drops duplicates by content)."""
    _refuse_pin(settings, "a list of sources")
    totals: list[int] = []
    for i, entry in enumerate(sources):
        folder = workdir / f"source-{i}"
        folder.mkdir()
        totals.append(0)

        def count(n: int, i: int = i) -> None:
            totals[i] = n
            on_total(sum(totals))

        for item in iter_source(entry, params, folder, count):
            yield replace(item, source=f"{i}/{item.source}")


def _refuse_pin(settings: FetchSettings, what: str) -> None:
    if settings.sha256 is not None:
        raise SourceError(f"fetch.sha256 pins a single file, but fetch.source is {what}: set fetch.sha256 to null")


def _safe_suffix(url: str) -> str:
    """The URL's archive or file suffix, for naming the download (never a path from the URL)."""
    name = posixpath.basename(unquote(urlsplit(url).path)).lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if name.endswith(suffix):
            return suffix
    ext = PurePosixPath(name).suffix
    return ext if ext.isascii() and ext[1:].isalnum() else ""


def _builtin(spec: BuiltinParams, on_total: Callable[[int], None]) -> Iterator[Item]:
    try:
        from colorize.fetch.synthetic import generate_builtin
    except ImportError as exc:
        raise SourceError(f"fetch.source builtin: the built-in generator is missing ({exc})") from None
    on_total(spec.count)
    for name, data in generate_builtin(spec.count, spec.seed, spec.style):
        yield Candidate(f"builtin:{name}", extension(name) or ".png", data)


def _nfc(text: str) -> str:
    # macOS stores names decomposed: normalise so the manifest is the same on every machine.
    return unicodedata.normalize("NFC", text)


def _local(path: Path, text: str, settings: FetchSettings, workdir: Path,
           on_total: Callable[[int], None]) -> Iterator[Item]:
    if path.is_dir():
        _refuse_pin(settings, f"the folder {text!r}")
        yield from _folder(path, settings, on_total)
    elif path.is_file():
        verify_sha256(text, settings.sha256, sha256_file(path))
        yield from _single_file(path, text, settings, workdir, on_total, temporary=False)
    else:
        raise SourceError(f"fetch.source {text!r} is neither 'builtin', an existing file or folder, "
                          "nor a URL (http(s)://, s3://, ...)")


def list_folder(root: Path) -> tuple[list[str], list[Skip]]:
    """Relative posix paths of the files under `root` (sorted, junk left out), and unreadable folders."""
    files: list[str] = []
    problems: list[Skip] = []

    def on_walk_error(exc: OSError) -> None:
        where = os.path.relpath(exc.filename, root) if exc.filename else "."
        problems.append(Skip(_nfc(Path(where).as_posix()), "unreadable", f"cannot list folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not is_junk(d))  # prune hidden folders, __MACOSX, ...
        rel_dir = Path(dirpath).relative_to(root)
        files.extend((rel_dir / f).as_posix() for f in filenames if not is_junk(f))
    return sorted(files, key=_nfc), problems


def _folder(root: Path, settings: FetchSettings, on_total: Callable[[int], None]) -> Iterator[Item]:
    files, problems = list_folder(root)
    on_total(len(files) + len(problems))
    yield from problems
    for rel in files:
        source = _nfc(rel)
        try:
            size = (root / rel).stat().st_size
        except OSError as exc:  # a dangling symlink, a file removed meanwhile
            yield Skip(source, "unreadable", f"cannot read: {exc.strerror}")
            continue
        skip = sift(source, rel, size, settings.limits)
        if skip is not None:
            yield skip
            continue
        try:
            data = (root / rel).read_bytes()
        except OSError as exc:
            yield Skip(source, "unreadable", f"cannot read: {exc.strerror}")
            continue
        yield Candidate(source, extension(rel), data)


def classify_file(path: Path, name: str) -> str:
    """'archive', 'image' or 'manifest': by the name's suffix, else by sniffing the content."""
    lower = name.lower()
    if has_archive_suffix(lower):
        return "archive"
    ext = extension(lower)
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in MANIFEST_SUFFIXES:
        return "manifest"
    if archive_kind(path):
        return "archive"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=DECODED_FORMATS):
                return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        pass
    with open(path, "rb") as f:
        head = f.read(4096)
    return "manifest" if _looks_like_text(head) else "image"  # an undecodable "image" is skipped later


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the 4096-byte window
    return True


def _single_file(path: Path, label: str, settings: FetchSettings, workdir: Path,
                 on_total: Callable[[int], None], *, temporary: bool) -> Iterator[Item]:
    """A source that is one file (`label`: the URL or path as the user wrote it): an archive, a manifest,
    or a single image."""
    is_url = bool(urlsplit(label).scheme)
    name = urlsplit(label).path if is_url else label
    kind = classify_file(path, posixpath.basename(unquote(name)) or name)
    if kind == "archive":
        yield from archive_items(path, label, settings, prefix="")
    elif kind == "manifest":
        entries = parse_manifest(_read_text(path, label), label, settings.limits.max_files)
        on_total(len(entries))
        local_base = None if temporary or is_url else path.resolve().parent
        yield from _manifest_items(entries, label, local_base, settings, workdir)
    else:
        on_total(1)
        yield from _image_file(path, label if is_url else path.name, extension(name), settings)


def _image_file(path: Path, source: str, ext: str, settings: FetchSettings) -> Iterator[Item]:
    skip = sift_size(source, path.stat().st_size, settings.limits)
    yield skip if skip is not None else Candidate(source, ext if ext in IMAGE_EXTENSIONS else "", path.read_bytes())


def _read_text(path: Path, label: str) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{label}: a URL manifest must be UTF-8 text") from None


def archive_items(path: Path, label: str, settings: FetchSettings, prefix: str) -> Iterator[Item]:
    """The files of an archive as candidates (`prefix` + member name), refused entries as skips."""
    for entry in iter_archive(path, settings.limits, label):
        source = prefix + _nfc(entry.name.removeprefix("./"))  # `tar -C dir .` writes ./a.png
        if isinstance(entry, Rejected):
            if entry.reason == "unsafe_archive_entry" or not is_junk(entry.name):
                yield Skip(source, entry.reason, entry.detail)
            continue
        if is_junk(entry.name):
            continue
        skip = sift(source, entry.name, entry.size, settings.limits)
        yield skip if skip is not None else Candidate(source, extension(entry.name), entry.read())


def parse_manifest(text: str, label: str, max_entries: int) -> list[ManifestEntry]:
    """Entries of a URL manifest: JSON (a list of URLs or {"url", "sha256"} objects, bare or under
    "images"/"urls"/"files"), CSV (a `url` column and an optional `sha256` one, or url[,sha256] rows),
    or one URL a line ('#' starts a comment)."""
    body = text.strip()
    first_line = body.splitlines()[0] if body else ""
    if label.lower().endswith(".json") or body.startswith(("[", "{")):
        entries = _json_entries(body, label)
    elif label.lower().endswith(".csv") or "," in first_line:
        entries = _csv_entries(body, label)
    else:
        entries = _line_entries(body, label)
    if not entries:
        raise SourceError(f"{label}: the manifest lists no URLs")
    if len(entries) > max_entries:
        raise SourceError(f"{label} lists {len(entries)} URLs, more than fetch.max_files = {max_entries}")
    return entries


def _entry(url: Any, digest: Any, label: str, where: str) -> ManifestEntry:
    if not isinstance(url, str) or not url.strip() or any(c.isspace() for c in url.strip()):
        raise SourceError(f"{label}: {where}: expected one URL, got {url!r}")
    if digest in (None, ""):
        return ManifestEntry(url.strip(), None)
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise SourceError(f"{label}: {where}: sha256 must be 64 hex digits, got {digest!r}")
    return ManifestEntry(url.strip(), digest.lower())


def _json_entries(body: str, label: str) -> list[ManifestEntry]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{label}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        lists = [data[k] for k in ("images", "urls", "files") if isinstance(data.get(k), list)]
        if len(lists) != 1:
            raise SourceError(f"{label}: a JSON manifest is a list, or an object with one of 'images', 'urls', 'files'")
        data = lists[0]
    if not isinstance(data, list):
        raise SourceError(f"{label}: a JSON manifest must be a list of URLs or of {{'url', 'sha256'}} objects")
    entries = []
    for i, item in enumerate(data):
        if isinstance(item, dict):
            entries.append(_entry(item.get("url"), item.get("sha256"), label, f"entry {i}"))
        else:
            entries.append(_entry(item, None, label, f"entry {i}"))
    return entries


def _csv_entries(body: str, label: str) -> list[ManifestEntry]:
    rows = [row for row in csv.reader(io.StringIO(body)) if row and row[0].strip() and not row[0].startswith("#")]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "url" in header:
        url_at, sha_at = header.index("url"), header.index("sha256") if "sha256" in header else None
        rows = rows[1:]
    else:
        url_at, sha_at = 0, 1
    entries = []
    for n, row in enumerate(rows, start=2 if header and "url" in header else 1):
        digest = row[sha_at].strip() if sha_at is not None and sha_at < len(row) else None
        entries.append(_entry(row[url_at] if url_at < len(row) else None, digest, label, f"row {n}"))
    return entries


def _line_entries(body: str, label: str) -> list[ManifestEntry]:
    return [_entry(line.strip(), None, label, f"line {n}")
            for n, line in enumerate(body.splitlines(), start=1) if line.strip() and not line.startswith("#")]


def _resolve(ref: str, label: str, local_base: Path | None) -> str:
    """An absolute URL for a manifest entry; a relative one is taken relative to the manifest."""
    scheme = urlsplit(ref).scheme.lower()
    if scheme in HTTP_SCHEMES or scheme in CLOUD_SCHEMES:
        return ref
    if local_base is not None:
        return ref  # a path in a local manifest: read relative to the manifest's folder
    base_scheme = urlsplit(label).scheme.lower()
    if scheme:
        raise SourceError(f"{label}: entry {ref!r}: a remote manifest may list only http(s) and cloud URLs")
    if base_scheme in HTTP_SCHEMES:
        return urljoin(label, ref)
    return label.rsplit("/", 1)[0] + "/" + posixpath.normpath(ref).lstrip("/")


def _manifest_items(entries: list[ManifestEntry], label: str, local_base: Path | None, settings: FetchSettings,
                    workdir: Path) -> Iterator[Item]:
    """Fetch every entry (a few at a time, results in manifest order) and yield its files."""
    jobs = [(i, _resolve(e.url, label, local_base), e.sha256) for i, e in enumerate(entries)]

    def fetch(job: tuple[int, str, str | None]) -> tuple[Path, bool] | DownloadError:
        index, url, digest = job
        try:
            return _fetch_entry(url, digest, workdir / f"entry-{index:07d}{_safe_suffix(url)}", local_base, settings)
        except DownloadError as exc:  # handed back as a value: the main thread decides, in order
            return exc

    with concurrent.futures.ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(jobs))) as pool:
        for (_, url, _), fetched in zip(jobs, bounded_map(fetch, jobs, pool, 2 * DOWNLOAD_THREADS)):
            if isinstance(fetched, DownloadError):
                if isinstance(fetched, ChecksumError) or settings.on_error == "fail":
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise fetched
                yield Skip(url, "download_failed", str(fetched))
                continue
            path, temporary = fetched
            try:
                if archive_kind(path):
                    yield from archive_items(path, url, settings, prefix=url + "#")
                else:
                    yield from _image_file(path, url, extension(url), settings)
            finally:
                if temporary:
                    path.unlink(missing_ok=True)


def _fetch_entry(url: str, digest: str | None, dest: Path, local_base: Path | None,
                 settings: FetchSettings) -> tuple[Path, bool]:
    """Bring one manifest entry to a local file; return it and whether it is a temporary copy."""
    scheme = urlsplit(url).scheme.lower()
    max_bytes = settings.limits.max_total_bytes
    if scheme in HTTP_SCHEMES:
        download_http(url, dest, settings.policy, max_bytes=max_bytes, expected_sha256=digest)
        return dest, True
    if scheme in CLOUD_SCHEMES:
        fs, path = open_filesystem(url)
        download_fs(fs, path, url, dest, settings.policy, max_bytes=max_bytes, expected_sha256=digest)
        return dest, True
    assert local_base is not None
    local = local_base / Path(url2pathname(urlsplit(url).path) if scheme == "file" else url).expanduser()
    if not local.is_file():
        raise DownloadError(f"download failed: {url}: no such file")
    verify_sha256(url, digest, sha256_file(local))
    return local, False


def open_filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path for a cloud URL; a missing plugin is one line saying what to install."""
    import fsspec  # imported here: only cloud sources pay for it

    scheme = urlsplit(url).scheme.lower()
    fs_url = "az" + url[len("azure"):] if scheme == "azure" else url  # DVC says azure://, adlfs az://
    try:
        return fsspec.core.url_to_fs(fs_url)
    except ImportError as exc:
        extra = CLOUD_SCHEMES.get(scheme, scheme)
        raise SourceError(f"{url}: the {scheme}:// filesystem is not installed ({exc}); "
                          f"install it with: pip install 'dvc[{extra}]'") from None
    except Exception as exc:  # bad bucket names, missing credentials config, ...
        raise SourceError(f"{url}: cannot open: {type(exc).__name__}: {exc}") from None


def _cloud(url: str, settings: FetchSettings, workdir: Path, on_total: Callable[[int], None]) -> Iterator[Item]:
    fs, root = open_filesystem(url)
    try:
        is_folder = fs.isdir(root)
    except Exception as exc:
        raise SourceError(f"{url}: cannot read: {type(exc).__name__}: {exc}") from None
    if not is_folder:
        dest = workdir / ("source" + _safe_suffix(url))
        download_fs(fs, root, url, dest, settings.policy, max_bytes=settings.limits.max_total_bytes,
                    expected_sha256=settings.sha256)
        yield from _single_file(dest, url, settings, workdir, on_total, temporary=True)
        return
    _refuse_pin(settings, f"the folder {url!r}")
    try:
        listing = fs.find(root, detail=True)
    except Exception as exc:
        raise SourceError(f"{url}: cannot list: {type(exc).__name__}: {exc}") from None
    prefix = root.rstrip("/") + "/"
    files = sorted((_nfc(p[len(prefix):] if p.startswith(prefix) else p), p, info.get("size") or 0)
                   for p, info in listing.items() if info.get("type", "file") == "file")
    files = [f for f in files if not is_junk(f[0])]
    on_total(len(files))
    for rel, path, size in files:
        skip = sift(rel, rel, size, settings.limits)
        if skip is not None:
            yield skip
            continue
        try:
            data = read_fs_bytes(fs, path, url.rstrip("/") + "/" + rel, settings.policy)
        except ChecksumError:
            raise
        except DownloadError as exc:
            if settings.on_error == "fail":
                raise
            yield Skip(rel, "download_failed", str(exc))
            continue
        yield Candidate(rel, extension(rel), data)
