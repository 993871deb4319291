"""When a sample is complete: one pure rule, used by the ingest function and by `seqlane plan`.

A sample may start when its run says which reads to wait for, and all of them are there:
- the sample sheet declares the sample with its lanes (a sheet without a Lane column cannot say how many lanes
  will come, so such a sample waits for the marker), or
- the run's completion marker has arrived; its listing of the run folder says which files each sample has.
Every lane seen, declared or listed needs R1 (and R2 when paired) for every split segment seen or listed.
Reads are paired unless the sample sheet says single-end.
"""

from __future__ import annotations

from seqlane.ports import RunState, SampleRecord, Slot


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
    return knows_what_to_wait_for and bool(sample.files) and not missing_reads(sample)
