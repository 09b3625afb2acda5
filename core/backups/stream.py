"""Streams between client tools and backup files: zstd and SHA-256 in one pass.

A dump is read from a tool's stdout in large chunks, compressed, hashed and written
to a partial file; a restore is the reverse. Every tool's exit status and stderr are
checked, and a tool is killed, never left behind, when dbr stops early.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import zstandard

from core.errors import Cancelled, DbrError
from core.secrets import redact

log = logging.getLogger(__name__)

CHUNK = 1 << 18
# Pipes to and from the tools keep the kernel's 64 KiB. A 1 MiB pipe let
# pg_dump run ahead of its reader, out of the CPU's cache: a 460 MB dump took
# 3.56 s instead of 3.19 s (medians of 5), and restores were no faster.
# zstd level 1: on pg_dump's COPY text it compresses within 1% of level 3 for
# 60% of the CPU, and the CPU is what a backup competes for with the server.
LEVEL = 1
# Lines a client prints on stderr that mean it failed, even when it exits 0.
ERROR_RE = re.compile(r"^(.*\b(error|fatal|panic)\b.*)$", re.IGNORECASE | re.MULTILINE)

Progress = Callable[[int], None]
Stop = Callable[[], bool]


@dataclass
class Written:
    size: int
    raw_size: int
    sha256: str
    frames: list[list[Any]] = field(default_factory=list)


class ToolFailed(DbrError):
    """A client tool exited badly or reported errors."""


def throttled(
    report: Progress, total: int | None = None, interval: float = 0.25
) -> Progress:
    """report every interval seconds or 5% of total, not for every chunk."""
    last = [0.0, -1]

    def maybe(done: int) -> None:
        now = time.monotonic()
        step = total is not None and done - last[1] >= total / 20
        if step or now - last[0] >= interval:
            last[0], last[1] = now, done
            report(done)

    return maybe


def describe_stderr(text: str, limit: int = 600) -> str:
    """The end of a tool's stderr, each line cut to its start and end (a
    client quotes the whole statement that failed: megabytes of hex)."""
    lines = [
        line if len(line) <= 200 else f"{line[:120]} … {line[-60:]}"
        for line in redact(text.strip()).splitlines()
    ]
    text = "\n".join(lines)
    return text if len(text) <= limit else "…" + text[-limit:]


def check_tool(
    name: str, code: int | None, stderr: str, *, errors_fatal: bool = True
) -> list[str]:
    """Raise ToolFailed unless the tool exited 0 with no error on stderr.

    Returns the stderr lines that remain (warnings), for the manifest.
    """
    if code != 0:
        why = (
            f"it was killed by signal {-code}"
            if code and code < 0
            else f"it exited with status {code}"
        )
        raise ToolFailed(
            f"{name} failed",
            cause=f"{why}: {describe_stderr(stderr)}" if stderr.strip() else why,
        )
    if errors_fatal and ERROR_RE.search(stderr):
        raise ToolFailed(
            f"{name} reported errors although it exited 0",
            cause=describe_stderr(stderr),
        )
    return [redact(line) for line in stderr.splitlines() if line.strip()]


@contextmanager
def partial_file(folder: Path, name: str) -> Iterator[tuple[Path, BinaryIO]]:
    """A new 0600 file named so that clean_partials() knows whose it is.

    Removed on any exit through an exception; the caller renames it on success.
    """
    path = folder / f".dbr-partial-{os.getpid()}-{name}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    handle = os.fdopen(fd, "wb", buffering=0)
    try:
        yield path, handle
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    finally:
        handle.close()


class Cuts(Protocol):
    """Where a compressed stream starts a new zstd frame: at CUT bytes into each
    match of PATTERN (a match being the SIZE bytes that start with PATTERN). A
    reader can then decompress one stretch of the file without the rest."""

    PATTERN: bytes
    SIZE: int
    CUT: int
    LIMIT: int  # frames at most; the rest of the stream stays in the last
    ended: bool  # true once no match will start a frame any more

    def label(self, match: bytes) -> Any:
        """What the manifest records for the frame a match starts; None: the
        match starts no frame."""


def compress_into(
    source: IO[bytes],
    out: BinaryIO,
    *,
    progress: Progress | None,
    stop: Stop | None,
    cuts: Cuts | None = None,
    tap: Callable[[bytes], None] | None = None,
) -> Written:
    """Compress source to out, hashing the compressed bytes; fsync at the end.

    With cuts, a new frame begins at each of its matches, and Written.frames
    lists [label, compressed offset] for each. tap sees every block read, in
    order, before it is compressed.
    """
    digest = hashlib.sha256()
    # One thread: it keeps up with pg_dump here, and worker threads would cost
    # about 45 MB of buffers.
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
    chunker = compressor.chunker(chunk_size=CHUNK)
    raw = size = 0
    frames: list[list[Any]] = []
    # Bytes read but not compressed yet: a match can straddle two reads, so the
    # last SIZE - 1 bytes of each wait for the next.
    held = b""

    def put(pieces: Iterator[bytes]) -> None:
        nonlocal size
        for piece in pieces:
            digest.update(piece)
            _write_all(out, piece)
            size += len(piece)

    while True:
        if stop is not None and stop():
            raise Cancelled("backup cancelled")
        block = source.read(CHUNK)
        raw += len(block)
        if tap is not None and block:
            tap(block)
        if cuts is None or (not held and _over(cuts, frames)):
            if not block:
                break
            put(chunker.compress(block))
            if progress is not None:
                progress(raw)
            continue
        # A match starts in the bytes held back or in this block; those in the
        # block are found where they lie, without copying it.
        edge = held + block[: cuts.SIZE - 1]
        found = itertools.chain(
            (at for at in _matches(edge, cuts) if at < len(held)),
            (at + len(held) for at in _matches(block, cuts)),
        )
        pieces = (memoryview(held), memoryview(block))
        done = 0
        for at in found:
            if _over(cuts, frames):
                break
            if at < len(held):
                label = cuts.label(edge[at : at + cuts.SIZE])
            else:
                label = cuts.label(block[at - len(held) : at - len(held) + cuts.SIZE])
            if label is None:
                continue
            cut = at + cuts.CUT
            for piece in _span(pieces, done, cut):
                put(chunker.compress(piece))
            put(chunker.finish())
            chunker = compressor.chunker(chunk_size=CHUNK)
            frames.append([label, size])
            done = cut
        end = len(held) + len(block)
        keep = cuts.SIZE - 1 if block and not _over(cuts, frames) else 0
        upto = max(done, end - keep)
        for piece in _span(pieces, done, upto):
            put(chunker.compress(piece))
        held = b"".join(bytes(piece) for piece in _span(pieces, upto, end))
        if not block:
            break
        if progress is not None:
            progress(raw)
    put(chunker.finish())
    out.flush()
    os.fsync(out.fileno())
    return Written(size=size, raw_size=raw, sha256=digest.hexdigest(), frames=frames)


def _over(cuts: Cuts, frames: list[list[Any]]) -> bool:
    """Whether no more frames will be cut (then nothing is scanned any more:
    large objects can be long runs of zeros)."""
    return cuts.ended or len(frames) >= cuts.LIMIT


def _matches(data: bytes, cuts: Cuts) -> Iterator[int]:
    """Where whole matches of cuts' pattern start in data."""
    at = data.find(cuts.PATTERN)
    while 0 <= at and at + cuts.SIZE <= len(data):
        yield at
        at = data.find(cuts.PATTERN, at + 1)


