"""The local Batch executor: a job's command and environment, its engine, running it, and ending its jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from moto.batch_simple.models import BatchSimpleBackend

from seqlane.local import batch
from seqlane.local.batch import (
    EXECUTOR_STOPPED,
    LocalBatchExecutor,
    LocalJob,
    container_command,
    container_environment,
    local_engine_environment,
    subprocess_runner,
)


def _job(
    command: list[str],
    *,
    defaults: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    overrides: dict | None = None,
) -> SimpleNamespace:
    """A stand-in for moto's Batch Job: the attributes the helpers read."""
    container = {"command": command, "environment": [{"name": k, "value": v} for k, v in (environment or {}).items()]}
    return SimpleNamespace(
        job_id="job-1",
        job_definition=SimpleNamespace(container_properties=container, parameters=defaults or {}),
        parameters=parameters,
        container_overrides=overrides,
    )


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def _local_job(tmp_path: Path, command: list[str]) -> LocalJob:
    return LocalJob(job_id="job-1", command=command, environment=dict(os.environ), log_path=tmp_path / "logs" / "j.log")


# ---- container_command


def test_container_command_replaces_refs_with_the_job_parameters():
    # Given a definition with a default manifest parameter, and a job passing its own
    job = _job(
        ["seqlane-runner", "--manifest", "Ref::manifest", "--engine", "cpu"],
        defaults={"manifest": "s3://default/manifest.json"},
        parameters={"manifest": "s3://ingest/run/S1.v1.json"},
    )

    # When the command is resolved
    command = container_command(job)

    # Then the job's parameter wins and the other arguments are kept in place
    assert command == ["seqlane-runner", "--manifest", "s3://ingest/run/S1.v1.json", "--engine", "cpu"]


def test_container_command_uses_the_definition_default_when_the_job_passes_none():
    # Given a job without parameters of its own
    job = _job(["run", "Ref::manifest"], defaults={"manifest": "s3://default/manifest.json"}, parameters=None)

    # When / Then the definition's default is used
    assert container_command(job) == ["run", "s3://default/manifest.json"]


def test_container_command_prefers_the_override_command():
    # Given a job overriding the definition's command
    job = _job(
        ["run", "Ref::manifest"], parameters={"manifest": "m"}, overrides={"command": ["other", "Ref::manifest"]}
    )

    # When / Then the override's command is resolved
    assert container_command(job) == ["other", "m"]


def test_container_command_names_a_missing_parameter():
    # Given a command referring to a parameter neither the job nor the definition has
    job = _job(["seqlane-runner", "--manifest", "Ref::manifest"], parameters={"other": "x"})

    # When / Then resolving it fails, naming the missing reference and the job
    with pytest.raises(KeyError) as excinfo:
        container_command(job)
    message = excinfo.value.args[0]
    assert "Ref::manifest" in message
    assert "job-1" in message


# ---- container_environment


def test_container_environment_merges_the_overrides_over_the_definition():
    # Given a definition environment and overrides sharing one name
    job = _job(
        ["run"],
        environment={"SEQLANE_ENGINE": "dragen", "DRAGEN_BIN": "/opt/dragen"},
        overrides={"environment": [{"name": "SEQLANE_ENGINE", "value": "cpu"}, {"name": "EXTRA", "value": "1"}]},
    )

    # When the environment is built
    environment = container_environment(job)

    # Then the override wins and both sides are present
    assert environment == {"SEQLANE_ENGINE": "cpu", "DRAGEN_BIN": "/opt/dragen", "EXTRA": "1"}


def test_container_environment_without_overrides_is_the_definitions():
    # Given a job without container overrides
    job = _job(["run"], environment={"A": "1"}, overrides=None)

    # When / Then the definition's environment is returned
    assert container_environment(job) == {"A": "1"}


# ---- local_engine_environment


def test_local_engine_is_dragen_when_dragen_bin_is_executable(tmp_path):
    # Given DRAGEN_BIN naming an executable and a PATH without dragen
    binary = _executable(tmp_path / "opt" / "dragen-4.2")
    (tmp_path / "empty").mkdir()

    # When / Then DRAGEN is chosen, that binary
    chosen = local_engine_environment({"DRAGEN_BIN": str(binary), "PATH": str(tmp_path / "empty")})
    assert chosen == {"SEQLANE_ENGINE": "dragen", "DRAGEN_BIN": str(binary)}


