"""Which embedded stack a command talks to, and the background one of `seqlane local up` / `down`.

A command targets, in order: the background stack (`--local`, described by the state file), the endpoint in
AWS_ENDPOINT_URL, else a private stack started for the command and stopped when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from seqlane.local.client import LocalClient

DEFAULT_REGION = "eu-west-2"
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 60.0


class LocalStackUnavailable(RuntimeError):
    """No embedded stack to talk to, or it could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class BackgroundStack:
    endpoint: str
    region: str
    pid: int
    jobs_dir: Path | None = None


def state_file() -> Path:
    configured = os.environ.get("SEQLANE_LOCAL_STATE")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "seqlane" / "local.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def background_stack() -> BackgroundStack | None:
    """The running background stack, or None (a state file left by a killed host is removed)."""
    path = state_file()
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    stack = BackgroundStack(
        endpoint=state["endpoint"],
        region=state["region"],
        pid=int(state["pid"]),
        jobs_dir=Path(state["jobs_dir"]) if state.get("jobs_dir") else None,
    )
    if not _alive(stack.pid):
        path.unlink(missing_ok=True)
        return None
    return stack


def start_background(region: str = DEFAULT_REGION, port: int = 0, template: Path | None = None) -> BackgroundStack:
    """Start the embedded stack in a detached process; returns once it serves requests."""
    running = background_stack()
    if running is not None:
        return running
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    log_path = path.with_suffix(".log")
    command = [sys.executable, "-m", "seqlane.local.host", "--state-file", str(path), "--region", region]
    command += ["--port", str(port)] + (["--template", str(template)] if template else [])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        stack = background_stack()
        if stack is not None:
            return stack
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise LocalStackUnavailable(f"the local stack did not start: {tail[0]} (log: {log_path})")
        time.sleep(0.2)
    process.terminate()
    raise LocalStackUnavailable(f"the local stack did not start within {_START_TIMEOUT:.0f} s (log: {log_path})")


def stop_background() -> BackgroundStack | None:
    """Stop the background stack; returns what was stopped (None if nothing ran)."""
    stack = background_stack()
    if stack is None:
        return None
    os.kill(stack.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while _alive(stack.pid):
        if time.monotonic() > deadline:
            raise LocalStackUnavailable(f"the local stack (pid {stack.pid}) did not stop within {_STOP_TIMEOUT:.0f} s")
        time.sleep(0.1)
    state_file().unlink(missing_ok=True)
    return stack


@contextmanager
def target(use_background: bool, region: str | None, host_scratch: Path | None = None) -> Iterator[LocalClient]:
    """A client of the stack this command should use (see the module docstring)."""
    if use_background:
        stack = background_stack()
        if stack is None:
            raise LocalStackUnavailable("no local stack is running: start one with `seqlane local up`")
        if region and region != stack.region:
            raise LocalStackUnavailable(f"the local stack runs in {stack.region}, not {region}")
        yield LocalClient(stack.endpoint, stack.region, stack.jobs_dir)
        return
    region = region or DEFAULT_REGION
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        yield LocalClient(endpoint, region)
        return
    from seqlane.local.host import LocalHost

    with LocalHost(region=region, scratch=host_scratch) as host:
        yield LocalClient(host.endpoint, region, host.jobs_dir)
