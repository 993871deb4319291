"""The background host's state file: claimed only when no other live host of ours holds it, released only if ours;
and the job processes a host ends when it stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from seqlane.local.control import process_command_line
from seqlane.local.host import _claim_state_file, _release_state_file, job_processes, terminate_job_processes
from tests.unit.test_local_control import spawn_process as _spawn

TOKEN = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def other_host() -> Iterator[subprocess.Popen]:
    yield from _spawn([sys.executable, "-c", "import time; time.sleep(120)", "seqlane.local.host", "--token", TOKEN])


@pytest.fixture
def fake_runner() -> Iterator[subprocess.Popen]:
    """A child of this process that looks like a job runner, with a child of its own (what DRAGEN would be)."""
    script = "import subprocess, sys, time; subprocess.Popen(['sleep', '120']); time.sleep(120)"
    yield from _spawn([sys.executable, "-c", script, "-m", "seqlane.runner", "--manifest", "s3://b/m.json"])


def _state(pid: int, token: str) -> dict:
    return {"endpoint": "http://127.0.0.1:1", "region": "eu-west-2", "pid": pid, "token": token}


def test_claim_state_file_refuses_when_another_live_host_holds_it(tmp_path, other_host):
    # Given a state file held by another live host
    path = tmp_path / "local.json"
    held = _state(other_host.pid, TOKEN)
    path.write_text(json.dumps(held))

    # When this host claims it / Then it is refused with the other's pid, and the file is untouched
    assert _claim_state_file(path, _state(os.getpid(), "0" * 32)) == other_host.pid
    assert json.loads(path.read_text()) == held


def test_claim_state_file_replaces_a_stale_one(tmp_path):
    # Given a state file naming a process that is not a host of ours (this test process)
    path = tmp_path / "local.json"
    path.write_text(json.dumps(_state(os.getpid(), TOKEN)))
    ours = _state(os.getpid(), "0" * 32)

    # When claimed / Then it now holds our state
    assert _claim_state_file(path, ours) is None
    assert json.loads(path.read_text()) == ours


def test_release_state_file_leaves_another_hosts_state(tmp_path, other_host):
    # Given the state file now held by another host
    path = tmp_path / "local.json"
    path.write_text(json.dumps(_state(other_host.pid, TOKEN)))

    # When this host releases its state / Then the other's file stays; our own is removed
    _release_state_file(path, "0" * 32)
    assert path.exists()
    path.write_text(json.dumps(_state(os.getpid(), "0" * 32)))
    _release_state_file(path, "0" * 32)
    assert not path.exists()


def test_terminate_job_processes_ends_runners_and_their_children(fake_runner):
    # Given a runner-like child of this process, which started a child of its own
    deadline = time.monotonic() + 10
    while len(found := job_processes()) < 2:
        assert time.monotonic() < deadline, f"runner tree not seen: {found}"
        time.sleep(0.05)
    assert fake_runner.pid in found
    grandchild = next(pid for pid in found if pid != fake_runner.pid)

    # When they are terminated until none is left
    signalled: dict[int, float] = {}
    deadline = time.monotonic() + 20
    while terminate_job_processes(signalled):
        assert time.monotonic() < deadline, "job processes outlived SIGTERM and SIGKILL"
        time.sleep(0.05)
        fake_runner.poll()  # reap it, as the executor's subprocess.run would

    # Then the runner and its child are gone, each signalled once at first
    assert fake_runner.wait(timeout=5) < 0
    assert not os.path.exists(f"/proc/{grandchild}") or process_command_line(grandchild) is None
    assert set(signalled) >= {fake_runner.pid, grandchild}


def test_local_host_on_a_taken_port_raises_at_once(tmp_path):
    # Given a port on 127.0.0.1 something listens on
    import socket

    from seqlane.local.host import LocalHost, PortInUse

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        host = LocalHost(region="eu-west-2", port=port, scratch=tmp_path / "scratch")

        # When the host starts on it / Then it raises at once (moto's server alone would wait forever)
        started = time.monotonic()
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            host.start()
        assert time.monotonic() - started < 10
