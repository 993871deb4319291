"""Catalog: the end of an analysis attempt -> its final state in the catalog, and exactly one seqlane event.

Two AWS events end an attempt, and either may come first, twice, or late:
- AWS Batch's "Batch Job State Change" (SUCCEEDED or FAILED) for the attempt's DRAGEN job;
- Step Functions' "Execution Status Change" for its execution: FAILED, TIMED_OUT or ABORTED, the only word when no
  job ran or the job never ended (submission refused, timeout, an operator's stop); and SUCCEEDED, whose output
  names the job, so a success whose job event was lost is still cataloged.

Both read the cause from the same place, the runner's own result file of the job's last attempt, so the reason a
user sees (catalog, AnalysisFailed, CLI) is the runner's or the engine's one line whatever the order. The catalog's
conditional write decides: a state is entered once, only from a non-final state of the same input version and
attempt, and only the invocation that entered it publishes (again after a crash before publishing, never after).
A late or duplicate event of an older job, attempt or version, or one for a sample the catalog does not know,
changes nothing and publishes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seqlane.manifest import RESULT_FILE_NAME, attempt_prefix
from seqlane.observability import logger
from seqlane.ports import Catalog, EventPublisher, JobOutput, ObjectStore, SampleStatus

ANALYSIS_SUCCEEDED = "AnalysisSucceeded"
ANALYSIS_FAILED = "AnalysisFailed"
RESULT_SCHEMA = "seqlane.result/1"
_JOB_FINAL_STATES = ("SUCCEEDED", "FAILED")
_EXECUTION_ENDS = {
    "SUCCEEDED": SampleStatus.SUCCEEDED,
    "FAILED": SampleStatus.FAILED,
    "TIMED_OUT": SampleStatus.TIMED_OUT,
    "ABORTED": SampleStatus.ABORTED,
}
_REASON_MAX = 1000  # a cause is one line for people, not a dump


class UnusableEvent(ValueError):
    """An event that can never be cataloged (not ours, missing fields): rejected once, never retried."""


class NotASeqlaneJob(UnusableEvent):
    """A Batch event without seqlane's job parameters, or not a final state: nothing to catalog."""


class ResultUnavailable(RuntimeError):
    """The result file could not be read for a transient reason: the event is retried."""


@dataclass(frozen=True)
class Attempt:
    """One analysis attempt of one input version of one sample: what an outcome is recorded against."""

    run_id: str
    sample_id: str
    version: str
    attempt: int
    manifest_uri: str = ""
    execution_name: str = ""


@dataclass(frozen=True)
class JobState:
    job_id: str
    job_name: str
    status: str
    status_reason: str
    exit_code: int | None
    analysis: Attempt
    batch_attempts: tuple[dict[str, Any], ...] = ()

    @property
    def last_batch_attempt(self) -> int:
        """Batch numbers a job's attempts from 1; the result file is the last one's."""
        return max(len(self.batch_attempts), 1)

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> JobState:
        parameters = detail.get("parameters") or {}
        missing = [name for name in ("run_id", "sample_id", "version", "manifest") if not parameters.get(name)]
        if missing:
            raise NotASeqlaneJob(f"job {detail.get('jobId')} has no seqlane parameters {missing}")
        if detail.get("status") not in _JOB_FINAL_STATES:
            raise NotASeqlaneJob(f"job {detail.get('jobId')} is {detail.get('status')}, not a final state")
        if not detail.get("jobId"):
            raise NotASeqlaneJob("Batch job state change without a jobId")
        return cls(
            job_id=detail["jobId"],
            job_name=detail.get("jobName", ""),
            status=detail["status"],
            status_reason=detail.get("statusReason") or "",
            exit_code=(detail.get("container") or {}).get("exitCode"),
            analysis=Attempt(
                run_id=parameters["run_id"],
                sample_id=parameters["sample_id"],
                version=parameters["version"],
                attempt=_attempt_number(parameters.get("attempt", "1"), f"job {detail['jobId']}"),
                manifest_uri=parameters["manifest"],
                execution_name=detail.get("jobName", ""),
            ),
            batch_attempts=tuple(_batch_attempt(item) for item in detail.get("attempts") or ()),
        )


