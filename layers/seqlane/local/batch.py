"""Local AWS Batch executor: a job submitted to moto's Batch runs its job definition's command (the real job runner)
as a local subprocess, and the exit code decides SUCCEEDED or FAILED. Each state change is announced on EventBridge
as AWS Batch does ("Batch Job State Change": RUNNABLE, RUNNING, then SUCCEEDED or FAILED).

moto without Docker marks a job finished inside SubmitJob (BatchSimpleBackend._mark_job_as_finished); that is the
one place replaced here: the job is queued instead, and a worker pool of the machine's size runs it. moto is pinned,
since this is an internal API.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from moto.batch_simple.models import BatchSimpleBackend
from moto.events.models import events_backends

ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
EXECUTOR_STOPPED = "the local Batch executor stopped before the job started"
RUNNER_ENTRYPOINT = "seqlane-runner"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalJob:
    job_id: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    # Told the job's process as soon as it runs (the executor's terminate() ends its process group).
    on_start: Callable[[subprocess.Popen], None] | None = None


JobRunner = Callable[[LocalJob], int]  # -> exit code


def container_environment(job) -> dict[str, str]:
    definition = job.job_definition.container_properties or {}
    environment = {item["name"]: item["value"] for item in definition.get("environment", [])}
    overrides = (job.container_overrides or {}).get("environment", [])
    environment.update({item["name"]: item["value"] for item in overrides})
    return environment


def container_command(job) -> list[str]:
    """The job definition's command with `Ref::name` replaced by the job's parameters, as Batch does."""
    definition = job.job_definition.container_properties or {}
    command = (job.container_overrides or {}).get("command") or definition.get("command") or []
    parameters = {**job.job_definition.parameters, **(job.parameters or {})}
    missing = [arg for arg in command if arg.startswith("Ref::") and arg.removeprefix("Ref::") not in parameters]
    if missing:
        raise KeyError(f"job {job.job_id}: its command needs parameters the job does not have: {missing}")
    return [parameters[arg.removeprefix("Ref::")] if arg.startswith("Ref::") else arg for arg in command]


def job_log_path(scratch: Path, job_id: str) -> Path:
    """Where a job's output goes (CloudWatch Logs in AWS)."""
    return scratch / "logs" / f"{job_id}.log"


def local_engine_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """Per job, as a route would choose: DRAGEN where this machine has it ($DRAGEN_BIN if it exists, else `dragen` on
    PATH, handed to the runner as DRAGEN_BIN), else the CPU engine."""
    candidates = (environment.get("DRAGEN_BIN"), "dragen")
    dragen = next((found for c in candidates if c and (found := shutil.which(c, path=environment.get("PATH")))), None)
    return {"SEQLANE_ENGINE": "dragen", "DRAGEN_BIN": dragen} if dragen else {"SEQLANE_ENGINE": "cpu"}


_PR_SET_PDEATHSIG = 1
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform.startswith("linux") else None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """In the child, before exec (Linux): SIGKILL when the thread that started it dies, so a host killed with -9
    takes its jobs with it; and at once when that parent is gone already. Only a resolved libc call and two system
    calls run here: the child of a threaded process must not take locks."""
    if _prctl is None:
        return None

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def subprocess_runner(job: LocalJob) -> int:
    """Run the job's command as a child process in a session (process group) of its own, so ending the group ends
    whatever it started; `seqlane-runner` is this interpreter's `-m seqlane.runner`, so the runner of this checkout
    runs whether or not the venv's bin folder is on PATH. The calling thread waits for the process: the parent
    death signal follows that thread."""
    command = list(job.command)
    if command and command[0] == RUNNER_ENTRYPOINT:
        command[:1] = [sys.executable, "-m", "seqlane.runner"]
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    with job.log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                command,
                env=job.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - it only calls prctl, getppid, kill
            )
        except OSError as err:
            log.write(f"cannot start {command[0]}: {err}\n".encode())
            return 127
        try:
            if job.on_start is not None:
                job.on_start(process)
        finally:
            returncode = process.wait()
    return returncode


