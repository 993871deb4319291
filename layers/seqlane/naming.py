"""Illumina file naming: which uploaded keys are FASTQs of which sample, lane and read, and which close a run."""

from __future__ import annotations

import re
from dataclasses import dataclass

# BCL Convert / bcl2fastq: <Sample_ID>_S<n>_L<lane>_R<1|2>_001.fastq.gz
_FASTQ_NAME = re.compile(
    r"^(?P<sample>.+)_S(?P<number>\d+)_L(?P<lane>\d{3})_R(?P<read>[12])_(?P<segment>\d{3})\.fastq\.gz$"
)
RUN_COMPLETION_MARKERS = frozenset({"CopyComplete.txt", "RTAComplete.txt"})


@dataclass(frozen=True, slots=True)
class FastqName:
    sample_id: str
    sample_number: int
    lane: int
    read: int
    segment: int


@dataclass(frozen=True, slots=True)
class RunKey:
    """An ingest-bucket key split into its run (first path segment) and the path below it."""

    run_id: str
    relative_path: str

    @property
    def file_name(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


class UnrecognisedKey(ValueError):
    """The key is not a file seqlane uses; the message says why."""


def split_run_key(key: str) -> RunKey:
    run_id, sep, relative_path = key.partition("/")
    if not sep or not run_id or not relative_path:
        raise UnrecognisedKey(f"key {key!r} is not under a run folder (expected '<run>/<file>')")
    return RunKey(run_id=run_id, relative_path=relative_path)


def parse_fastq_name(file_name: str) -> FastqName:
    match = _FASTQ_NAME.match(file_name)
    if match is None:
        raise UnrecognisedKey(
            f"{file_name!r} is not an Illumina FASTQ name (<Sample>_S<n>_L<lane>_R<1|2>_001.fastq.gz)"
        )
    if match["segment"] != "001":
        raise UnrecognisedKey(f"{file_name!r} is split segment {match['segment']}; only _001 is supported")
    if match["number"] == "0":
        raise UnrecognisedKey(f"{file_name!r} holds Undetermined (S0) reads, which are not analysed")
    if match["lane"] == "000":
        raise UnrecognisedKey(f"{file_name!r} has lane L000; lanes start at L001")
    return FastqName(
        sample_id=match["sample"],
        sample_number=int(match["number"]),
        lane=int(match["lane"]),
        read=int(match["read"]),
        segment=int(match["segment"]),
    )


def is_run_completion_marker(run_key: RunKey) -> bool:
    """Only a marker at the top of the run folder closes the run (not one inside a sub-folder)."""
    return run_key.relative_path in RUN_COMPLETION_MARKERS