def test_local_engine_is_dragen_when_dragen_is_on_path(tmp_path):
    # Given no DRAGEN_BIN and an executable `dragen` on PATH
    binary = _executable(tmp_path / "bin" / "dragen")

    # When / Then DRAGEN is chosen, and the runner is given the one on PATH
    chosen = local_engine_environment({"PATH": str(tmp_path / "bin")})
    assert chosen == {"SEQLANE_ENGINE": "dragen", "DRAGEN_BIN": str(binary)}


def test_local_engine_is_cpu_without_any_dragen(tmp_path):
    # Given DRAGEN_BIN naming a missing file and a PATH without dragen
    (tmp_path / "empty").mkdir()
    environment = {"DRAGEN_BIN": str(tmp_path / "missing" / "dragen"), "PATH": str(tmp_path / "empty")}

    # When / Then the CPU engine is chosen
    assert local_engine_environment(environment) == {"SEQLANE_ENGINE": "cpu"}


def test_local_engine_is_cpu_when_dragen_bin_is_not_executable(tmp_path):
    # Given DRAGEN_BIN naming a file without the execute bit
    binary = tmp_path / "dragen"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    (tmp_path / "empty").mkdir()

    # When / Then the CPU engine is chosen
    assert local_engine_environment({"DRAGEN_BIN": str(binary), "PATH": str(tmp_path / "empty")}) == {
        "SEQLANE_ENGINE": "cpu"
    }


# ---- subprocess_runner


def test_subprocess_runner_returns_the_exit_code_and_logs_the_output(tmp_path):
    # Given a job that prints and exits with 3
    job = _local_job(tmp_path, [sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"])

    # When it runs
    code = subprocess_runner(job)

    # Then its exit code comes back and its output is in the (newly created) log folder
    assert code == 3
    assert job.log_path.read_text().strip() == "hi"


def test_subprocess_runner_logs_stderr_too(tmp_path):
    # Given a job that writes to stderr
    job = _local_job(tmp_path, [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n')"])

    # When it runs
    code = subprocess_runner(job)

    # Then it succeeds and stderr went to the same log
    assert code == 0
    assert "boom" in job.log_path.read_text()


def test_subprocess_runner_reports_a_command_that_cannot_start(tmp_path):
    # Given a command that does not exist
    job = _local_job(tmp_path, [str(tmp_path / "no-such-binary"), "--flag"])

    # When it runs
    code = subprocess_runner(job)

    # Then it exits 127 like a shell and the log says why
    assert code == 127
    assert f"cannot start {tmp_path / 'no-such-binary'}" in job.log_path.read_text()


def test_subprocess_runner_runs_seqlane_runner_with_this_interpreter(tmp_path):
    # Given the runner's entry point, which need not be on PATH
    environment = {**os.environ, "PATH": str(tmp_path)}
    job = LocalJob("job-1", ["seqlane-runner", "--help"], environment, tmp_path / "logs" / "help.log")

    # When it runs
    code = subprocess_runner(job)

    # Then `python -m seqlane.runner --help` ran and printed its usage
    assert code == 0
    assert "usage" in job.log_path.read_text()


def test_local_engine_environment_prefers_path_dragen_over_missing_dragen_bin(tmp_path):
    # Given the job definition's DRAGEN_BIN, which this machine lacks, and a dragen executable on PATH
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dragen = bin_dir / "dragen"
    dragen.write_text("#!/bin/sh\n")
    dragen.chmod(0o755)
    environment = {"DRAGEN_BIN": str(tmp_path / "opt" / "dragen"), "PATH": str(bin_dir)}

    # When the local executor looks for DRAGEN
    chosen = local_engine_environment(environment)

    # Then it finds the one on PATH, and hands it to the runner as DRAGEN_BIN
    assert chosen == {"SEQLANE_ENGINE": "dragen", "DRAGEN_BIN": str(dragen)}


def test_subprocess_runner_tells_on_start_its_process_in_a_session_of_its_own(tmp_path):
    # Given a job that reports its own process group
    seen = []
    job = LocalJob(
        "job-1",
        [sys.executable, "-c", "import os; print(os.getpgid(0))"],
        dict(os.environ),
        tmp_path / "logs" / "j.log",
        on_start=seen.append,
    )

    # When it runs
    code = subprocess_runner(job)

    # Then on_start got its process, which led a process group of its own
    assert code == 0
    [process] = seen
    assert int(job.log_path.read_text()) == process.pid != os.getpgid(0)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_subprocess_runner_job_dies_with_a_host_killed_by_sigkill(tmp_path):
    # Given a host process running a `sleep 60` job through the subprocess runner
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from seqlane.local.batch import LocalJob, subprocess_runner\n"
        "def started(process):\n"
        "    print(process.pid, flush=True)\n"
        "subprocess_runner(LocalJob('job-1', ['sleep', '60'], dict(os.environ), Path(sys.argv[1]), started))\n"
    )
    host = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "j.log")], stdout=subprocess.PIPE, text=True)
    try:
        job_pid = int(host.stdout.readline())
        assert _alive(job_pid)

        # When the host is killed with SIGKILL (no clean-up of its own can run)
        host.kill()
        host.wait()

        # Then its job ends too, instead of running on reparented
        assert _wait_until(lambda: not _alive(job_pid)), f"job {job_pid} outlived its host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


