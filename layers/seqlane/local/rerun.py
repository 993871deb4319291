"""`seqlane local run` on a folder it ran before: samples whose last analysis failed are analysed again.

Uploading the same files again changes nothing by design (same content, same version, already started), so a
sample that failed would stay failed after its cause was fixed. The run's failed samples are noted before the
upload; those still failed at the same version and attempt once the upload has been handled (their files did not
change, or they would have a new version) are run again through seqlane.attempts, over the stack's AWS APIs,
as an operator would in AWS.
"""

from __future__ import annotations

from typing import Any

from seqlane.adapters.aws import S3ObjectStore, StepFunctionsOrchestrator
from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.attempts import AttemptService, RetryDisposition, RetryOutcome
from seqlane.local.client import LocalClient
from seqlane.ports import RETRYABLE_STATUSES

FailedSamples = dict[str, tuple[str, int]]  # sample id -> (version, attempt) of its failed analysis


def failed_samples(items: list[dict[str, Any]]) -> FailedSamples:
    return {
        item["sk"].removeprefix("SAMPLE#"): (item["manifest_version"], int(item.get("attempt", 1)))
        for item in items
        if item["sk"].startswith("SAMPLE#")
        and item.get("status") in RETRYABLE_STATUSES
        and item.get("manifest_version")
    }


def rerun_failed(client: LocalClient, run_id: str, before: FailedSamples) -> list[RetryOutcome]:
    """Run again each sample that failed before this run's upload and is still failed at the same version."""
    still = failed_samples(client.catalog_items(run_id))
    again = sorted(sample for sample, state in before.items() if still.get(sample) == state)
    if not again:
        return []
    service = AttemptService(
        catalog=DynamoCatalog(client.outputs["CatalogTableName"], client.dynamodb),
        store=S3ObjectStore(client.s3),
        orchestrator=StepFunctionsOrchestrator(client.outputs["StateMachineArn"], client.sfn),
    )
    outcomes = [service.retry(run_id, sample) for sample in again]
    return [o for o in outcomes if o.disposition in (RetryDisposition.STARTED, RetryDisposition.RESUMED)]


def rerun_summary(outcomes: list[RetryOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "sample_id": outcome.sample_id,
            "attempt": outcome.attempt,
            "previous_status": outcome.previous_status,
            "previous_reason": outcome.previous_reason,
        }
        for outcome in outcomes
    ]
