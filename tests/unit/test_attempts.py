"""seqlane.attempts on moto's DynamoDB and S3: a failed analysis run again as attempt N+1 of the same input version,
once, under its own execution name, never while the previous attempt is live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from seqlane.attempts import AttemptService, RetryDisposition
from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.ports import SampleStatus
from tests.unit.test_catalog import BUCKET, RUN, SAMPLE, seqlane_world


@dataclass
class RecordingOrchestrator:
    started: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: bool = False

    def start_analysis(self, execution_name: str, execution_input: dict[str, Any]) -> bool:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("Step Functions unreachable")
        self.started.append((execution_name, execution_input))
        return True


@pytest.fixture
def world(aws_credentials):
    with seqlane_world(claimed=()) as created:
        manifest = Manifest(
            run_id=RUN,
            sample_id=SAMPLE,
            ingest_bucket="ingest",
            results_bucket=BUCKET,
            route=Route("germline-wgs", "4.3.6", "s3://refs/hg38/", "eu-west-2"),
            files=(FastqFile(f"{RUN}/{SAMPLE}_S1_L001_R1_001.fastq.gz", 1, 1, 10, "e1"),),
        )
        created.s3.put_object(Bucket=BUCKET, Key=manifest.manifest_key, Body=manifest.to_json().encode())
        catalog = created.catalog
        catalog.record_fastq(RUN, SAMPLE, manifest.files[0], "001")
        catalog.claim_manifest(RUN, SAMPLE, manifest.version, manifest.manifest_uri, manifest.execution_name)
        catalog.mark_execution_started(RUN, SAMPLE, manifest.version)
        orchestrator = RecordingOrchestrator()
        created.attempts = AttemptService(catalog, created.service.store, orchestrator)
        created.orchestrator = orchestrator
        created.manifest = manifest
        yield created


def fail(world, attempt: int = 1, status: SampleStatus = SampleStatus.FAILED) -> None:
    details = {"failure_reason": "reference missing", "job_id": f"job-{attempt}"}
    assert world.catalog.finish_analysis(RUN, SAMPLE, world.manifest.version, attempt, status=status, details=details)


@pytest.mark.parametrize("status", [SampleStatus.FAILED, SampleStatus.TIMED_OUT, SampleStatus.ABORTED])
def test_attempts_retry_starts_the_next_attempt_of_the_same_version(world, status):
    # Given a sample whose first analysis attempt ended without a result
    fail(world, status=status)

    # When it is run again
    outcome = world.attempts.retry(RUN, SAMPLE)

    # Then attempt 2 of the same version started under its own execution name, with its number in the input
    name = world.manifest.execution_name + "-a2"
    assert (outcome.disposition, outcome.attempt, outcome.execution_name) == (RetryDisposition.STARTED, 2, name)
    assert (outcome.previous_status, outcome.previous_reason) == (status.value, "reference missing")
    ((started_name, execution_input),) = world.orchestrator.started
    assert started_name == name
    assert execution_input == world.manifest.execution_input(2)
    # And the sample holds attempt 2, MANIFESTED and started, with nothing of attempt 1 but its record
    item = world.sample_item()
    assert (item["status"], item["attempt"], item["manifest_version"]) == ("MANIFESTED", 2, world.manifest.version)
    assert "execution_started_at" in item
    assert not {"failure_reason", "job_id", "finished_at", "outcome_published_at"} & set(item)
    assert [entry["attempt"] for entry in item["previous_attempts"]] == [1]


def test_attempts_retry_leaves_a_live_or_succeeded_analysis_alone(world):
    # Given a sample whose analysis is running
    # When it is "run again", Then nothing starts
    assert world.attempts.retry(RUN, SAMPLE).disposition is RetryDisposition.NOT_FAILED
    # And the same once it succeeded
    assert world.catalog.finish_analysis(
        RUN, SAMPLE, world.manifest.version, 1, status=SampleStatus.SUCCEEDED, details={}
    )
    assert world.attempts.retry(RUN, SAMPLE).disposition is RetryDisposition.NOT_FAILED
    assert world.orchestrator.started == []


def test_attempts_retry_of_an_unknown_sample_starts_nothing(world):
    assert world.attempts.retry(RUN, "NA00000").disposition is RetryDisposition.UNKNOWN
    assert world.orchestrator.started == []


def test_attempts_two_retries_start_one_attempt(world):
    # Given a failed sample, When two operators move it to its next attempt at once
    fail(world)
    first = world.catalog.begin_attempt(RUN, SAMPLE, world.manifest.version, 1, "a2")
    second = world.catalog.begin_attempt(RUN, SAMPLE, world.manifest.version, 1, "a2")

    # Then one wins; and a retry after that finds attempt 2 live and starts nothing more
    assert (first, second) == (True, False)
    assert world.attempts.retry(RUN, SAMPLE).disposition is RetryDisposition.RESUMED
    assert world.attempts.retry(RUN, SAMPLE).disposition is RetryDisposition.NOT_FAILED
    assert len(world.orchestrator.started) == 1


def test_attempts_crash_before_the_start_is_resumed_by_calling_again(world):
    # Given a failed sample, and Step Functions unreachable at the moment of the start
    fail(world)
    world.orchestrator.fail_next = True
    with pytest.raises(ConnectionError):
        world.attempts.retry(RUN, SAMPLE)

    # When the retry is called again, Then attempt 2 starts, once
    outcome = world.attempts.retry(RUN, SAMPLE)
    assert (outcome.disposition, outcome.attempt) == (RetryDisposition.RESUMED, 2)
    assert [name for name, _ in world.orchestrator.started] == [world.manifest.execution_name + "-a2"]


def test_attempts_late_outcome_of_the_previous_attempt_changes_nothing(world):
    # Given a sample run again as attempt 2
    fail(world)
    world.attempts.retry(RUN, SAMPLE)

    # When attempt 1's outcome arrives again late, Then it is not recorded
    late = world.catalog.finish_analysis(
        RUN, SAMPLE, world.manifest.version, 1, status=SampleStatus.SUCCEEDED, details={"job_id": "job-1"}
    )
    assert late is False
    assert world.sample_item()["status"] == "MANIFESTED"
    # And attempt 2's own outcome is
    fail(world, attempt=2)
    assert world.sample_item()["status"] == "FAILED"


def test_attempts_retry_that_crashed_before_its_start_is_started_by_a_redelivered_upload(world):
    # Given a failed sample moved to attempt 2, with Step Functions unreachable at the moment of the start
    from seqlane.ingest import Disposition, IngestService
    from seqlane.uploads import UploadedObject

    fail(world)
    world.orchestrator.fail_next = True
    with pytest.raises(ConnectionError):
        world.attempts.retry(RUN, SAMPLE)
    ingest = IngestService(
        catalog=world.catalog,
        store=world.service.store,
        orchestrator=world.orchestrator,
        events=world.service.events,
        ingest_bucket="ingest",
        results_bucket=BUCKET,
        region="eu-west-2",
        dragen_version="4.3.6",
        reference_uri="s3://refs/hg38/",
    )
    world.catalog.declare_sample(RUN, SAMPLE, frozenset({1}), False, "germline-wgs")

    # When the sample's upload event is delivered again
    file = world.manifest.files[0]
    outcome = ingest.handle(UploadedObject("ingest", file.key, file.size, file.etag, "001", "eu-west-2"))

    # Then it starts attempt 2 (not attempt 1's name again, which would leave attempt 2 never started)
    assert outcome.disposition is Disposition.STARTED, outcome
    ((name, execution_input),) = world.orchestrator.started
    assert (name, execution_input["attempt"]) == (world.manifest.execution_name + "-a2", 2)
    assert world.sample_item()["attempt"] == 2 and "execution_started_at" in world.sample_item()
