"""The fetch stage's library entry point: read a source, decide every file (accepted or skipped, with a
reason), drop exact duplicates, and write `data/raw` (tar shards + manifest) atomically, plus metrics.

Decoding runs in a process pool (results in input order, so the output never depends on the number of
workers); accepted files are spooled to one temporary file and written into id-sorted shards at the end.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice, tee
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from colorize.core.artifacts import atomic_dir, json_bytes, write_json_atomic
from colorize.core.errors import FetchError
from colorize.core.images import FORMAT_EXTENSIONS, ImageRejected, inspect_image
from colorize.core.parallel import available_cpus, bounded_map, process_pool
from colorize.core.params import FetchParams
from colorize.core.rawstore import MANIFEST_NAME, write_shards
from colorize.fetch.sources import Candidate, Item, Skip, iter_source

__all__ = ["REASONS", "empty_manifest", "run_fetch", "summary_line"]

# Every skip reason, with what it means (the README's table is this dict).
REASONS: dict[str, str] = {
    "empty_file": "the file has 0 bytes",
    "unknown_format": "the extension is not an image format the fetch reads (.txt, .heic, none, ...)",
    "not_an_image": "an image extension, but the content is no image (an HTML page saved as .jpg, ...)",
    "truncated": "the image data stops early (an interrupted download or copy)",
    "corrupt": "the image data is damaged in another way",
    "unsupported_mode": "a pixel format that cannot be converted to RGB",
    "decompression_bomb": "the header claims more than fetch.max_pixels pixels: skipped before decoding",
    "file_too_large": "more bytes than any image within fetch.max_pixels could need",
    "too_small": "a side shorter than fetch.min_side",
    "no_colour": "grayscale, or R=G=B everywhere: teaches nothing (fetch.keep_gray: true keeps it)",
    "nested_archive": "an archive inside the source: not unpacked",
    "unsafe_archive_entry": "an archive entry with an absolute path, '..', a link outside, or a device file",
    "archive_link": "a link inside an archive: not followed (its target is read on its own)",
    "unreadable": "the file or folder cannot be read (permissions, dangling symlink)",
    "download_failed": "a manifest URL failed after its retries (only with fetch.on_error: skip)",
}

SERIAL_LIMIT = 32      # fewer candidates than this are judged in-process: a pool costs more to start
CHUNK_FILES = 16       # candidates sent to a worker at once (amortises inter-process overhead)
CHUNK_BYTES = 4 << 20
MAX_WORKERS = 8

Verdict = tuple  # ("ok", id, width, height, mode, format, sha256) or ("skip", reason, detail)


@dataclass(slots=True)  # one per accepted image: 100,000 of them must stay small
class _Kept:
    """An accepted image while the run goes on: where its bytes sit in the spool, and its duplicates."""

    id: str
    source: str
    ext: str
    sha256: str
    size: int
    width: int
    height: int
    mode: str
    format: str
    offset: int
    duplicates: list[str] = field(default_factory=list)


def judge(data: bytes, rules: tuple[int, int, bool]) -> Verdict:
    """Apply the image rules (max_pixels, min_side, keep_gray) to one file's bytes."""
    max_pixels, min_side, keep_gray = rules
    try:
        info = inspect_image(data, max_pixels=max_pixels, min_side=min_side, keep_gray=keep_gray)
    except ImageRejected as exc:
        return ("skip", exc.reason, exc.detail)
    return ("ok", info.id, info.width, info.height, info.mode, info.format, hashlib.sha256(data).hexdigest())


def _judge_chunk(payloads: list[bytes], rules: tuple[int, int, bool]) -> list[Verdict]:
    return [judge(data, rules) for data in payloads]


def _chunks(items: Iterator[Item]) -> Iterator[list[Item]]:
    """Group items so each chunk carries a few candidates (by count and bytes)."""
    chunk: list[Item] = []
    files = size = 0
    for item in items:
        chunk.append(item)
        if isinstance(item, Candidate):
            files, size = files + 1, size + len(item.data)
        if files >= CHUNK_FILES or size >= CHUNK_BYTES:
            yield chunk
            chunk, files, size = [], 0, 0
    if chunk:
        yield chunk


