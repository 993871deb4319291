"""Which local stack a command targets, and `local up` / `down` acting only on a process verified to be our host:
the background one described by the state file, checked before use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqlane.local.control import (
    BackgroundStack,
    LocalStackUnavailable,
    background_stack,
    inspect_background,
    is_our_host,
    process_command_line,
    start_background,
    stop_background,
    target,
)

ENDPOINT = "http://127.0.0.1:1"  # nothing listens there: no test may connect
TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def state_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "state" / "local.json"
    monkeypatch.setenv("SEQLANE_LOCAL_STATE", str(path))
    return path


def _write_state(
    path: Path,
    pid: int,
    region: str = "eu-west-2",
    jobs_dir: str | None = "/tmp/jobs",
    token: str | None = TOKEN,
    endpoint: str = ENDPOINT,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"endpoint": endpoint, "region": region, "pid": pid}
    if jobs_dir is not None:
        state["jobs_dir"] = jobs_dir
    if token is not None:
        state["token"] = token
    path.write_text(json.dumps(state))


def spawn_process(arguments: list[str]) -> Iterator[subprocess.Popen]:
    """Start `arguments` and yield the process once it has exec'd; kill it afterwards (for fixtures)."""
    process = subprocess.Popen(arguments)
    try:
        deadline = time.monotonic() + 10
        while process_command_line(process.pid) != arguments:  # until it has exec'd: before, it shows our own
            assert time.monotonic() < deadline, "the test process did not start"
            time.sleep(0.01)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def fake_host() -> Iterator[subprocess.Popen]:
    """A process whose command line is a background host's (entrypoint and token), that does nothing."""
    yield from spawn_process(
        [sys.executable, "-c", "import time; time.sleep(120)", "seqlane.local.host", "--token", TOKEN]
    )


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen]:
    """A real process that has nothing to do with seqlane."""
    yield from spawn_process(["sleep", "60"])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_background_stack_is_none_without_a_state_file(state_path):
    # Given no state file
    # When / Then there is no background stack, and nothing stale to report
    assert inspect_background() == (None, None)


def test_background_stack_removes_an_unreadable_state_file(state_path):
    # Given a state file that is not JSON
    state_path.parent.mkdir(parents=True)
    state_path.write_text("{not json")

    # When it is read
    stack, stale = inspect_background()

    # Then there is no background stack, the file is reported as stale and removed
    assert stack is None
    assert stale is not None and "could not be read" in stale.reason
    assert not state_path.exists()


def test_background_stack_reads_the_state_of_our_host(state_path, fake_host):
    # Given a state file naming a live host process with the recorded token on its command line
    _write_state(state_path, fake_host.pid, jobs_dir="/tmp/jobs")

    # When it is read
    stack = background_stack()

    # Then it describes the stack, and the file stays
    expected = BackgroundStack(endpoint=ENDPOINT, region="eu-west-2", pid=fake_host.pid, jobs_dir=Path("/tmp/jobs"))
    assert stack == expected
    assert state_path.exists()


def test_background_stack_without_jobs_dir(state_path, fake_host):
    # Given a live state file without a jobs folder
    _write_state(state_path, fake_host.pid, jobs_dir=None)

    # When / Then the stack has no jobs folder
    stack = background_stack()
    assert stack is not None
    assert stack.jobs_dir is None


def test_background_stack_removes_the_state_of_a_dead_host(state_path):
    # Given a state file naming a process that has exited
    pid = _dead_pid()
    _write_state(state_path, pid)

    # When it is read
    stack, stale = inspect_background()

    # Then there is no stack, the stale file is reported and gone
    assert stack is None
    assert stale is not None and stale.pid == pid and "has exited" in stale.reason
    assert not state_path.exists()


def test_background_stack_whose_pid_is_now_another_process_is_stale(state_path, unrelated):
    # Given a state file whose PID now belongs to an unrelated live process (`sleep 60`)
    _write_state(state_path, unrelated.pid)

    # When it is read
    stack, stale = inspect_background()

    # Then it is not taken for a stack: reported (naming what runs there) and removed, and the process is untouched
    assert stack is None
    assert stale is not None and f"pid {unrelated.pid} is not a seqlane local stack" in stale.reason
    assert "sleep 60" in stale.reason
    assert not state_path.exists()
    assert unrelated.poll() is None


def test_background_stack_with_another_token_is_stale(state_path, fake_host):
    # Given a host process whose token differs from the one the state file records (another host's state file)
    _write_state(state_path, fake_host.pid, token="f" * 32)

    # When / Then it is not ours
    assert background_stack() is None
    assert fake_host.poll() is None


def test_background_stack_without_a_token_is_never_trusted(state_path, fake_host):
    # Given a state file that records no token (only a PID)
    _write_state(state_path, fake_host.pid, token=None)

    # When / Then the PID alone is not enough
    assert background_stack() is None
    assert not is_our_host(fake_host.pid, None)