@dataclass(frozen=True)
class ExecutionEnd:
    execution_arn: str
    status: SampleStatus
    error: str
    cause: str
    analysis: Attempt
    output: Any = None  # the execution's output (a succeeded one holds its job's JobId and Attempts at $.job)

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> ExecutionEnd | None:
        """None for an execution that has not ended."""
        status = detail.get("status")
        if status not in _EXECUTION_ENDS:
            if status == "RUNNING":
                return None
            raise UnusableEvent(f"execution {detail.get('executionArn')} has unknown status {status!r}")
        try:
            execution_input = json.loads(detail.get("input") or "")
        except json.JSONDecodeError as error:
            raise UnusableEvent(f"execution {detail.get('executionArn')} input is not JSON ({error})") from None
        if not isinstance(execution_input, dict):
            raise UnusableEvent(f"execution {detail.get('executionArn')} input is not an object")
        missing = [name for name in ("run_id", "sample_id", "version") if not execution_input.get(name)]
        if missing:
            raise UnusableEvent(f"execution {detail.get('executionArn')} input has no seqlane fields {missing}")
        try:
            output = json.loads(detail["output"]) if detail.get("output") else None
        except json.JSONDecodeError:
            output = None
        return cls(
            output=output,
            execution_arn=detail.get("executionArn", ""),
            status=_EXECUTION_ENDS[status],
            error=detail.get("error") or "",
            cause=detail.get("cause") or "",
            analysis=Attempt(
                run_id=execution_input["run_id"],
                sample_id=execution_input["sample_id"],
                version=execution_input["version"],
                attempt=_attempt_number(execution_input.get("attempt", 1), detail.get("executionArn", "")),
                manifest_uri=execution_input.get("manifest_uri", ""),
                execution_name=detail.get("name", ""),
            ),
        )


def _attempt_number(value: Any, where: str) -> int:
    try:
        attempt = int(value)
    except (TypeError, ValueError):
        raise UnusableEvent(f"{where}: attempt {value!r} is not a number") from None
    if attempt < 1:
        raise UnusableEvent(f"{where}: attempt {attempt} is not 1 or more")
    return attempt


def _batch_attempt(item: dict[str, Any]) -> dict[str, Any]:
    """One Batch attempt, from a job event (camelCase) or a `.sync` result (PascalCase)."""

    def field(source: dict[str, Any], name: str) -> Any:
        return source.get(name, source.get(name[0].upper() + name[1:]))

    container = field(item, "container") or {}
    return {
        "started_at": field(item, "startedAt"),
        "stopped_at": field(item, "stoppedAt"),
        "status_reason": field(item, "statusReason") or field(container, "reason"),
        "exit_code": field(container, "exitCode"),
        "log_stream": field(container, "logStreamName"),
    }


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 1] + "…"


def check_result(result: Any) -> str | None:  # noqa: PLR0911 - one return per reason
    """Why a result file cannot prove a successful analysis, or None when it can."""
    if not isinstance(result, dict):
        return "is not a JSON object"
    if result.get("schema") != RESULT_SCHEMA:
        return f"has schema {result.get('schema')!r}, expected {RESULT_SCHEMA!r}"
    if result.get("status") != "SUCCEEDED":
        return f"says {result.get('status')!r}: {result.get('error') or 'no error given'}"
    outputs = result.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        return "lists no outputs"
    for output in outputs:
        if not isinstance(output, dict) or not {"path", "uri", "size", "sha256"} <= set(output):
            return "has an output without path, uri, size and sha256"
    reconciliation = result.get("reconciliation")
    if not isinstance(reconciliation, dict) or reconciliation.get("ok") is not True:
        detail = reconciliation.get("detail") if isinstance(reconciliation, dict) else None
        return f"does not show the reads reconciled ({detail or 'no reconciliation recorded'})"
    return None