# ---- LocalBatchExecutor.terminate


class _MotoJob:
    """The attributes and methods of moto's Batch Job that the executor uses."""

    def __init__(self, job_id: str, command: list[str]) -> None:
        self.job_id = job_id
        self._stream_name = f"stream/{job_id}"
        self.job_definition = SimpleNamespace(container_properties={"command": command}, parameters={})
        self.parameters = None
        self.container_overrides = None
        self.attempts: list = []
        self.status = "SUBMITTED"
        self.exit_code = None
        self.job_stopped_reason = None
        self.job_started_at = None

    def _start_attempt(self) -> None:
        self.attempts.append({})

    def _mark_stopped(self, success: bool) -> None:
        self.status = "SUCCEEDED" if success else "FAILED"


@pytest.fixture
def executor(tmp_path, monkeypatch):
    """An installed executor with one worker, whose state changes are recorded instead of put on EventBridge."""
    announced: list[tuple[str, str]] = []
    monkeypatch.setattr(batch, "_announce", lambda backend, job: announced.append((job.job_id, job.status)))
    local = LocalBatchExecutor(tmp_path / "jobs", {"SEQLANE_ENGINE": "cpu"}, workers=1)
    local.install()
    local.announced = announced
    backend = SimpleNamespace(backend=SimpleNamespace(_jobs={}), region_name="eu-west-2", account_id="123456789012")
    local.submit = lambda job: BatchSimpleBackend._mark_job_as_finished(backend, True, job)
    try:
        yield local
    finally:
        local.terminate(grace=0.5)
        local.uninstall()


def _running_process(executor: LocalBatchExecutor, job_id: str) -> subprocess.Popen:
    assert _wait_until(lambda: job_id in executor._processes), f"{job_id} never started"
    return executor._processes[job_id]


@pytest.mark.parametrize(
    ("command", "grace", "signalled"),
    [
        (["sleep", "60"], 5.0, signal.SIGTERM),
        (["sh", "-c", "trap '' TERM; sleep 60; sleep 60"], 1.0, signal.SIGKILL),
    ],
    ids=["ends-on-sigterm", "ignores-sigterm-then-sigkill"],
)
def test_local_batch_executor_terminate_ends_the_running_job_and_never_starts_the_queued(
    executor, command, grace, signalled
):
    # Given one worker running a long job (one that ends on SIGTERM, or one that ignores it), and a job queued behind
    running, queued = _MotoJob("job-running", command), _MotoJob("job-queued", ["sleep", "60"])
    executor.submit(running)
    executor.submit(queued)
    process = _running_process(executor, "job-running")

    # When the executor is terminated
    started = time.monotonic()
    executor.terminate(grace=grace)
    took = time.monotonic() - started

    # Then the running job's process group ended by the signal, within the grace period (SIGKILL just after it)
    assert _wait_until(lambda: process.poll() is not None, timeout=5)
    assert process.returncode == -signalled
    assert took < grace + 1.0
    if signalled == signal.SIGKILL:
        assert took >= grace
    assert _wait_until(lambda: running.status == "FAILED", timeout=5)
    # And the queued job never started: it failed with the executor's reason, RUNNABLE its only announcement
    assert (queued.status, queued.job_started_at, queued.job_stopped_reason) == ("FAILED", None, EXECUTOR_STOPPED)
    assert [status for job_id, status in executor.announced if job_id == "job-queued"] == ["RUNNABLE"]


def test_local_batch_executor_refuses_a_job_submitted_after_terminate(executor):
    # Given a terminated executor
    executor.terminate(grace=0.5)

    # When a job is submitted
    job = _MotoJob("job-late", ["sleep", "60"])
    executor.submit(job)

    # Then it never starts
    time.sleep(0.2)
    assert (job.status, job.job_started_at, job.job_stopped_reason) == ("FAILED", None, EXECUTOR_STOPPED)