def test_background_stack_with_an_endpoint_off_loopback_is_stale(state_path, fake_host):
    # Given our host's state, edited to point somewhere other than 127.0.0.1
    _write_state(state_path, fake_host.pid, endpoint="https://s3.eu-west-2.amazonaws.com")

    # When / Then it is not used (commands would send requests there), and the host is left alone
    stack, stale = inspect_background()
    assert stack is None
    assert stale is not None and "not on 127.0.0.1" in stale.reason
    assert fake_host.poll() is None


def test_stop_background_never_signals_an_unrelated_process(state_path, unrelated):
    # Given a stale state file whose PID belongs to a real unrelated process
    _write_state(state_path, unrelated.pid)

    # When the background stack is stopped
    stopped, stale = stop_background()

    # Then nothing was stopped: the stale file is reported and removed, and the process still runs
    assert stopped is None
    assert stale is not None and stale.pid == unrelated.pid
    assert not state_path.exists()
    assert unrelated.poll() is None


def test_stop_background_terminates_our_host(state_path, fake_host):
    # Given the state of a live host
    _write_state(state_path, fake_host.pid)

    exit_codes = []  # reaped as soon as it exits, as the background host is (by init) once `up` has ended
    reaper = threading.Thread(target=lambda: exit_codes.append(fake_host.wait()))
    reaper.start()

    # When it is stopped
    stopped, stale = stop_background()

    # Then it got SIGTERM and is gone, with its state file
    assert stopped is not None and stopped.pid == fake_host.pid and stale is None
    reaper.join(timeout=10)
    assert exit_codes == [-signal.SIGTERM]
    with pytest.raises(ProcessLookupError):
        os.kill(fake_host.pid, 0)
    assert not state_path.exists()


def test_start_background_on_a_busy_port_fails_at_once_and_starts_nothing(state_path):
    # Given a port on 127.0.0.1 that something listens on
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        # When a stack is started on it / Then it fails, naming the port, before any process or file is made
        with pytest.raises(LocalStackUnavailable, match=rf"port {port} on 127\.0\.0\.1 is already in use"):
            start_background(port=port)
    assert not state_path.parent.exists() or list(state_path.parent.iterdir()) == []


def test_start_background_while_another_region_runs_refuses(state_path, fake_host):
    # Given a host running in eu-west-2
    _write_state(state_path, fake_host.pid, region="eu-west-2")

    # When one is asked for in us-east-1 / Then it is refused, naming both regions, and the running one is untouched
    with pytest.raises(LocalStackUnavailable) as excinfo:
        start_background(region="us-east-1")
    assert "already runs in eu-west-2" in str(excinfo.value)
    assert "us-east-1" in str(excinfo.value)
    assert fake_host.poll() is None
    assert state_path.exists()


def test_start_background_in_the_same_region_returns_the_running_stack(state_path, fake_host):
    # Given a host running in eu-west-2
    _write_state(state_path, fake_host.pid, region="eu-west-2")

    # When one is asked for in the same region / Then the running one is returned, marked as already running
    stack, already = start_background(region="eu-west-2")
    assert (stack.pid, already) == (fake_host.pid, True)


def test_start_background_on_another_port_than_the_running_one_refuses(state_path, fake_host):
    # Given a host running on port 1
    _write_state(state_path, fake_host.pid)

    # When one is asked for on port 2 / Then it is refused, naming the running endpoint
    with pytest.raises(LocalStackUnavailable, match=r"already runs at http://127\.0\.0\.1:1 "):
        start_background(port=2)


def test_target_background_without_a_stack_says_to_start_one(state_path):
    # Given no background stack
    # When / Then targeting it fails, telling how to start one
    with pytest.raises(LocalStackUnavailable, match="seqlane local up"), target(use_background=True, region=None):
        pass


def test_target_background_with_a_stale_state_says_so(state_path, unrelated):
    # Given a stale state file
    _write_state(state_path, unrelated.pid)

    # When / Then targeting it fails, saying the state was stale and removed
    with pytest.raises(LocalStackUnavailable, match=r"not a seqlane local stack.*removed"), target(True, None):
        pass
    assert unrelated.poll() is None


def test_target_background_in_another_region_names_both_regions(state_path, fake_host):
    # Given a background stack running in eu-west-2
    _write_state(state_path, fake_host.pid, region="eu-west-2")

    # When / Then targeting it for us-east-1 fails before any connection, naming both regions
    with pytest.raises(LocalStackUnavailable) as excinfo, target(True, "us-east-1"):
        pass
    assert "eu-west-2" in str(excinfo.value)
    assert "us-east-1" in str(excinfo.value)


def test_is_our_host_is_false_for_this_test_process():
    # Given this process (no host entrypoint on its command line) / Then it is never taken for a host
    assert not is_our_host(os.getpid(), TOKEN)
