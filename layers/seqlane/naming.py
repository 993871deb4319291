"""Illumina file naming: what each uploaded key of a run folder is, and why seqlane ignores the keys it ignores.

A key is `<run>/<path>`: the run is the first path segment, the path may go through sub-folders (`Sample_Project/`,
`Analysis/1/Data/fastq/`, `Project_X/Sample_Y/`). `classify_key` sorts every key into a FASTQ of a sample, the
run's sample sheet, a run completion marker, or an ignored key with a reason; it never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RUN_COMPLETION_MARKERS = frozenset({"CopyComplete.txt", "RTAComplete.txt", "RTAComplete.xml"})
SAMPLE_SHEET_NAME = "SampleSheet.csv"
MAX_LANE = 8

UNDETERMINED = "Undetermined"
READS = ("R1", "R2", "I1", "I2")
INDEX_READS = frozenset({"I1", "I2"})

# Suffix -> compression, longest first so `.fastq.gz` wins over `.fastq`.
_FASTQ_SUFFIXES = ((".fastq.gz", "gz"), (".fastq.ora", "ora"), (".fastq", "none"))
_SUFFIX_OF_COMPRESSION = {compression: suffix for suffix, compression in _FASTQ_SUFFIXES}
_SHORT_FASTQ_SUFFIXES = (".fq.gz", ".fq.ora", ".fq")  # refused by name, so the reason can say which are read
_FASTQ_LIKE_SUFFIXES = tuple(suffix for suffix, _ in _FASTQ_SUFFIXES) + _SHORT_FASTQ_SUFFIXES
_DASH = "\N{EN DASH}"
_NAME_PATTERN = "<Sample_ID>_S<n>[_L<lane>]_<R1|R2|I1|I2>_<segment>.fastq.gz"

# Stem of a BCL Convert / bcl2fastq FASTQ name. The sample group is greedy and the tail after it can hold no `_S`,
# so the LAST `_S<n>` followed by a well-formed tail decides: Sample_IDs may themselves contain `_S2` or `_L001`.
# Lane and segment take any digits here so that out-of-range values get their own reason below.
_FASTQ_STEM = re.compile(
    r"(?P<sample>.+)_S(?P<number>\d+)(?:_L(?P<lane>\d+))?_(?P<read>[RI][12])_(?P<segment>\d+)", re.DOTALL
)
# Only to name an unknown read (R3, I3, X1) when the stem does not match.
_READ_LIKE = re.compile(r"_S\d+(?:_L\d+)?_(?P<read>[A-Za-z]\d+)_\d+", re.DOTALL)
_SAMPLE_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_MAX_NUMBER_DIGITS = 9

_CHECKSUM_SUFFIXES = (".md5", ".md5sum", ".sha256", ".sha1")
_REPORT_FOLDERS = frozenset({"Reports", "Logs", "Stats", "InterOp", "Thumbnail_Images"})
_REPORT_SUFFIXES = (".html", ".json", ".xml", ".log", ".txt", ".csv", ".bin", ".png", ".pdf")


class UnrecognisedKey(ValueError):
    """The key or file name is not one seqlane uses; the message says why."""


@dataclass(frozen=True, slots=True)
class RunKey:
    """An ingest-bucket key split into its run (first path segment) and the path below it."""

    run_id: str
    relative_path: str

    @property
    def file_name(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


def split_run_key(key: str) -> RunKey:
    run_id, sep, relative_path = key.partition("/")
    if not sep or not run_id or not relative_path:
        raise UnrecognisedKey(f"key {key!r} is not under a run folder (expected '<run>/<file>')")
    return RunKey(run_id=run_id, relative_path=relative_path)


# ---- FASTQ names


@dataclass(frozen=True, slots=True)
class FastqName:
    """One FASTQ file name, as BCL Convert or bcl2fastq writes it."""

    sample_id: str
    sample_number: int  # the S<n>; 0 only for Undetermined
    lane: int | None  # None for lane-merged names (--no-lane-splitting / NoLaneSplitting)
    read: str  # "R1", "R2", "I1" or "I2"
    segment: int  # 1 for _001, 2 for _002 (split FASTQs)
    compression: str  # "gz", "ora" or "none"

    @property
    def is_index(self) -> bool:
        return self.read in INDEX_READS

    @property
    def is_undetermined(self) -> bool:
        return self.sample_id == UNDETERMINED and self.sample_number == 0

    @property
    def read_number(self) -> int:
        return int(self.read[1])


def _split_suffix(file_name: str) -> tuple[str, str]:
    for suffix, compression in _FASTQ_SUFFIXES:
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)], compression
    for suffix in _SHORT_FASTQ_SUFFIXES:
        if file_name.endswith(suffix):
            raise UnrecognisedKey(
                f"{file_name!r} ends in {suffix}; only .fastq.gz, .fastq.ora and .fastq FASTQs are read"
            )
    raise UnrecognisedKey(f"{file_name!r} is not a FASTQ (expected .fastq.gz, .fastq.ora or .fastq)")


def parse_fastq_name(file_name: str) -> FastqName:
    """The sample, lane, read and segment of a FASTQ file name; raises UnrecognisedKey saying what is wrong."""
    stem, compression = _split_suffix(file_name)
    match = _FASTQ_STEM.fullmatch(stem)
    if match is None:
        read_like = _READ_LIKE.search(stem)
        if read_like is not None and read_like["read"] not in READS:
            raise UnrecognisedKey(f"{file_name!r} has read {read_like['read']}; reads are R1, R2, I1 and I2")
        raise UnrecognisedKey(f"{file_name!r} is not an Illumina FASTQ name ({_NAME_PATTERN})")

    sample, number, lane, segment = match["sample"], match["number"], match["lane"], match["segment"]
    if _SAMPLE_ID.fullmatch(sample) is None:
        raise UnrecognisedKey(
            f"{file_name!r} has Sample_ID {sample!r}; a Sample_ID holds only letters, digits, '_', '-' and '.'"
        )
    if number != "0" and number.startswith("0"):
        raise UnrecognisedKey(f"{file_name!r} has sample number S{number}; sample numbers have no leading zeros")
    if len(number) > _MAX_NUMBER_DIGITS:
        raise UnrecognisedKey(
            f"{file_name!r} has a sample number of {len(number)} digits; at most {_MAX_NUMBER_DIGITS} are read"
        )
    if int(number) == 0 and sample != UNDETERMINED:
        raise UnrecognisedKey(f"{file_name!r} is sample number S0, which only {UNDETERMINED} reads use")
    if lane is not None and (len(lane) != 3 or not 1 <= int(lane) <= MAX_LANE):
        raise UnrecognisedKey(f"{file_name!r} has lane L{lane}; lanes are L001{_DASH}L{MAX_LANE:03d}")
    if len(segment) != 3 or int(segment) == 0:
        raise UnrecognisedKey(f"{file_name!r} has segment {segment}; segments are 001{_DASH}999")
    return FastqName(
        sample_id=sample,
        sample_number=int(number),
        lane=None if lane is None else int(lane),
        read=match["read"],
        segment=int(segment),
        compression=compression,
    )


def format_fastq_name(name: FastqName) -> str:
    """The file name BCL Convert would write for `name`: the inverse of parse_fastq_name."""
    lane = "" if name.lane is None else f"_L{name.lane:03d}"
    suffix = _SUFFIX_OF_COMPRESSION.get(name.compression)
    if suffix is None:
        raise ValueError(f"compression {name.compression!r} is not one of gz, ora, none")
    file_name = f"{name.sample_id}_S{name.sample_number}{lane}_{name.read}_{name.segment:03d}{suffix}"
    if parse_fastq_name(file_name) != name:
        raise ValueError(f"{name!r} has no Illumina file name ({file_name!r} reads back differently)")
    return file_name


# ---- keys of a run folder


@dataclass(frozen=True, slots=True)
class FastqKey:
    """A FASTQ of a sample, to go into its manifest."""

    run_key: RunKey
    name: FastqName


@dataclass(frozen=True, slots=True)
class SampleSheetKey:
    """The run's sample sheet (top of the run folder)."""

    run_key: RunKey


