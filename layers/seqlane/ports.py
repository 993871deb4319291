"""What the domain needs from the outside world. Adapters (seqlane.adapters) implement these with boto3."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from seqlane.manifest import FastqFile


class SampleStatus(StrEnum):
    RECEIVING = "RECEIVING"
    MANIFESTED = "MANIFESTED"
    SUBMITTED = "SUBMITTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"  # the execution passed the state machine's timeout
    ABORTED = "ABORTED"  # the execution was stopped by an operator
    CONFLICT = "CONFLICT"  # two keys claim one slot, or the uploads disagree with the sample sheet: nothing starts


FINAL_STATUSES = frozenset({SampleStatus.SUCCEEDED, SampleStatus.FAILED, SampleStatus.TIMED_OUT, SampleStatus.ABORTED})
RETRYABLE_STATUSES = frozenset({SampleStatus.FAILED, SampleStatus.TIMED_OUT, SampleStatus.ABORTED})


Slot = tuple[int, int, int]  # (lane, read, segment): one FASTQ of a sample


@dataclass(frozen=True)
class SampleRecord:
    run_id: str
    sample_id: str
    status: SampleStatus
    files: dict[Slot, FastqFile] = field(default_factory=dict)
    manifest_version: str | None = None
    expected: frozenset[Slot] = frozenset()  # listed in the run folder when the completion marker arrived
    declared_lanes: frozenset[int] | None = None  # from the sample sheet; None: the sheet does not list it
    paired: bool | None = None  # from the sample sheet
    modality: str | None = None  # from the sample sheet ([Seqlane_Data] / [Seqlane_Settings])
    started: bool = False  # the execution of manifest_version was started (recorded after StartExecution)
    attempt: int = 1  # analysis attempt of manifest_version: a failed one run again is attempt 2, 3, ...
    # Keys that claim one slot (two or more: a conflict, nothing starts), every claimant's file by key.
    slot_claims: dict[Slot, dict[str, FastqFile]] = field(default_factory=dict)
    # From a v1 sample sheet: files named after this record's id (a Sample_Name) in folder F belong to sample F.
    folder_owners: frozenset[str] = frozenset()
    conflicts_reported: frozenset[str] = frozenset()  # conflict ids a SampleConflict event was published for


@dataclass(frozen=True)
class AnalysisState:
    """Where a sample's current analysis attempt stands (seqlane.attempts)."""

    status: SampleStatus
    version: str | None
    manifest_uri: str | None
    attempt: int
    started: bool
    failure_reason: str | None = None


@dataclass(frozen=True)
class RunState:
    closed: bool = False  # a completion marker arrived
    sheet_key: str | None = None  # a valid sample sheet was read
    sheet_error: str | None = None  # the last sample sheet could not be used, and why


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    claimed_version: str | None  # the version the sample holds after the claim
    superseded_from: str | None = None  # the version this one replaced, when a re-upload made it


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # this version is the sample's manifest (first time or again after a crash)
    OTHER_VERSION = "OTHER_VERSION"  # another version was claimed before: a re-upload changed content
    CONFLICT = "CONFLICT"  # the sample is held in CONFLICT: nothing is claimed or started


@dataclass(frozen=True)
class JobOutput:
    path: str
    uri: str
    size: int
    sha256: str


