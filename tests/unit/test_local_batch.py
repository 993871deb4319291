"""The local Batch executor's pure helpers: a job's command and environment, its engine, and running it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from seqlane.local.batch import (
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
