"""Local AWS Batch executor: a job submitted to moto's Batch runs the real job runner, and its exit code decides
SUCCEEDED or FAILED. The final state is then announced on EventBridge as AWS Batch does ("Batch Job State Change").

moto without Docker marks a job finished inside SubmitJob (BatchSimpleBackend._mark_job_as_finished); that is
the one place replaced here. moto is pinned, since this is an internal API.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

from moto.batch_simple.models import BatchSimpleBackend
from moto.events.models import events_backends

JobRunner = Callable[[dict[str, str], dict[str, str]], int]  # (job parameters, container environment) -> exit code
ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"


def _container_environment(job) -> dict[str, str]:
    definition = job.job_definition.container_properties or {}
    environment = {item["name"]: item["value"] for item in definition.get("environment", [])}
    overrides = (job.container_overrides or {}).get("environment", [])
    environment.update({item["name"]: item["value"] for item in overrides})
    return environment


def _announce(backend: BatchSimpleBackend, job) -> None:
    detail = job.describe()
    if job.exit_code is not None:  # AWS reports the container's exit code; moto's describe leaves it out
        detail.setdefault("container", {})["exitCode"] = job.exit_code
    events_backends[backend.account_id][backend.region_name].put_events(
        [
            {
                "Source": "aws.batch",
                "DetailType": "Batch Job State Change",
                "Detail": json.dumps(detail, default=str),
                "Resources": [job.arn],
            }
        ]
    )


def install(run_job: JobRunner) -> Callable[[], None]:
    """Run every job submitted to moto's Batch with `run_job`; returns the function that undoes it."""
    original = BatchSimpleBackend._mark_job_as_finished

    def run_and_finish(self: BatchSimpleBackend, include_start_attempt: bool, job) -> None:
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.log_stream_name = job._stream_name
        if include_start_attempt:
            job._start_attempt()
        parameters = {**job.job_definition.parameters, **(job.parameters or {})}
        exit_code = run_job(parameters, _container_environment(job))
        job.exit_code = exit_code
        if exit_code != 0:
            job.job_stopped_reason = ESSENTIAL_CONTAINER_EXITED
        job._mark_stopped(success=exit_code == 0)
        _announce(self, job)

    BatchSimpleBackend._mark_job_as_finished = run_and_finish

    def uninstall() -> None:
        BatchSimpleBackend._mark_job_as_finished = original

    return uninstall


def in_process_runner(scratch: str, environment: dict[str, str] | None = None) -> JobRunner:
    """Runs the Batch job runner in this process, with the job definition's environment plus `environment`."""
    from seqlane.runner.job import RunnerError, run_job

    def run(parameters: dict[str, str], container_environment: dict[str, str]) -> int:
        environ = {**container_environment, **(environment or {})}
        try:
            return run_job(parameters["manifest"], scratch=scratch, environ=environ)
        except RunnerError as error:
            return error.exit_code

    return run
