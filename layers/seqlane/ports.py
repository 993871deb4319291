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


@dataclass(frozen=True)
class SampleRecord:
    run_id: str
    sample_id: str
    status: SampleStatus
    files: dict[tuple[int, int], FastqFile] = field(default_factory=dict)  # (lane, read) -> file
    manifest_version: str | None = None
    expected: frozenset[tuple[int, int]] = frozenset()  # (lane, read) listed in the run folder at completion

    def missing_reads(self) -> list[str]:
        """Reads expected or implied (a lane's other read) but not recorded yet, as 'L001 R2'."""
        lanes = sorted({lane for lane, _ in self.files} | {lane for lane, _ in self.expected})
        return [f"L{lane:03d} R{read}" for lane in lanes for read in (1, 2) if (lane, read) not in self.files]

    @property
    def has_all_reads(self) -> bool:
        return bool(self.files) and not self.missing_reads()


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # this version is the sample's manifest (first time or again after a crash)
    OTHER_VERSION = "OTHER_VERSION"  # another version was claimed before: a re-upload changed content


@dataclass(frozen=True)
class JobOutput:
    path: str
    uri: str
    size: int
    sha256: str


class Catalog(Protocol):
    def record_fastq(self, run_id: str, sample_id: str, fastq: FastqFile, ordering: str) -> SampleRecord: ...
    def record_ignored(self, run_id: str, key: str, reason: str) -> None: ...
    def mark_run_complete(self, run_id: str, marker_key: str) -> None: ...
    def expect_reads(self, run_id: str, sample_id: str, slots: set[tuple[int, int]]) -> None: ...
    def run_is_complete(self, run_id: str) -> bool: ...
    def samples_of_run(self, run_id: str) -> list[SampleRecord]: ...
    def claim_manifest(
        self, run_id: str, sample_id: str, version: str, manifest_uri: str, execution_name: str
    ) -> ClaimOutcome: ...
    def mark_execution_started(self, run_id: str, sample_id: str, version: str) -> bool:
        """True for the first caller only, so exactly one ingest invocation reports the start."""
        ...

    def record_outputs(self, run_id: str, sample_id: str, version: str, outputs: list[JobOutput]) -> None: ...
    def record_job_outcome(
        self, run_id: str, sample_id: str, version: str, status: SampleStatus, details: dict[str, Any]
    ) -> bool:
        """False when the sample has moved on to another version."""
        ...


class ObjectStore(Protocol):
    def put_text(self, bucket: str, key: str, text: str, content_type: str) -> None: ...
    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...
    def get_text(self, bucket: str, key: str) -> str: ...


class Orchestrator(Protocol):
    def start_analysis(self, execution_name: str, execution_input: dict[str, Any]) -> bool:
        """Start once per name. True when started, or when an execution of that name and input is running
        (Step Functions treats that as the same start); False when one of that name already exists otherwise."""
        ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...