def default_workers() -> int:
    """The CPUs this process may use, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, available_cpus()))


def decide(items: Iterable[Item], rules: tuple[int, int, bool],
           workers: int) -> Iterator[tuple[Item, Verdict | None]]:
    """Pair every item with its verdict (None for items already decided), in input order."""
    items = iter(items)
    head = list(islice(items, SERIAL_LIMIT))
    if workers <= 1 or len(head) < SERIAL_LIMIT:
        for item in chain(head, items):
            yield item, judge(item.data, rules) if isinstance(item, Candidate) else None
        return
    sent, kept = tee(_chunks(chain(head, items)))  # `kept` lags `sent` by the window: bounded memory
    payloads = ([item.data for item in chunk if isinstance(item, Candidate)] for chunk in sent)
    # forkserver: workers are not forked from a process that runs download threads and tqdm's monitor.
    with process_pool(workers) as pool:
        judge_chunk = partial(_judge_chunk, rules=rules)
        for chunk, verdicts in zip(kept, bounded_map(judge_chunk, payloads, pool, 2 * workers + 1)):
            verdict_of = iter(verdicts)
            for item in chunk:
                yield item, next(verdict_of) if isinstance(item, Candidate) else None


@dataclass
class _Tally:
    """What the run has decided so far."""

    kept: dict[str, _Kept] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    found: int = 0
    duplicates: int = 0

    def add(self, item: Item, verdict: Verdict | None, spool: IO[bytes]) -> None:
        self.found += 1
        if isinstance(item, Skip):
            self.skipped.append({"source": item.source, "reason": item.reason, "detail": item.detail})
            return
        assert verdict is not None
        if verdict[0] == "skip":
            self.skipped.append({"source": item.source, "reason": verdict[1], "detail": verdict[2]})
            return
        _, image_id, width, height, mode, fmt, digest = verdict
        if image_id in self.kept:  # the same pixels again: keep the first, record the others
            self.kept[image_id].duplicates.append(item.source)
            self.duplicates += 1
            return
        offset = spool.tell()
        spool.write(item.data)
        ext = item.ext or FORMAT_EXTENSIONS.get(fmt, ".img")
        self.kept[image_id] = _Kept(image_id, item.source, ext, digest, len(item.data), width, height, mode, fmt,
                                    offset)

    def counts(self) -> dict[str, Any]:
        by_reason = dict.fromkeys(REASONS, 0)
        for entry in self.skipped:
            by_reason[entry["reason"]] = by_reason.get(entry["reason"], 0) + 1
        return {"found": self.found, "accepted": len(self.kept), "skipped": len(self.skipped),
                "skipped_by_reason": by_reason, "duplicates": self.duplicates}


def _nothing_usable(source: str, counts: dict[str, Any]) -> FetchError:
    if counts["found"] == 0:
        return FetchError(f"fetch: no files found in {source!r}")
    reasons = ", ".join(f"{r} {n}" for r, n in counts["skipped_by_reason"].items() if n)
    return FetchError(f"fetch: nothing usable in {source!r}: {counts['found']} files found, "
                      f"all skipped ({reasons})")


def _manifest(tally: _Tally, kept: list[_Kept], shard_of: list[str]) -> dict[str, Any]:
    accepted = [{"id": k.id, "source": k.source, "sha256": k.sha256, "bytes": k.size, "width": k.width,
                 "height": k.height, "mode": k.mode, "format": k.format, "shard": shard,
                 "duplicates": sorted(k.duplicates)} for k, shard in zip(kept, shard_of, strict=True)]
    skipped = sorted(tally.skipped, key=lambda s: (s["source"], s["reason"], s["detail"]))
    return {"accepted": accepted, "skipped": skipped, "counts": tally.counts()}


def empty_manifest(**record: Any) -> dict[str, Any]:
    """The manifest of a raw store with no image, plus `record`."""
    return {**_manifest(_Tally(), [], []), **record}


def run_fetch(params: FetchParams, raw_dir: Path, metrics_path: Path | None, progress: bool = True,
              *, workers: int | None = None, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ingest `params.source` into `raw_dir` (replaced atomically) and write metrics; return the counts.
    `record` adds keys to the manifest (the extra set's source).

    Raises `FetchError` (one line) when the source is unusable or nothing in it is.
    """
    raw_dir = Path(raw_dir)
    rules = (params.max_pixels, params.min_side, params.keep_gray)
    with atomic_dir(raw_dir) as tmp:
        work = tmp / ".work"  # downloads and the spool live inside the temporary output: a kill leaves no trace
        work.mkdir()
        tally = _Tally()
        with open(work / "spool", "w+b") as spool, \
                tqdm(desc="fetch", unit="file", leave=False, delay=0.5,
                     disable=None if progress else True) as bar:  # None: no bar when stderr is no terminal
            def set_total(n: int) -> None:
                bar.total = n
                bar.refresh()

            items = iter_source(params.source, params, work, on_total=set_total)
            for item, verdict in decide(items, rules, workers or default_workers()):
                tally.add(item, verdict, spool)
                bar.update()
            if not tally.kept:
                raise _nothing_usable(params.source, tally.counts())
            if len(tally.kept) < params.min_images:  # refused before data/raw is replaced
                raise FetchError(f"fetch: {len(tally.kept)} usable images in {params.source!r}, fewer than "
                                 f"fetch.min_images={params.min_images}; nothing was written")
            kept = sorted(tally.kept.values(), key=lambda k: k.id)

            def reader(k: _Kept):
                def read() -> bytes:
                    spool.seek(k.offset)
                    return spool.read(k.size)
                return read

            shard_of = write_shards(tmp, ((k.id + k.ext, k.size, reader(k)) for k in kept), params.shard_bytes)
        shutil.rmtree(work)
        manifest = {**_manifest(tally, kept, shard_of), **(record or {})}
        (tmp / MANIFEST_NAME).write_bytes(json_bytes(manifest))
    counts = manifest["counts"]
    if metrics_path is not None:
        write_json_atomic(metrics_path, {k: counts[k] for k in
                                         ("found", "accepted", "skipped", "duplicates", "skipped_by_reason")})
    return counts


def summary_line(counts: dict[str, Any], source: str, raw_dir: Path) -> str:
    """One line for the stage's output: accepted, skipped by reason, duplicates."""
    reasons = ", ".join(f"{r} {n}" for r, n in counts["skipped_by_reason"].items() if n)
    return (f"fetch: {counts['accepted']} of {counts['found']} files accepted from {source} into {raw_dir}; "
            f"{counts['skipped']} skipped" + (f" ({reasons})" if reasons else "")
            + f"; {counts['duplicates']} duplicates")
