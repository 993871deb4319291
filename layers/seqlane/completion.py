"""When a sample is complete: one pure rule, used by the ingest function and by `seqlane plan`.

A sample may start when its run says which reads to wait for, and all of them are there:
- the sample sheet declares the sample with its lanes (a sheet without a Lane column cannot say how many lanes
  will come, so such a sample waits for the marker), or
- the run's completion marker has arrived; its listing of the run folder says which files each sample has.
Every lane seen, declared or listed needs R1 (and R2 when paired) for every split segment seen or listed.
Reads are paired unless the sample sheet says single-end.

A sample in conflict never starts (`conflicts`): two keys claim one of its slots (a lane-merged name next to a
lane-split one, the sample in two folders, one Sample_ID under two S-numbers), or its uploads bring a lane or a read
its sample sheet entry does not declare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from seqlane.ports import RunState, SampleRecord, Slot


@dataclass(frozen=True)
class Conflict:
    """Why a sample is held: `conflict_id` is stable (one SampleConflict event each), `keys` are the files named."""

    conflict_id: str
    slot: str  # "L001 R1" (split segments "L001 R1 #002")
    keys: tuple[str, ...]
    reason: str


def is_sample(record: SampleRecord) -> bool:
    """A record of a sample, not one that only says which `<Sample_ID>/` folders own a v1 Sample_Name."""
    return (
        bool(record.files or record.slot_claims or record.expected or record.manifest_version)
        or record.declared_lanes is not None
    )


def slot_label(slot: Slot) -> str:
    lane, read, segment = slot
    return f"L{lane:03d} R{read}" + (f" #{segment:03d}" if segment > 1 else "")


def conflicts(sample: SampleRecord) -> list[Conflict]:
    """Every conflict of the sample, in slot order: a pure function of its record, so any upload order gives the same
    answer once the same files and sheet are in."""
    found = []
    for slot in sorted(sample.slot_claims):
        keys = tuple(sorted(sample.slot_claims[slot]))
        if len(keys) > 1:
            label = slot_label(slot)
            reason = f"{len(keys)} files claim {sample.sample_id} {label} ({_why_several(keys)}); delete all but one"
            found.append(Conflict(f"slot:{label}", label, keys, reason))
    declared = sample.declared_lanes
    for slot, fastq in sorted(sample.files.items()):
        label = slot_label(slot)
        if declared and fastq.lane not in declared:
            lanes = ", ".join(str(lane) for lane in sorted(declared))
            reason = (
                f"the sample sheet declares {sample.sample_id} on lane{'s' if len(declared) > 1 else ''} {lanes} "
                f"only, but {fastq.key} is {_lane_of(fastq.key, fastq.lane)}"
            )
            found.append(Conflict(f"sheet:{label}", label, (fastq.key,), reason))
        elif sample.paired is False and fastq.read == 2:
            reason = f"the sample sheet declares a single-end run (no Read2 in [Reads]), but {fastq.key} is R2"
            found.append(Conflict(f"sheet:{label}", label, (fastq.key,), reason))
    return found


def _lane_of(key: str, lane: int) -> str:
    from seqlane.naming import FastqKey, classify_key

    kind = classify_key(key)
    merged = isinstance(kind, FastqKey) and kind.name.lane is None
    return f"lane-merged (read as lane {lane})" if merged else f"lane {lane}"


def _why_several(keys: Iterable[str]) -> str:
    """What differs between keys that claim one slot, in a lab's words."""
    from seqlane.naming import FastqKey, classify_key

    names = [kind for kind in map(classify_key, keys) if isinstance(kind, FastqKey)]
    folders = {kind.run_key.relative_path.rpartition("/")[0] for kind in names}
    numbers = {kind.name.sample_number for kind in names}
    merged = {kind.name.lane is None for kind in names}
    if len(merged) > 1:
        return "a lane-merged FASTQ next to lane-split ones"
    if len(folders) > 1:
        shown = ", ".join(f"{folder}/" if folder else "the run folder" for folder in sorted(folders))
        return f"the sample is in {len(folders)} folders: {shown}"
    if len(numbers) > 1:
        return "one Sample_ID under " + ", ".join(f"S{number}" for number in sorted(numbers))
    return "different files for one slot"


def reads_needed(sample: SampleRecord) -> tuple[int, ...]:
    """R1 and R2, unless the sample sheet says single-end. Nothing else can tell: an uploader may send the completion
    marker before the R2s, so a listing without R2 does not prove a single-end run."""
    return (1,) if sample.paired is False else (1, 2)


def required_slots(sample: SampleRecord) -> set[Slot]:
    known = {*sample.files, *sample.expected}
    lanes = {lane for lane, _, _ in known} | set(sample.declared_lanes or ())
    slots = set()
    for lane in lanes:
        segments = {segment for slot_lane, _, segment in known if slot_lane == lane} | {1}
        slots |= {(lane, read, segment) for read in reads_needed(sample) for segment in segments}
    return slots


def missing_reads(sample: SampleRecord) -> list[str]:
    """What the sample still waits for, as 'L001 R2' (split segments as 'L001 R2 #002')."""
    missing = sorted(required_slots(sample) - set(sample.files))
    if not sample.files and not missing:
        return ["any FASTQ (the sample sheet declares it, but no file has arrived)"]
    return [f"L{lane:03d} R{read}" + (f" #{segment:03d}" if segment > 1 else "") for lane, read, segment in missing]


def is_ready(sample: SampleRecord, run: RunState) -> bool:
    """All its reads are in, and something (its sheet entry or the run's marker) says which reads to wait for."""
    knows_what_to_wait_for = run.closed or bool(sample.declared_lanes)
    return knows_what_to_wait_for and bool(sample.files) and not missing_reads(sample) and not conflicts(sample)


def sample_keys(sample: SampleRecord) -> set[str]:
    """Every key recorded for the sample: its slots' files and every claimant of a slot in conflict."""
    return {f.key for f in sample.files.values()} | {key for claims in sample.slot_claims.values() for key in claims}


def account(uploaded: Iterable[str], samples: Iterable[SampleRecord], ignored: Iterable[str]) -> dict[str, Any]:
    """Where each uploaded key of a run ended: in a sample's manifest, ignored with a reason, or in a conflict (the
    sample sheet and completion markers are the run's control files, not counted). Keys of a sample held in
    conflict are all in conflict; a sample that started before its conflict keeps its manifest's keys there.
    `balanced`: every uploaded key is in exactly one of the three."""
    from seqlane.naming import CompletionMarkerKey, SampleSheetKey, classify_key

    data = {key for key in uploaded if not isinstance(classify_key(key), SampleSheetKey | CompletionMarkerKey)}
    in_manifests: set[str] = set()
    in_conflict: set[str] = set()
    for sample in samples:
        keys = sample_keys(sample)
        found = conflicts(sample)
        conflicted = {key for conflict in found for key in conflict.keys}
        if found and not sample.manifest_version:
            in_conflict |= keys
        else:
            in_conflict |= conflicted
            if sample.manifest_version:
                in_manifests |= keys - conflicted
    ignored_keys = set(ignored) & data
    in_manifests &= data
    in_conflict &= data
    unaccounted = sorted(data - in_manifests - ignored_keys - in_conflict)
    counted = len(in_manifests) + len(ignored_keys) + len(in_conflict)
    return {
        "uploaded": len(data),
        "in_manifests": len(in_manifests),
        "ignored": len(ignored_keys),
        "in_conflict": len(in_conflict),
        "balanced": not unaccounted and counted == len(data),
        "unaccounted": unaccounted,
    }
