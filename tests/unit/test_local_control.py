"""Which local stack a command targets: the background one described by the state file, checked before use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqlane.local.control import BackgroundStack, LocalStackUnavailable, background_stack, target

ENDPOINT = "http://127.0.0.1:1"  # nothing listens there: no test may connect


@pytest.fixture
def state_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "state" / "local.json"
    monkeypatch.setenv("SEQLANE_LOCAL_STATE", str(path))
    return path


def _write_state(path: Path, pid: int, region: str = "eu-west-2", jobs_dir: str | None = "/tmp/jobs") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"endpoint": ENDPOINT, "region": region, "pid": pid}
    if jobs_dir is not None:
        state["jobs_dir"] = jobs_dir
    path.write_text(json.dumps(state))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_background_stack_is_none_without_a_state_file(state_path):
    # Given no state file
    # When / Then there is no background stack
    assert background_stack() is None


def test_background_stack_is_none_for_an_unreadable_state_file(state_path):
    # Given a state file that is not JSON
    state_path.parent.mkdir(parents=True)
    state_path.write_text("{not json")

    # When / Then there is no background stack
    assert background_stack() is None


def test_background_stack_reads_a_live_state_file(state_path):
    # Given a state file naming a live process (this one)
    _write_state(state_path, os.getpid(), jobs_dir="/tmp/jobs")

    # When it is read
    stack = background_stack()

    # Then it describes the stack, and the file stays
    assert stack == BackgroundStack(endpoint=ENDPOINT, region="eu-west-2", pid=os.getpid(), jobs_dir=Path("/tmp/jobs"))
    assert state_path.exists()


def test_background_stack_without_jobs_dir(state_path):
    # Given a live state file without a jobs folder
    _write_state(state_path, os.getpid(), jobs_dir=None)

    # When / Then the stack has no jobs folder
    stack = background_stack()
    assert stack is not None
    assert stack.jobs_dir is None


def test_background_stack_removes_the_state_of_a_dead_host(state_path):
    # Given a state file naming a process that has exited
    _write_state(state_path, _dead_pid())

    # When it is read
    stack = background_stack()

    # Then there is no stack, and the stale file is gone
    assert stack is None
    assert not state_path.exists()


def test_target_background_without_a_stack_says_to_start_one(state_path):
    # Given no background stack
    # When / Then targeting it fails, telling how to start one
    with pytest.raises(LocalStackUnavailable, match="seqlane local up"), target(use_background=True, region=None):
        pass


def test_target_background_in_another_region_names_both_regions(state_path):
    # Given a background stack running in eu-west-2
    _write_state(state_path, os.getpid(), region="eu-west-2")

    # When / Then targeting it for us-east-1 fails before any connection, naming both regions
    with pytest.raises(LocalStackUnavailable) as excinfo, target(True, "us-east-1"):
        pass
    assert "eu-west-2" in str(excinfo.value)
    assert "us-east-1" in str(excinfo.value)