def _span(
    pieces: tuple[memoryview, memoryview], start: int, end: int
) -> Iterator[memoryview]:
    """Bytes start to end of two pieces read as one, without copying."""
    for piece in pieces:
        if start < len(piece) and end > 0:
            yield piece[max(start, 0) : min(end, len(piece))]
        start, end = start - len(piece), end - len(piece)


def _write_all(out: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written:]


def decompressed(
    path: Path,
    *,
    progress: Progress | None = None,
    stop: Stop | None = None,
    digest: Any = None,
    stretches: list[tuple[int, int]] | None = None,
) -> Iterator[bytes]:
    """The decompressed content of a backup file, in chunks; checks zstd checksums.

    progress receives compressed bytes consumed so far; digest, if given, is
    updated with every compressed byte (one pass for checksum and content).
    stretches, [start, end) offsets of whole frames, limits the reading to them.
    """
    decompressor = zstandard.ZstdDecompressor()
    with open(path, "rb") as handle:
        source = handle if stretches is None else _Stretches(handle, stretches)
        counting = _Counting(source, progress, digest)
        reader = decompressor.stream_reader(
            counting, read_size=CHUNK, read_across_frames=True
        )
        while True:
            if stop is not None and stop():
                raise Cancelled("stopped while reading the backup")
            try:
                block = reader.read(CHUNK)
            except zstandard.ZstdError as exc:
                raise DbrError(
                    f"backup file {path.name} cannot be decompressed",
                    cause=str(exc),
                    hint="the file is damaged; use another backup",
                ) from None
            if not block:
                return
            yield block


