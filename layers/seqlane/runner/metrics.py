"""Read DRAGEN's metrics CSVs (or the CPU engine's copies) into one flat dict of numbers for the catalogue.

DRAGEN writes `<prefix>.mapping_metrics.csv` as `SECTION,RG-or-empty,METRIC NAME,VALUE[,PERCENT]` rows and
`<prefix>.time_metrics.csv` as `RUN TIME,,Time <step>,hh:mm:ss.sss,SECONDS` rows. Only the whole-sample
"MAPPING/ALIGNING SUMMARY" section is kept (per read group rows would collide); each metric name becomes a
snake_case key (`Mapped reads` -> `mapped_reads`), its percentage `<key>_pct`, and time_metrics' `Total runtime`
becomes `total_runtime_seconds`. Values DRAGEN leaves as NA, empty or text are skipped: the dict holds numbers only.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

MAPPING_SUFFIX = ".mapping_metrics.csv"
TIME_SUFFIX = ".time_metrics.csv"
SUMMARY_SECTION = "MAPPING/ALIGNING SUMMARY"
RUN_TIME_SECTION = "RUN TIME"
TOTAL_RUNTIME = "Total runtime"
TOTAL_RUNTIME_KEY = "total_runtime_seconds"
PCT_SUFFIX = "_pct"

# The headline metrics every engine's output carries (DRAGEN's row names, snake_cased).
TOTAL_INPUT_READS = "total_input_reads"
MAPPED_READS = "mapped_reads"
DUPLICATE_FREE_MAPPED_PCT = "number_of_unique_mapped_reads_excl_duplicate_marked_reads_pct"

_INTEGER = re.compile(r"[+-]?\d+")
_CLOCK = re.compile(r"(\d+):([0-5]?\d):(\d+(?:\.\d*)?)")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


class MetricsError(ValueError):
    """A metrics file exists but cannot be parsed: the message names the file and line."""


def summary_metrics(output_dir: Path) -> dict[str, float | int]:
    """The flat metrics of one DRAGEN output directory; {} when it holds no mapping metrics."""
    mapping = _single(Path(output_dir), MAPPING_SUFFIX)
    if mapping is None:
        return {}
    metrics: dict[str, float | int] = {}
    for line, fields in _rows(mapping):
        if fields[0] != SUMMARY_SECTION:
            continue
        key = metric_key(fields[2])
        if not key:
            raise MetricsError(f"{mapping}:{line}: metric name {fields[2]!r} has no letters or digits")
        _put(metrics, key, _number(fields[3]))
        if len(fields) == 5:
            _put(metrics, key + PCT_SUFFIX, _number(fields[4], percent=True))
    timing = _single(Path(output_dir), TIME_SUFFIX)
    if timing is not None:
        for _, fields in _rows(timing):
            if fields[0] == RUN_TIME_SECTION and fields[2] == TOTAL_RUNTIME:
                _put(metrics, TOTAL_RUNTIME_KEY, _seconds(fields))
    return metrics


def metric_key(name: str) -> str:
    """DRAGEN's metric name as a snake_case key: `Reads with MAPQ [40:inf)` -> `reads_with_mapq_40_inf`."""
    return _NOT_WORD.sub("_", name.lower()).strip("_")


def _single(directory: Path, suffix: str) -> Path | None:
    """The one file ending in suffix directly in directory (DRAGEN writes one per prefix)."""
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if p.name.endswith(suffix) and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise MetricsError(f"{directory}: more than one *{suffix} ({names}); cannot tell which is the sample's")
    return found[0] if found else None


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row; a row that is not 4 or 5 fields is an error."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            rows = [(reader.line_num, fields) for fields in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MetricsError(f"{path}: cannot read metrics: {err}") from err
    parsed = []
    for line, raw in rows:
        fields = [field.strip() for field in raw]
        if not any(fields):
            continue
        if len(fields) not in (4, 5) or not fields[0] or not fields[2]:
            raise MetricsError(
                f"{path}:{line}: expected SECTION,RG,METRIC,VALUE[,PERCENT], got {len(fields)} fields: "
                f"{','.join(fields)[:200]!r}"
            )
        parsed.append((line, fields))
    return parsed


def _number(text: str, *, percent: bool = False) -> float | int | None:
    """An int for whole counts, a float for decimals (always for percentages); None for NA, empty or text."""
    if not percent and _INTEGER.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _seconds(fields: list[str]) -> float | None:
    """Runtime in seconds: DRAGEN's seconds column, else its hh:mm:ss.sss value."""
    if len(fields) == 5:
        seconds = _number(fields[4], percent=True)
        if seconds is not None:
            return seconds
    clock = _CLOCK.fullmatch(fields[3])
    if clock is None:
        return None
    hours, minutes, clock_seconds = clock.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(clock_seconds)


def _put(metrics: dict[str, float | int], key: str, value: float | int | None) -> None:
    """Keep the first value of a key: DRAGEN lists each summary metric once, a repeat is not the sample's."""
    if value is not None:
        metrics.setdefault(key, value)