@dataclass
class CatalogService:
    catalog: Catalog
    store: ObjectStore
    events: EventPublisher
    results_bucket: str

    # ---- Batch's "Batch Job State Change"
    def handle_job_state(self, detail: dict[str, Any]) -> dict[str, Any]:
        return self._job_ended(JobState.from_detail(detail))

    def _job_ended(self, job: JobState) -> dict[str, Any]:
        result_uri, result, problem = self._result(job.analysis, job.job_id, job.last_batch_attempt)
        base = {
            "job_id": job.job_id,
            "exit_code": job.exit_code,
            "status_reason": job.status_reason or None,
            "batch_attempts": list(job.batch_attempts),
            "result_uri": result_uri,
        }
        if job.status == "SUCCEEDED" and problem is None and result is not None:
            return self._succeed(job, result, base)
        if job.status == "SUCCEEDED":
            reason = f"the job succeeded but its result file {result_uri} {problem}"
        else:
            reason = _job_failure_reason(result, problem, job.status_reason, job.exit_code)
        return self._fail(job.analysis, SampleStatus.FAILED, "JobFailed", reason, {**base, **_diagnosis(result)})

    # ---- Step Functions' "Execution Status Change"
    def handle_execution_status(self, detail: dict[str, Any]) -> dict[str, Any]:
        end = ExecutionEnd.from_detail(detail)
        if end is None:
            return {"status": detail.get("status"), "published": False}
        if end.status is SampleStatus.SUCCEEDED:
            # Its job succeeded: the job's own event catalogs it. Should that event never come (lost, or
            # dead-lettered), this one does, from the same result file; whichever is first enters the state.
            job = _job_in_output(end)
            if job is None:
                raise UnusableEvent(f"succeeded execution {end.execution_arn} names no Batch job in its output")
            return self._job_ended(job)
        details: dict[str, Any] = {"execution_arn": end.execution_arn}
        if end.status is SampleStatus.TIMED_OUT:
            reason = "the analysis passed the state machine's time limit and was stopped"
        elif end.status is SampleStatus.ABORTED:
            reason = "the execution was stopped (aborted) before the analysis finished"
        else:
            reason, job_details = self._execution_failure_reason(end)
            details |= job_details
        return self._fail(end.analysis, end.status, end.error or end.status.value, reason, details)

    def _execution_failure_reason(self, end: ExecutionEnd) -> tuple[str, dict[str, Any]]:
        """A failed job's cause is the job's description (JSON): the runner's result file says why; else the
        Step Functions error itself (e.g. the job could not be submitted)."""
        job = _job_in_cause(end.cause)
        if job is not None:
            job_id, batch_attempts, exit_code, status_reason = job
            result_uri, result, problem = self._result(end.analysis, job_id, batch_attempts)
            reason = _job_failure_reason(result, problem, status_reason, exit_code)
            details = {
                "job_id": job_id,
                "exit_code": exit_code,
                "status_reason": status_reason,
                "result_uri": result_uri,
            }
            return reason, details | _diagnosis(result)
        return f"{end.error or 'States.Failed'}: {end.cause or 'no cause given'}", {}

    # ---- shared
    def _result(self, analysis: Attempt, job_id: str, batch_attempt: int) -> tuple[str, dict | None, str | None]:
        """(its URI, the parsed result file or None, why it is unusable or None)."""
        prefix = attempt_prefix(analysis.run_id, analysis.sample_id, analysis.version, job_id, batch_attempt)
        key = prefix + RESULT_FILE_NAME
        uri = f"s3://{self.results_bucket}/{key}"
        text = self.store.get_text_if_exists(self.results_bucket, key)
        if text is None:
            return uri, None, "is missing"
        try:
            result = json.loads(text)
        except json.JSONDecodeError as error:
            return uri, None, f"is not JSON ({error})"
        if not isinstance(result, dict):
            return uri, None, "is not a JSON object"
        return uri, result, check_result(result)

    def _succeed(self, job: JobState, result: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        analysis = job.analysis
        outputs = [
            JobOutput(path=o["path"], uri=o["uri"], size=int(o["size"]), sha256=o["sha256"]) for o in result["outputs"]
        ]
        self.catalog.record_outputs(analysis.run_id, analysis.sample_id, analysis.version, outputs)
        details = {
            **base,
            "output_count": len(outputs),
            "engine": result.get("engine"),
            "metrics": result.get("metrics") or {},
            **_diagnosis(result),
        }
        entered = self.catalog.finish_analysis(
            analysis.run_id,
            analysis.sample_id,
            analysis.version,
            analysis.attempt,
            status=SampleStatus.SUCCEEDED,
            details=details,
        )
        if not entered:
            logger.warning(
                "job outcome not recorded: the sample moved on, is final already, or is unknown",
                job_id=job.job_id,
                run_id=analysis.run_id,
                sample_id=analysis.sample_id,
                version=analysis.version,
                attempt=analysis.attempt,
            )
            return {"status": SampleStatus.SUCCEEDED.value, "job_id": job.job_id, "outputs": 0, "published": False}
        self.events.publish(
            ANALYSIS_SUCCEEDED,
            {
                "run_id": analysis.run_id,
                "sample_id": analysis.sample_id,
                "version": analysis.version,
                "attempt": analysis.attempt,
                "manifest_uri": analysis.manifest_uri,
                "job_id": job.job_id,
                "engine": result.get("engine"),
                "result_uri": base["result_uri"],
                "metrics": result.get("metrics") or {},
                "reads": (result.get("reconciliation") or {}).get("staged_reads"),
                "outputs": [{"path": o.path, "uri": o.uri, "size": o.size, "sha256": o.sha256} for o in outputs],
            },
        )
        self.catalog.mark_outcome_published(analysis.run_id, analysis.sample_id, analysis.version, analysis.attempt)
        logger.info(
            "analysis cataloged",
            job_id=job.job_id,
            run_id=analysis.run_id,
            sample_id=analysis.sample_id,
            outputs=len(outputs),
        )
        return {
            "status": SampleStatus.SUCCEEDED.value,
            "job_id": job.job_id,
            "outputs": len(outputs),
            "published": True,
        }

    def _fail(
        self, analysis: Attempt, status: SampleStatus, error: str, reason: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        reason = _one_line(reason)
        details = {**details, "failure_error": error, "failure_reason": reason}
        entered = self.catalog.finish_analysis(
            analysis.run_id, analysis.sample_id, analysis.version, analysis.attempt, status=status, details=details
        )
        logger.warning(
            "analysis failed"
            if entered
            else "failure not recorded: the sample moved on, is final already, or is unknown",
            run_id=analysis.run_id,
            sample_id=analysis.sample_id,
            version=analysis.version,
            attempt=analysis.attempt,
            status=status.value,
            reason=reason,
        )
        if not entered:
            return {"status": status.value, "published": False}
        self.events.publish(
            ANALYSIS_FAILED,
            {
                "run_id": analysis.run_id,
                "sample_id": analysis.sample_id,
                "version": analysis.version,
                "attempt": analysis.attempt,
                "status": status.value,
                "manifest_uri": analysis.manifest_uri,
                "execution_name": analysis.execution_name,
                "job_id": details.get("job_id"),
                "exit_code": details.get("exit_code"),
                "error": error,
                "cause": reason,
            },
        )
        self.catalog.mark_outcome_published(analysis.run_id, analysis.sample_id, analysis.version, analysis.attempt)
        return {"status": status.value, "published": True, "reason": reason}


def _job_failure_reason(
    result: dict[str, Any] | None, problem: str | None, status_reason: str | None, exit_code: int | None
) -> str:
    """Why a failed job failed: the runner's own line when its result file has one, else what Batch said."""
    if result is not None and result.get("error"):
        return str(result["error"])
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    batch = f"Batch: {status_reason or 'no reason given'}{code}"
    if result is None:
        return f"{batch}; no runner result file ({problem})"
    return f"{batch}; the runner's result file gives no error (status {result.get('status')!r})"


def _diagnosis(result: dict[str, Any] | None) -> dict[str, Any]:
    """What the runner proved about the inputs (per-file read counts, reconciliation), when it says."""
    if not result:
        return {}
    return {name: result[name] for name in ("inputs", "reconciliation", "runner_exit_code") if name in result}


def _job_in_output(end: ExecutionEnd) -> JobState | None:
    """The Batch job a succeeded execution ran, from its output's `job` (the state machine keeps JobId, Status and
    Attempts of the `.sync` result there)."""
    job = end.output.get("job") if isinstance(end.output, dict) else None
    if not isinstance(job, dict) or not isinstance(job.get("JobId"), str) or job.get("Status") != "SUCCEEDED":
        return None
    attempts = tuple(_batch_attempt(item) for item in job.get("Attempts") or () if isinstance(item, dict))
    exit_code = attempts[-1]["exit_code"] if attempts else None
    return JobState(
        job_id=job["JobId"],
        job_name=end.analysis.execution_name,
        status="SUCCEEDED",
        status_reason="",
        exit_code=exit_code,
        analysis=end.analysis,
        batch_attempts=attempts,
    )


def _job_in_cause(cause: str) -> tuple[str, int, int | None, str | None] | None:
    """(job id, its number of attempts, exit code, status reason) from a failed `.sync` Batch task's cause, which is
    the job's description as JSON (PascalCase in AWS; either case is read)."""
    try:
        job = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(job, dict):
        return None
    job_id = job.get("JobId") or job.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        return None
    attempts = job.get("Attempts") or job.get("attempts") or []
    container = job.get("Container") or job.get("container") or {}
    exit_code = container.get("ExitCode", container.get("exitCode")) if isinstance(container, dict) else None
    reason = job.get("StatusReason") or job.get("statusReason")
    return job_id, max(len(attempts) if isinstance(attempts, list) else 0, 1), exit_code, reason