def opening(path: Path, start: int, end: int, size: int) -> bytes:
    """The first size bytes the frames from start to end decompress to."""
    with open(path, "rb") as handle:
        reader = zstandard.ZstdDecompressor().stream_reader(
            _Stretches(handle, [(start, end)]), read_size=1 << 14
        )
        try:
            return reader.read(size)
        except zstandard.ZstdError:
            return b""


class _Stretches:
    """A file read as the concatenation of some of its stretches."""

    def __init__(self, handle: BinaryIO, stretches: list[tuple[int, int]]) -> None:
        self.handle = handle
        self.left = list(reversed(stretches))

    def read(self, size: int = -1) -> bytes:
        while self.left:
            start, end = self.left[-1]
            if start >= end:
                self.left.pop()
                continue
            self.handle.seek(start)
            data = self.handle.read(
                min(size, end - start) if size >= 0 else end - start
            )
            if not data:
                raise DbrError(
                    f"backup file {self.handle.name} is shorter than its manifest says",
                    hint="the file is damaged; use another backup",
                )
            self.left[-1] = (start + len(data), end)
            return data
        return b""


class _Counting:
    """A file wrapper that reports how many bytes have been read from it."""

    def __init__(self, handle: Any, progress: Progress | None, digest: Any) -> None:
        self.handle = handle
        self.progress = progress
        self.digest = digest
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.done += len(data)
        if self.digest is not None:
            self.digest.update(data)
        if self.progress is not None and data:
            self.progress(self.done)
        return data


def sha256_of(path: Path, stop: Stop | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            if stop is not None and stop():
                raise Cancelled("stopped while checking the backup")
            digest.update(block)
    return digest.hexdigest()


class Tool:
    """A running client tool whose stderr goes to a temporary file (no deadlock)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        stdin: int | IO | None = None,
        stdout: int | IO | None = None,
    ) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        log.info("running %s", redact(" ".join(args)))
        try:
            self.process = subprocess.Popen(
                args,
                stdin=stdin,
                stdout=stdout,
                stderr=self._stderr,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            raise DbrError(
                f"cannot run {name}",
                cause=str(exc),
                hint="install the database's client tools",
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()

    def finish(self, *, errors_fatal: bool = True) -> list[str]:
        """Wait for the tool, then raise ToolFailed if it did not succeed."""
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with suppress(OSError):
                    pipe.close()
        code = self.process.wait()
        return check_tool(self.name, code, self.stderr(), errors_fatal=errors_fatal)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        self.kill()
        self._stderr.close()


def feed(tool: Tool, chunks: Iterator[bytes]) -> None:
    """Write chunks to the tool's stdin; a tool that stops reading has failed."""
    stdin = tool.process.stdin
    assert stdin is not None
    try:
        for chunk in chunks:
            stdin.write(chunk)
    except BrokenPipeError:
        pass  # the tool exited early; finish() reports its status and stderr
    finally:
        with suppress(OSError):
            stdin.close()


def find_program(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None