@dataclass(frozen=True, slots=True)
class CompletionMarkerKey:
    """A completion marker at the top of the run folder: the run's files are all uploaded."""

    run_key: RunKey


@dataclass(frozen=True, slots=True)
class IgnoredKey:
    """A key seqlane does not use; `reason` says why (run_id is None when the key is not under a run folder)."""

    key: str
    run_id: str | None
    reason: str


KeyKind = FastqKey | SampleSheetKey | CompletionMarkerKey | IgnoredKey


def classify_key(key: str) -> KeyKind:
    """What an ingest-bucket key is; never raises."""
    try:
        run_key = split_run_key(key)
    except UnrecognisedKey as reason:
        return IgnoredKey(key=key, run_id=None, reason=str(reason))
    kind = _classify_in_run(run_key)
    if isinstance(kind, str):
        return IgnoredKey(key=key, run_id=run_key.run_id, reason=kind)
    return kind


def _classify_in_run(run_key: RunKey) -> FastqKey | SampleSheetKey | CompletionMarkerKey | str:
    """The kind of a key inside a run folder, or why it is ignored."""
    path, file_name = run_key.relative_path, run_key.file_name
    top_level = "/" not in path
    if file_name in RUN_COMPLETION_MARKERS:
        if top_level:
            return CompletionMarkerKey(run_key)
        return f"{path!r}: a {file_name} completion marker inside a sub-folder does not close the run"
    if file_name == SAMPLE_SHEET_NAME:
        if top_level:
            return SampleSheetKey(run_key)
        return f"{path!r} is a copy of the sample sheet; only the top-level {SAMPLE_SHEET_NAME} is read"
    reason = _not_sequence_data(path, file_name)
    if reason is not None:
        return reason
    return _fastq_of_sample(run_key)


def _not_sequence_data(path: str, file_name: str) -> str | None:
    """Why a key that is neither a marker nor the sheet is not a FASTQ, judged by its name and folders alone."""
    lower = file_name.lower()
    report_folder = next((folder for folder in path.split("/")[:-1] if folder in _REPORT_FOLDERS), None)
    if not file_name:
        return f"{path!r} is a folder placeholder, not a file"
    if lower.endswith(_CHECKSUM_SUFFIXES):
        return f"{path!r} is a checksum sidecar, not sequence data"
    if report_folder is not None:
        return f"{path!r} is under {report_folder}/, which holds reports and logs, not sequence data"
    if lower.endswith(_REPORT_SUFFIXES):
        return f"{path!r} is a report or log file, not sequence data"
    if not lower.endswith(_FASTQ_LIKE_SUFFIXES):
        return f"{path!r} is not a FASTQ, sample sheet or run completion marker"
    return None


def _fastq_of_sample(run_key: RunKey) -> FastqKey | str:
    try:
        name = parse_fastq_name(run_key.file_name)
    except UnrecognisedKey as reason:
        return str(reason)
    if name.is_index:
        return f"{run_key.relative_path!r} is index read {name.read}; index reads are kept out of manifests"
    if name.is_undetermined:
        return f"{run_key.relative_path!r} holds {UNDETERMINED} reads, which are not assigned to a sample"
    return FastqKey(run_key=run_key, name=name)