class Catalog(Protocol):
    def record_fastq(
        self, run_id: str, sample_id: str, fastq: FastqFile, ordering: str, folder: str | None = None
    ) -> SampleRecord:
        """`folder`: the parent folder, when it may be a v1 `<Sample_ID>/` folder (then the record returned without
        the file, its `folder_owners` holding `folder`, means: record it under sample `folder`)."""
        ...

    def add_folder_owners(self, run_id: str, file_sample: str, sample_ids: set[str]) -> None: ...
    def move_files(self, run_id: str, source: str, target: str, keys: set[str]) -> None: ...
    def drop_keys(self, run_id: str, sample_id: str, keys: set[str]) -> SampleRecord: ...
    def sample(self, run_id: str, sample_id: str) -> SampleRecord: ...
    def report_conflict(self, run_id: str, sample_id: str, conflict_id: str) -> bool:
        """True the first time this conflict of the sample is reported."""
        ...

    def hold_in_conflict(self, run_id: str, sample_id: str) -> bool: ...
    def release_conflict(self, run_id: str, sample_id: str) -> None: ...
    def record_ignored(self, run_id: str, key: str, reason: str) -> bool:
        """True the first time this key is recorded as ignored."""
        ...

    def mark_run_complete(self, run_id: str, marker_key: str) -> None: ...
    def record_sample_sheet(self, run_id: str, key: str, error: str | None) -> None: ...
    def declare_sample(
        self, run_id: str, sample_id: str, lanes: frozenset[int], paired: bool, modality: str | None
    ) -> None: ...
    def sheet_chunk_done(self, run_id: str, sheet_id: str, index: int) -> int: ...
    def record_listing(self, run_id: str, sample_id: str, listed: dict[Slot, frozenset[str]]) -> None: ...
    def samples_page(self, run_id: str, start: str | None, limit: int) -> tuple[list[SampleRecord], str | None]: ...
    def run_state(self, run_id: str) -> RunState: ...
    def samples_of_run(self, run_id: str) -> list[SampleRecord]: ...
    def claim_manifest(
        self, run_id: str, sample_id: str, version: str, manifest_uri: str, execution_name: str
    ) -> Claim: ...
    def supersede_manifest(
        self, run_id: str, sample_id: str, *, previous: str, version: str, manifest_uri: str, execution_name: str
    ) -> bool:
        """Replace version `previous` with `version` (a re-upload changed the sample); False if it moved on."""
        ...

    def mark_execution_started(self, run_id: str, sample_id: str, version: str) -> bool:
        """True for the first caller only, so exactly one ingest invocation reports the start."""
        ...

    def record_outputs(self, run_id: str, sample_id: str, version: str, outputs: list[JobOutput]) -> None: ...
    def finish_analysis(
        self, run_id: str, sample_id: str, version: str, attempt: int, *, status: SampleStatus, details: dict[str, Any]
    ) -> bool:
        """Enter a final state for this version and attempt. True when this call entered it (or entered it before
        without publishing its event): the caller publishes. False when the sample is unknown, moved on to
        another version or attempt, or is final already."""
        ...

    def mark_outcome_published(self, run_id: str, sample_id: str, version: str, attempt: int) -> None: ...
    def analysis_state(self, run_id: str, sample_id: str) -> AnalysisState | None: ...
    def begin_attempt(self, run_id: str, sample_id: str, version: str, attempt: int, execution_name: str) -> bool:
        """Move a sample whose attempt `attempt` of `version` failed to attempt + 1; False if it moved on."""
        ...


class ObjectStore(Protocol):
    def put_text(self, bucket: str, key: str, text: str, content_type: str) -> None: ...
    def list_page(self, bucket: str, prefix: str, token: str | None, max_keys: int) -> tuple[list[str], str | None]:
        """One page of keys under `prefix` in key order, and the token of the next page (None after the last)."""
        ...

    def get_text(self, bucket: str, key: str) -> str: ...
    def get_text_if_exists(self, bucket: str, key: str) -> str | None: ...
    def exists(self, bucket: str, key: str) -> bool: ...


class WorkQueue(Protocol):
    """Ingest's own queue: work that would grow with the run, split into messages that each do a bounded part."""

    def send(self, messages: list[dict[str, Any]]) -> None: ...


class Orchestrator(Protocol):
    def start_analysis(self, execution_name: str, execution_input: dict[str, Any]) -> bool:
        """Start once per name. True when started, or when an execution of that name and input is running
        (Step Functions treats that as the same start); False when one of that name already exists otherwise."""
        ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...
