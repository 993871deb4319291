"""The FASTQ checks the runner applies while staging (seqlane.runner.fastq), fed the way downloads arrive."""

from __future__ import annotations

import gzip
import zlib

import pytest

from seqlane.runner import fastq
from seqlane.runner.fastq import FastqCheck, InvalidInput, kind_of, read_records

RECORDS = b"".join(f"@read{i} 1:N:0:ACGT\nACGTAC\n+\nIIIIII\n".encode() for i in range(50))


def _check(name: str, data: bytes, chunk: int = 7) -> int | None:
    check = FastqCheck.for_file(name)
    for start in range(0, len(data), chunk):
        check.feed(data[start : start + chunk])
    return check.finish()


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_fastq_check_counts_gzip_records_whatever_the_chunking(chunk):
    # Given a valid gzipped FASTQ of 50 records, When it is fed in chunks of any size, Then it holds 50 reads
    assert _check("s3://b/x.fastq.gz", gzip.compress(RECORDS), chunk) == 50


def test_fastq_check_reads_multi_member_gzip():
    # Given two gzip members concatenated (as BGZF or `cat a.gz b.gz` write), Then both members' reads count
    assert _check("x.fastq.gz", gzip.compress(RECORDS) + gzip.compress(RECORDS)) == 100


def test_fastq_check_plain_fastq_and_last_record_without_newline():
    # Given a plain FASTQ whose last line has no newline, Then it is whole and counted
    assert _check("x.fastq", RECORDS.rstrip(b"\n")) == 50


def test_fastq_check_ora_is_not_decoded():
    # Given ORA bytes (only DRAGEN decodes them), Then nothing is counted, and only an empty file is refused
    assert kind_of("s_L001_R1_001.fastq.ora") == "ora"
    assert _check("x.fastq.ora", b"\x00ORA not decoded") is None
    with pytest.raises(InvalidInput, match="empty file"):
        _check("x.fastq.ora", b"")


def test_fastq_check_bad_crc_names_the_file():
    # Given a gzip whose CRC no longer matches its content
    data = bytearray(gzip.compress(RECORDS))
    data[-8] ^= 0xFF

    # Then the stream is refused, naming the file
    with pytest.raises(InvalidInput, match=r"x\.fastq\.gz: corrupt gzip stream"):
        _check("x.fastq.gz", bytes(data))


def test_fastq_check_truncated_gzip():
    # Given a gzip cut short, Then it is refused as truncated
    with pytest.raises(InvalidInput, match="truncated gzip stream"):
        _check("x.fastq.gz", gzip.compress(RECORDS)[:-20])


def test_fastq_check_trailing_garbage_after_gzip():
    # Given bytes after the last gzip member that are not another member, Then they are refused
    with pytest.raises(InvalidInput, match="unexpected bytes after gzip member 1"):
        _check("x.fastq.gz", gzip.compress(RECORDS) + b"garbage!")


def test_fastq_check_raw_deflate_is_not_gzip():
    # Given zlib data with a .gz name, Then it is not a gzip stream
    with pytest.raises(InvalidInput, match="corrupt gzip stream"):
        _check("x.fastq.gz", zlib.compress(RECORDS))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"hello world\nthis is text\nnot a fastq\nat all\n", r"read 1 \(line 1\): header does not start with '@'"),
        (RECORDS + b"@r\nACGT\n-\nIIII\n", r"read 51 \(line 201\): third line does not start with '\+'"),
        (RECORDS + b"@r\nACGT\n+\nIII\n", "read 51 .*quality has 3 characters but the sequence has 4"),
        (RECORDS + b"@r\nACGT\n", "ends inside a record: 2 of its 4 lines after read 50"),
        (b"\n\n", "holds no reads"),
        (b"x" * (5 * 1024 * 1024), "no complete 4-line record"),
    ],
)
def test_fastq_check_refuses_what_is_not_fastq(text, reason):
    # Given gzipped text that is not (whole) FASTQ, Then it is refused with the read and what is wrong
    with pytest.raises(InvalidInput, match=reason):
        _check("x.fastq.gz", gzip.compress(text), 1 << 16)


def test_fastq_check_empty_file():
    # Given a zero-byte .fastq.gz, Then it is refused as empty
    with pytest.raises(InvalidInput, match=r"x\.fastq\.gz: empty file \(0 bytes\)"):
        _check("x.fastq.gz", b"")


def test_fastq_check_gzip_of_nothing_holds_no_reads():
    # Given a valid gzip of zero bytes, Then it holds no reads
    with pytest.raises(InvalidInput, match="holds no reads"):
        _check("x.fastq.gz", gzip.compress(b""))


def test_read_records_yields_every_record_and_fails_loudly(tmp_path):
    # Given a whole file and the same file truncated
    whole, cut = tmp_path / "a.fastq.gz", tmp_path / "b.fastq.gz"
    whole.write_bytes(gzip.compress(RECORDS))
    cut.write_bytes(gzip.compress(RECORDS)[:-30])

    # Then the whole one yields its 50 records, and the truncated one raises naming it
    records = list(read_records(whole, chunk_size=5))
    assert len(records) == 50
    assert records[0] == ("read0 1:N:0:ACGT", "ACGTAC", "IIIIII")
    with pytest.raises(InvalidInput, match=r"b\.fastq\.gz: truncated gzip stream"):
        list(read_records(cut))


@pytest.mark.parametrize("limit", [1, 100, 4096])
def test_fastq_check_bounds_inflate_output_per_call(monkeypatch, limit):
    # Given inflate may return only `limit` bytes per call (as it does for a stream that inflates 1000-fold)
    monkeypatch.setattr(fastq, "_MAX_INFLATE", limit)

    # Then every record is still counted across members and chunks, and nothing is left as "truncated"
    assert _check("x.fastq.gz", gzip.compress(RECORDS) + gzip.compress(RECORDS), 977) == 100


def test_fastq_check_stream_of_zeros_is_refused_without_inflating_it_all():
    # Given 64 MB of zeros gzipped into about 64 kB (a corrupt or hostile file)
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = b"".join(zeros.compress(bytes(1 << 24)) for _ in range(4)) + zeros.flush()

    # Then it is refused as not FASTQ after the first few megabytes
    with pytest.raises(InvalidInput, match="no complete 4-line record"):
        _check("x.fastq.gz", data, 1 << 20)
