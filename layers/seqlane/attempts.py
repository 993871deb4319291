"""Running a failed analysis again: the same input version, a new attempt under a new execution name.

A sample whose current analysis attempt ended FAILED, TIMED_OUT or ABORTED can be run again once its cause is
fixed (a reference restored, a queue repaired). The catalog moves it to attempt N+1 in one conditional write, only
from a final failed state of the same version and attempt N, so two callers (or a retry racing a late event) start
one attempt, and an attempt never starts while the previous one is live. The attempt's execution is named
`<run>-<sample>-<version>-a<N>`; StartExecution is idempotent per name, so a crash between the catalog write and
the start is repaired by calling again. Earlier attempts stay on the sample as `previous_attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from seqlane.manifest import Manifest, parse_s3_uri
from seqlane.observability import logger
from seqlane.ports import RETRYABLE_STATUSES, Catalog, ObjectStore, Orchestrator, SampleStatus


class RetryDisposition(StrEnum):
    STARTED = "STARTED"  # attempt N+1 was started now
    RESUMED = "RESUMED"  # attempt N+1 was recorded but not started (a crash): started now
    NOT_FAILED = "NOT_FAILED"  # its current attempt did not fail (running, succeeded, waiting for reads...)
    UNKNOWN = "UNKNOWN"  # the catalog has no such sample, or it has no manifest yet
    MOVED_ON = "MOVED_ON"  # another caller started the next attempt first, or the sample changed version


@dataclass(frozen=True)
class RetryOutcome:
    run_id: str
    sample_id: str
    disposition: RetryDisposition
    attempt: int | None = None
    execution_name: str | None = None
    previous_status: str | None = None
    previous_reason: str | None = None


@dataclass
class AttemptService:
    catalog: Catalog
    store: ObjectStore
    orchestrator: Orchestrator

    def retry(self, run_id: str, sample_id: str) -> RetryOutcome:
        state = self.catalog.analysis_state(run_id, sample_id)
        if state is None or state.manifest_uri is None or state.version is None:
            return RetryOutcome(run_id, sample_id, RetryDisposition.UNKNOWN)
        manifest = self._manifest(state.manifest_uri)
        if state.status in RETRYABLE_STATUSES:
            attempt = state.attempt + 1
            name = manifest.execution_name_for(attempt)
            if not self.catalog.begin_attempt(run_id, sample_id, state.version, state.attempt, name):
                return RetryOutcome(run_id, sample_id, RetryDisposition.MOVED_ON)
            disposition = RetryDisposition.STARTED
        elif state.status is SampleStatus.MANIFESTED and state.attempt > 1 and not state.started:
            attempt, name, disposition = (
                state.attempt,
                manifest.execution_name_for(state.attempt),
                RetryDisposition.RESUMED,
            )
        else:
            return RetryOutcome(
                run_id, sample_id, RetryDisposition.NOT_FAILED, state.attempt, previous_status=state.status
            )
        self.orchestrator.start_analysis(name, manifest.execution_input(attempt))
        self.catalog.mark_execution_started(run_id, sample_id, manifest.version)
        logger.info(
            "analysis attempt started", run_id=run_id, sample_id=sample_id, attempt=attempt, execution_name=name
        )
        return RetryOutcome(
            run_id,
            sample_id,
            disposition,
            attempt,
            name,
            previous_status=state.status.value,
            previous_reason=state.failure_reason,
        )

    def _manifest(self, manifest_uri: str) -> Manifest:
        bucket, key = parse_s3_uri(manifest_uri)
        return Manifest.from_json(self.store.get_text(bucket, key))
