"""Catalog: a DRAGEN job's final state -> output files and sample status in the catalog, and a seqlane event.

Failures are announced by the state machine (AnalysisFailed), successes here (AnalysisSucceeded), so each outcome
is published by exactly one component. Repeated delivery of the same event is absorbed by the idempotency layer
around `handle_job_state` (see seqlane.adapters.factory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seqlane.manifest import RESULT_FILE_NAME, output_prefix
from seqlane.observability import logger
from seqlane.ports import Catalog, EventPublisher, JobOutput, ObjectStore, SampleStatus

ANALYSIS_SUCCEEDED = "AnalysisSucceeded"
_FINAL_STATES = {"SUCCEEDED": SampleStatus.SUCCEEDED, "FAILED": SampleStatus.FAILED}


class NotASeqlaneJob(ValueError):
    """A Batch event without seqlane's job parameters: nothing to catalog."""


@dataclass(frozen=True)
class JobState:
    job_id: str
    job_name: str
    status: str
    status_reason: str
    exit_code: int | None
    run_id: str
    sample_id: str
    version: str
    manifest_uri: str

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> JobState:
        parameters = detail.get("parameters") or {}
        missing = [name for name in ("run_id", "sample_id", "version", "manifest") if not parameters.get(name)]
        if missing:
            raise NotASeqlaneJob(f"job {detail.get('jobId')} has no seqlane parameters {missing}")
        if detail.get("status") not in _FINAL_STATES:
            raise NotASeqlaneJob(f"job {detail.get('jobId')} is {detail.get('status')}, not a final state")
        return cls(
            job_id=detail["jobId"],
            job_name=detail.get("jobName", ""),
            status=detail["status"],
            status_reason=detail.get("statusReason") or "",
            exit_code=(detail.get("container") or {}).get("exitCode"),
            run_id=parameters["run_id"],
            sample_id=parameters["sample_id"],
            version=parameters["version"],
            manifest_uri=parameters["manifest"],
        )


@dataclass
class CatalogService:
    catalog: Catalog
    store: ObjectStore
    events: EventPublisher
    results_bucket: str

    def handle_job_state(self, detail: dict[str, Any]) -> dict[str, Any]:
        job = JobState.from_detail(detail)
        if job.status == "FAILED":
            return self._record_failure(job)
        return self._record_success(job)

    def _record_failure(self, job: JobState) -> dict[str, Any]:
        current = self.catalog.record_job_outcome(
            job.run_id,
            job.sample_id,
            job.version,
            SampleStatus.FAILED,
            {
                "job_id": job.job_id,
                "status_reason": job.status_reason or "no reason given by Batch",
                "exit_code": job.exit_code,
            },
        )
        logger.warning(
            "DRAGEN job failed",
            job_id=job.job_id,
            run_id=job.run_id,
            sample_id=job.sample_id,
            reason=job.status_reason,
            exit_code=job.exit_code,
            current_version=current,
        )
        return {"status": job.status, "job_id": job.job_id, "outputs": 0, "published": False}

    def _record_success(self, job: JobState) -> dict[str, Any]:
        result_key = output_prefix(job.run_id, job.sample_id, job.version) + RESULT_FILE_NAME
        result = json.loads(self.store.get_text(self.results_bucket, result_key))
        outputs = [
            JobOutput(path=o["path"], uri=o["uri"], size=int(o["size"]), sha256=o["sha256"]) for o in result["outputs"]
        ]
        self.catalog.record_outputs(job.run_id, job.sample_id, job.version, outputs)
        current = self.catalog.record_job_outcome(
            job.run_id,
            job.sample_id,
            job.version,
            SampleStatus.SUCCEEDED,
            {
                "job_id": job.job_id,
                "exit_code": job.exit_code,
                "output_count": len(outputs),
                "result_uri": f"s3://{self.results_bucket}/{result_key}",
                "engine": result.get("engine"),
                "metrics": result.get("metrics") or {},
            },
        )
        if not current:
            logger.warning(
                "job of a superseded sample version succeeded; outputs cataloged, status unchanged",
                job_id=job.job_id,
                run_id=job.run_id,
                sample_id=job.sample_id,
                version=job.version,
            )
        self.events.publish(
            ANALYSIS_SUCCEEDED,
            {
                "run_id": job.run_id,
                "sample_id": job.sample_id,
                "version": job.version,
                "manifest_uri": job.manifest_uri,
                "job_id": job.job_id,
                "engine": result.get("engine"),
                "result_uri": f"s3://{self.results_bucket}/{result_key}",
                "metrics": result.get("metrics") or {},
                "outputs": [{"path": o.path, "uri": o.uri, "size": o.size, "sha256": o.sha256} for o in outputs],
            },
        )
        logger.info(
            "analysis cataloged",
            job_id=job.job_id,
            run_id=job.run_id,
            sample_id=job.sample_id,
            outputs=len(outputs),
        )
        return {"status": job.status, "job_id": job.job_id, "outputs": len(outputs), "published": True}
