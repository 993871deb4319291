"""Verify a FASTQ while it streams past: a complete, valid gzip stream and 4-line FASTQ records, counted.

Pure (no I/O of its own): the runner feeds each downloaded chunk, in order, to a `FastqCheck` and asks for the
read count at the end. A `.fastq.gz` goes through the decompressor (ISA-L's when `isal` is installed, else zlib;
multi-member gzip as BGZF and concatenated files are), a plain `.fastq` is checked as it is, and a `.fastq.ora`
is only counted in bytes (ORA is decoded by DRAGEN alone).

What is refused, always naming the file: a bad CRC or length, a stream that ends inside a gzip member, bytes after
the last member that are not another member, a record whose header does not start with `@` or whose third line does
not start with `+`, a quality string of another length than its sequence, a file that ends inside a record, and a
file with no reads at all. Checking is done on whole chunks with C-level operations (split, join, count, map(len)),
so it costs about one pass over the decompressed bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

_zlib: ModuleType  # isal_zlib or zlib: the same functions and decompress objects
try:  # ISA-L's inflate is 2-3x zlib's; the result is the same
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a runner dependency, zlib the fallback
    _zlib = zlib

_GZIP_WBITS = 31
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_INFLATE = 64 * 1024 * 1024  # output per inflate call
_MAX_RECORD_BYTES = 4 * 1024 * 1024  # an Illumina record is a few hundred bytes; no newline for this long is not FASTQ
_GZIP_SUFFIXES = (".gz", ".gzip")
_ORA_SUFFIX = ".ora"


class InvalidInput(ValueError):
    """A FASTQ that cannot be analysed: the message names the file and what is wrong with it."""


def kind_of(name: str) -> str:
    """'gzip', 'ora' or 'plain', from the file name (Illumina's own suffixes)."""
    lowered = name.lower()
    if lowered.endswith(_ORA_SUFFIX):
        return "ora"
    if lowered.endswith(_GZIP_SUFFIXES):
        return "gzip"
    return "plain"


class _Inflate(Protocol):
    """A decompress object of zlib or isal_zlib."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


class GzipStream:
    """Inflate a (multi-member) gzip stream chunk by chunk; every member's CRC and length are checked by inflate."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members = 0
        self.compressed_bytes = 0
        self._inflate: _Inflate | None = None
        self._magic = b""
        self._member_output = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The inflated bytes of `data`, at most _MAX_INFLATE at a time (a stream of zeros inflates 1000-fold)."""
        self.compressed_bytes += len(data)
        pending = False  # a full piece may leave output inside inflate even when all input is taken
        while data or pending:
            if self._inflate is None:
                self._inflate = _zlib.decompressobj(_GZIP_WBITS)
                self.members += 1
                self._magic, self._member_output = b"", 0
            if len(self._magic) < 2 and data:
                self._magic += data[: 2 - len(self._magic)]
                if self.members > 1 and not _GZIP_MAGIC.startswith(self._magic):
                    raise InvalidInput(
                        f"{self.name}: unexpected bytes after gzip member {self.members - 1} (not another member)"
                    )
            try:
                piece = self._inflate.decompress(data, _MAX_INFLATE)
            except (zlib.error, _zlib.error) as err:
                if self.members > 1 and not self._member_output:
                    raise InvalidInput(
                        f"{self.name}: unexpected bytes after gzip member {self.members - 1} ({err})"
                    ) from err
                raise InvalidInput(f"{self.name}: corrupt gzip stream in member {self.members} ({err})") from err
            pending = len(piece) >= _MAX_INFLATE
            if piece:
                self._member_output += len(piece)
                yield piece
            if self._inflate.eof:
                data, pending = self._inflate.unused_data, False
                self._inflate = None
            else:
                data = self._inflate.unconsumed_tail

    def finish(self) -> None:
        if self.compressed_bytes == 0:
            raise InvalidInput(f"{self.name}: empty file (0 bytes)")
        if self._inflate is not None:
            raise InvalidInput(
                f"{self.name}: truncated gzip stream (ends inside member {self.members}, "
                f"after {self.compressed_bytes} bytes)"
            )


class FastqRecords:
    """Count 4-line FASTQ records in a text stream fed in arbitrary chunks, checking each record's shape."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reads = 0
        self._carry = b""

    def feed(self, data: bytes) -> None:
        self._take(data)

    def records(self, data: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
        """(header, sequence, quality) of each record completed by `data`, checked."""
        lines, whole = self._take(data)
        return zip(lines[0:whole:4], lines[1:whole:4], lines[3:whole:4], strict=True)

    def finish(self) -> int:
        self._tail()
        return self._count()

    def finish_records(self) -> Iterator[tuple[bytes, bytes, bytes]]:
        """The last record when the file does not end with a newline; then the empty-file check."""
        lines = self._tail()
        self._count()
        return zip(lines[0::4], lines[1::4], lines[3::4], strict=True)

    def _take(self, data: bytes) -> tuple[list[bytes], int]:
        """The lines of `buffered + data` and how many of them make whole records (all checked)."""
        if not data:
            return [], 0
        buffer = self._carry + data if self._carry else data
        lines = buffer.split(b"\n")
        whole = (len(lines) - 1) // 4 * 4  # the last element has no newline yet: it belongs to the next chunk
        if whole:
            self._check(lines, whole)
        self._carry = b"\n".join(lines[whole:]) if whole else buffer
        if len(self._carry) > _MAX_RECORD_BYTES:
            raise InvalidInput(
                f"{self.name}: not FASTQ: no complete 4-line record in {len(self._carry)} bytes after read {self.reads}"
            )
        return lines, whole

    def _tail(self) -> list[bytes]:
        tail = self._carry
        self._carry = b""
        if not tail.strip(b"\r\n"):
            return []
        lines = tail.rstrip(b"\r\n").split(b"\n")
        if not lines[0].startswith(b"@"):
            number = self.reads + 1
            raise InvalidInput(
                f"{self.name}: not FASTQ at read {number} (line {4 * number - 3}): header does not start with '@': "
                f"{_show(lines[0])}"
            )
        if len(lines) != 4:
            raise InvalidInput(
                f"{self.name}: ends inside a record: {len(lines)} of its 4 lines after read {self.reads} "
                "(truncated or not FASTQ)"
            )
        self._check(lines, 4)
        return lines

    def _count(self) -> int:
        if self.reads == 0:
            raise InvalidInput(f"{self.name}: holds no reads")
        return self.reads

    def _check(self, lines: list[bytes], count: int) -> None:
        headers, sequences, separators, qualities = (lines[i:count:4] for i in range(4))
        ok = (
            _all_start_with(headers, b"@")
            and (separators.count(b"+") == len(separators) or _all_start_with(separators, b"+"))
            and list(map(len, sequences)) == list(map(len, qualities))
        )
        if not ok:
            self._locate(headers, sequences, separators, qualities)
        self.reads += len(headers)

    def _locate(self, headers, sequences, separators, qualities) -> None:
        """The slow path, only once something is wrong: the first bad record, by number and line."""
        for index, (header, sequence, separator, quality) in enumerate(
            zip(headers, sequences, separators, qualities, strict=True)
        ):
            number = self.reads + index + 1
            where = f"{self.name}: not FASTQ at read {number} (line {4 * number - 3})"
            if not header.startswith(b"@"):
                raise InvalidInput(f"{where}: header does not start with '@': {_show(header)}")
            if not separator.startswith(b"+"):
                raise InvalidInput(f"{where}: third line does not start with '+': {_show(separator)}")
            if len(sequence) != len(quality):
                raise InvalidInput(
                    f"{where}: quality has {len(quality)} characters but the sequence has {len(sequence)}"
                )
        raise AssertionError("a FASTQ check failed but no record is wrong")  # pragma: no cover


def _all_start_with(lines: list[bytes], prefix: bytes) -> bool:
    """Whether every line starts with prefix (lines hold no newline, so each newline+prefix is one line's start)."""
    if not lines:
        return True
    joined = b"\n".join(lines)
    return joined.startswith(prefix) and joined.count(b"\n" + prefix) == len(lines) - 1


def _show(line: bytes) -> str:
    return repr(line[:40].decode("ascii", "replace")) + ("..." if len(line) > 40 else "")


@dataclass
class FastqCheck:
    """Everything checked for one staged file: feed the file's bytes in order, then `finish()` for its read count
    (None for ORA, which is not decoded here)."""

    name: str
    kind: str
    size: int = 0

    def __post_init__(self) -> None:
        self._gzip = GzipStream(self.name) if self.kind == "gzip" else None
        self._records = FastqRecords(self.name) if self.kind != "ora" else None

    @classmethod
    def for_file(cls, name: str) -> FastqCheck:
        return cls(name=name, kind=kind_of(name))

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self._records is None:
            return
        if self._gzip is None:
            self._records.feed(data)
            return
        for piece in self._gzip.feed(data):
            self._records.feed(piece)

    def finish(self) -> int | None:
        if self.size == 0:
            raise InvalidInput(f"{self.name}: empty file (0 bytes)")
        if self._gzip is not None:
            self._gzip.finish()
        return self._records.finish() if self._records is not None else None


def read_records(path: Path, chunk_size: int = 1024 * 1024) -> Iterator[tuple[str, str, str]]:
    """(header without '@', sequence, quality) of each record of a .fastq or .fastq.gz file, with every check of
    `FastqCheck`: a bad stream raises InvalidInput naming the file, it never just ends early."""
    name = str(path)
    kind = kind_of(name)
    if kind == "ora":
        raise InvalidInput(f"{name}: ORA-compressed FASTQ can only be read by DRAGEN")
    inflate = GzipStream(name) if kind == "gzip" else None
    records = FastqRecords(name)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(chunk_size):
            size += len(chunk)
            for piece in inflate.feed(chunk) if inflate else (chunk,):
                for header, sequence, quality in records.records(piece):
                    yield header[1:].decode("latin-1"), sequence.decode("latin-1"), quality.decode("latin-1")
    if size == 0:
        raise InvalidInput(f"{name}: empty file (0 bytes)")
    if inflate is not None:
        inflate.finish()
    for header, sequence, quality in records.finish_records():
        yield header[1:].decode("latin-1"), sequence.decode("latin-1"), quality.decode("latin-1")