class LocalBatchExecutor:
    """Runs the jobs moto's Batch accepts, `workers` at a time, with `environment` added to each container's."""

    def __init__(
        self,
        scratch: Path,
        environment: Mapping[str, str],
        workers: int | None = None,
        runner: JobRunner = subprocess_runner,
    ) -> None:
        self.scratch = scratch
        self.environment = dict(environment)
        self.runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="local-batch")
        self._active = 0
        self._lock = threading.Lock()
        self._original: Callable[..., None] | None = None  # moto's _mark_job_as_finished while installed
        self._queued: dict[str, tuple[Future, object]] = {}  # job id -> (its future, moto's job), until it starts
        self._processes: dict[str, subprocess.Popen] = {}  # job id -> its running process
        self._ended = threading.Condition(self._lock)  # notified when a job's process is done with
        self._terminating = threading.Event()

    def install(self) -> None:
        self._original = BatchSimpleBackend._mark_job_as_finished
        executor = self

        def queue_job(self: BatchSimpleBackend, include_start_attempt: bool, job) -> None:
            self.backend._jobs[job.job_id] = job
            job.log_stream_name = job._stream_name
            job.status = "RUNNABLE"
            _announce(self, job)
            with executor._lock:
                if executor._terminating.is_set():
                    _never_started(job)
                    return
                executor._active += 1
                # Under the lock, so the job is on record as queued before its worker can take it off.
                future = executor._pool.submit(executor._run, self, include_start_attempt, job)
                executor._queued[job.job_id] = (future, job)

        # moto's method replaced (moto is pinned: internal API): a job is queued here instead of finished.
        BatchSimpleBackend._mark_job_as_finished = queue_job  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            BatchSimpleBackend._mark_job_as_finished = self._original  # type: ignore[method-assign]  # moto's, restored
            self._original = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def terminate(self, grace: float = 5.0) -> None:
        """End everything: queued jobs never start, each running job's process group gets SIGTERM, and SIGKILL
        when it outlives `grace` seconds. Later submissions are refused. Called by the host before it stops."""
        with self._lock:
            self._terminating.set()
            for future, job in self._queued.values():
                if future.cancel():
                    self._active -= 1
                    _never_started(job)
            self._queued.clear()
            running = dict(self._processes)
        for process in running.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with self._ended:
            while any(job_id in self._processes for job_id in running):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ended.wait(left)
        for process in running.values():  # stragglers of the group too, once its leader is gone
            _signal_group(process, signal.SIGKILL)

    def _started(self, job_id: str) -> Callable[[subprocess.Popen], None]:
        def on_start(process: subprocess.Popen) -> None:
            with self._lock:
                self._processes[job_id] = process
                late = self._terminating.is_set()
            if late:  # it started while terminate() was ending the others
                _signal_group(process, signal.SIGKILL)

        return on_start

    def _run(self, backend: BatchSimpleBackend, include_start_attempt: bool, job) -> None:
        with self._lock:
            self._queued.pop(job.job_id, None)
        try:
            job.job_started_at = datetime.datetime.now()
            if include_start_attempt:
                job._start_attempt()
            job.status = "RUNNING"
            _announce(backend, job)
            exit_code = self._exit_code(backend.region_name, job)
            job.exit_code = exit_code
            if exit_code != 0:
                job.job_stopped_reason = ESSENTIAL_CONTAINER_EXITED
            job._mark_stopped(success=exit_code == 0)
            _announce(backend, job)
        except Exception:  # a broken executor must not leave the execution waiting forever
            logger.exception("local Batch executor failed on job %s", job.job_id)
            job.job_stopped_reason = "local Batch executor error"
            job._mark_stopped(success=False)
            _announce(backend, job)
        finally:
            with self._lock:
                self._active -= 1
                self._processes.pop(job.job_id, None)
                self._ended.notify_all()

    def _exit_code(self, region: str, job) -> int:
        # As in a Batch container: the job definition's variables, and the region the job runs in.
        environment = {**os.environ, **container_environment(job), **self.environment}
        environment.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
        if "SEQLANE_ENGINE" not in environment:  # the job definition names /opt/edico/bin/dragen, not this machine's
            environment.update(local_engine_environment(environment))
        environment["SEQLANE_SCRATCH"] = str(self.scratch / job.job_id)
        environment["AWS_BATCH_JOB_ID"] = job.job_id
        environment["AWS_BATCH_JOB_ATTEMPT"] = str(max(len(job.attempts), 1))  # as Batch numbers attempts: from 1
        local_job = LocalJob(
            job_id=job.job_id,
            command=container_command(job),
            environment=environment,
            log_path=job_log_path(self.scratch, job.job_id),
            on_start=self._started(job.job_id),
        )
        logger.info("local Batch job %s: %s", job.job_id, " ".join(local_job.command))
        return self.runner(local_job)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """The job's whole process group (its session, started with it): the runner and whatever it started."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _never_started(job) -> None:
    job.job_stopped_reason = EXECUTOR_STOPPED
    job._mark_stopped(success=False)


def _announce(backend: BatchSimpleBackend, job) -> None:
    detail = job.describe()
    if job.exit_code is not None:  # AWS reports the container's exit code; moto's describe leaves it out
        detail.setdefault("container", {})["exitCode"] = job.exit_code
        if detail.get("attempts"):  # and each attempt's, with its reason
            last = detail["attempts"][-1]
            last.setdefault("container", {})["exitCode"] = job.exit_code
            last["statusReason"] = job.job_stopped_reason or ESSENTIAL_CONTAINER_EXITED
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
