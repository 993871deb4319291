"""FASTQ checks in worker processes (seqlane.runner.verify): the same answers as in place, and a worker is never
reused after a refused file."""

from __future__ import annotations

import gzip

import pytest

from seqlane.runner.fastq import InvalidInput
from seqlane.runner.verify import VerifierFailed, Verifiers

RECORDS = b"".join(f"@read{i}\nACGTAC\n+\nIIIIII\n".encode() for i in range(1000))


def _verify(verifiers: Verifiers, name: str, data: bytes, chunk: int = 4096) -> int | None:
    with verifiers.check(name, len(data)) as check:
        for start in range(0, len(data), chunk):
            check.feed(data[start : start + chunk])
        return check.finish()


def test_verifiers_count_reads_in_a_worker_process_and_reuse_it():
    # Given verifiers that send every file to a worker process
    with Verifiers(processes=1, min_process_bytes=0) as verifiers:
        # When two valid files are checked one after the other
        first = _verify(verifiers, "a.fastq.gz", gzip.compress(RECORDS))
        worker = verifiers._idle[0]
        second = _verify(verifiers, "b.fastq", RECORDS + RECORDS)

        # Then both are counted, by the same worker
        assert (first, second) == (1000, 2000)
        assert verifiers._idle == [worker]
        assert worker.proc.poll() is None
    # and it ends with the verifiers
    assert worker.proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (gzip.compress(RECORDS)[:-10], "truncated gzip stream"),
        (gzip.compress(RECORDS.replace(b"IIIIII", b"III", 1)), "quality has 3 characters"),
        (b"", "empty file"),
    ],
)
def test_verifiers_worker_refuses_a_bad_file_naming_it(data, reason):
    # Given verifiers that send every file to a worker process
    with Verifiers(processes=1, min_process_bytes=0) as verifiers:
        # When a bad file is checked, Then the worker's answer is the same InvalidInput as in place
        with pytest.raises(InvalidInput, match=rf"s3://b/x\.fastq\.gz: .*{reason}"):
            _verify(verifiers, "s3://b/x.fastq.gz", data)
        # and that worker is not reused; the next file gets a fresh one that counts it
        assert verifiers._idle == []
        assert _verify(verifiers, "ok.fastq.gz", gzip.compress(RECORDS)) == 1000


def test_verifiers_small_and_ora_files_are_checked_in_place():
    # Given verifiers with a size threshold, Then smaller files and ORA start no process
    with Verifiers(processes=2, min_process_bytes=1 << 20) as verifiers:
        assert _verify(verifiers, "a.fastq.gz", gzip.compress(RECORDS)) == 1000
        with verifiers.check("a.fastq.ora", 10 << 20) as check:
            check.feed(b"ORA")
            assert check.finish() is None
        assert verifiers._idle == []


def test_verifiers_broken_worker_is_a_verifier_failure_not_the_files():
    # Given a worker that receives a frame it cannot read (a bug, not a bad file)
    with Verifiers(processes=1, min_process_bytes=0) as verifiers, verifiers.check("x.fastq", 1) as check:
        check._send(b"not a length\n")

        # Then it answers in one line why it stopped, and the runner sees a VerifierFailed
        with pytest.raises(VerifierFailed, match="failed in its worker: ValueError"):
            check.finish()
