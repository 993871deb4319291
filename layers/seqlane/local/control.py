"""Which embedded stack a command targets, and the background one of `seqlane local up` / `down`.

A command targets, in order: the background stack (`--local`, described by the state file), the endpoint in
AWS_ENDPOINT_URL, else a private stack started for the command and stopped when it ends.

A PID alone is never trusted: the state file's process must still be our host (its command line names
`seqlane.local.host` and the token the state file records) before it is reported or signalled. A state file whose
PID has exited or now belongs to another process is stale: it is reported and removed, and that process is left alone.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from seqlane.local.client import LocalClient

DEFAULT_REGION = "eu-west-2"
HOST_ENTRYPOINT = "seqlane.local.host"  # `python -m seqlane.local.host`: what a background stack's process runs
LOOPBACK = "127.0.0.1"
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 60.0
_REAP_SECONDS = 10.0


class LocalStackUnavailable(RuntimeError):
    """No embedded stack to talk to, or it could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class BackgroundStack:
    endpoint: str
    region: str
    pid: int
    jobs_dir: Path | None = None
    token: str | None = field(default=None, compare=False, repr=False)  # identifies the host process


@dataclass(frozen=True)
class StaleState:
    """A state file that names no running stack of ours (it has been removed); `reason` says why, in words."""

    path: Path
    pid: int | None
    reason: str


def state_file() -> Path:
    configured = os.environ.get("SEQLANE_LOCAL_STATE")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "seqlane" / "local.json"


def new_token() -> str:
    """What identifies one background host: given on its command line, recorded in its state file."""
    return secrets.token_hex(16)


def process_command_line(pid: int) -> list[str] | None:
    """The process's arguments, [] when they cannot be read (another user's process), None when it does not exist."""
    if pid <= 0:
        return None
    return _proc_command_line(pid) if Path("/proc/self").is_dir() else _ps_command_line(pid)


def _proc_command_line(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return []
    if not raw:  # exiting, a zombie (it has exited: not there), or a kernel thread
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return None
        return None if state in {"Z", "X"} else []
    return [arg.decode(errors="replace") for arg in raw.rstrip(b"\0").split(b"\0")]


def _ps_command_line(pid: int) -> list[str] | None:
    """No /proc (macOS): ask ps; its one-string answer is split on spaces, which is enough to find a token."""
    try:
        shown = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return shown.stdout.split() if shown.returncode == 0 and shown.stdout.strip() else None


def is_our_host(pid: int, token: str | None) -> bool:
    """True only when `pid` runs `seqlane.local.host` with this token on its command line."""
    arguments = process_command_line(pid)
    return bool(arguments and token and HOST_ENTRYPOINT in arguments and token in arguments)


def _describe(pid: int) -> str:
    arguments = process_command_line(pid)
    if arguments is None:
        return f"pid {pid} has exited"
    shown = " ".join(arguments)[:80] or "unknown to this user"
    return f"pid {pid} is not a seqlane local stack (it runs: {shown})"


def inspect_background() -> tuple[BackgroundStack | None, StaleState | None]:
    """The running background stack, or why the state file names none (a stale file is removed, never acted on)."""
    path = state_file()
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        path.unlink(missing_ok=True)
        return None, StaleState(path, None, f"the state file could not be read ({err})")
    try:
        stack = BackgroundStack(
            endpoint=state["endpoint"],
            region=state["region"],
            pid=int(state["pid"]),
            jobs_dir=Path(state["jobs_dir"]) if state.get("jobs_dir") else None,
            token=state.get("token"),
        )
    except (KeyError, TypeError, ValueError) as err:
        path.unlink(missing_ok=True)
        return None, StaleState(path, None, f"the state file is incomplete ({err!r})")
    if not stack.endpoint.startswith(f"http://{LOOPBACK}:"):  # a host only ever serves there
        path.unlink(missing_ok=True)
        return None, StaleState(path, stack.pid, f"its endpoint {stack.endpoint} is not on {LOOPBACK}")
    if not is_our_host(stack.pid, stack.token):
        reason = _describe(stack.pid)
        path.unlink(missing_ok=True)
        return None, StaleState(path, stack.pid, reason)
    return stack, None


def background_stack() -> BackgroundStack | None:
    """The running background stack, or None (a stale state file is removed)."""
    return inspect_background()[0]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def start_background(
    region: str = DEFAULT_REGION, port: int = 0, template: Path | None = None
) -> tuple[BackgroundStack, bool]:
    """Start the embedded stack in a detached process; returns once it serves requests, with False. A stack that
    already runs in this region (and on this port, if one is asked for) is returned as it is, with True."""
    running, _ = inspect_background()
    if running is not None:
        if running.region != region:
            raise LocalStackUnavailable(
                f"a local stack already runs in {running.region} at {running.endpoint} (pid {running.pid}), "
                f"not {region}: stop it first with `seqlane local down`"
            )
        if port and not running.endpoint.endswith(f":{port}"):
            raise LocalStackUnavailable(
                f"a local stack already runs at {running.endpoint} (pid {running.pid}), not on port {port}: "
                "stop it first with `seqlane local down`"
            )
        return running, True
    if port and port_in_use(port):
        raise LocalStackUnavailable(f"port {port} on {LOOPBACK} is already in use: choose another with --port")
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    log_path = path.with_suffix(".log")
    token = new_token()
    command = [sys.executable, "-m", HOST_ENTRYPOINT, "--state-file", str(path), "--region", region]
    command += ["--port", str(port), "--token", token] + (["--template", str(template)] if template else [])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            stack = background_stack()
            if stack is not None and stack.pid == process.pid:
                return stack, False
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise LocalStackUnavailable(f"the local stack did not start: {tail[0]} (log: {log_path})")
            time.sleep(0.2)
        raise LocalStackUnavailable(f"the local stack did not start within {_START_TIMEOUT:.0f} s (log: {log_path})")
    except BaseException:  # nothing may be left running: not on failure, not on Ctrl-C
        _end(process)
        raise


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pid_exists(pid: int) -> bool:
    """Whether the PID is taken at all (by a live process or one not yet reaped); only ever signal 0."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_background() -> tuple[BackgroundStack | None, StaleState | None]:
    """Stop the background stack: returns what was stopped, or the stale state that was removed (both None when
    there was no state file). Only a process verified to be our host is ever signalled."""
    stack, stale = inspect_background()
    if stack is None:
        return None, stale
    try:
        os.kill(stack.pid, signal.SIGTERM)
    except ProcessLookupError:
        state_file().unlink(missing_ok=True)
        return stack, None
    deadline = time.monotonic() + _STOP_TIMEOUT
    while is_our_host(stack.pid, stack.token):
        if time.monotonic() > deadline:
            raise LocalStackUnavailable(f"the local stack (pid {stack.pid}) did not stop within {_STOP_TIMEOUT:.0f} s")
        time.sleep(0.1)
    # Its command line empties as it exits, a moment before its PID is gone (reaped): wait for that too, a while
    # (a PID taken by another process in between shows that process's command line, and ends the wait).
    reaped_by = time.monotonic() + _REAP_SECONDS
    while _pid_exists(stack.pid) and not process_command_line(stack.pid) and time.monotonic() < reaped_by:
        time.sleep(0.05)
    state_file().unlink(missing_ok=True)
    return stack, None


@contextmanager
def target(use_background: bool, region: str | None, host_scratch: Path | None = None) -> Iterator[LocalClient]:
    """A client of the stack this command should use (see the module docstring)."""
    if use_background:
        stack, stale = inspect_background()
        if stack is None:
            removed = f" ({stale.reason}; its state file was removed)" if stale else ""
            raise LocalStackUnavailable(f"no local stack is running{removed}: start one with `seqlane local up`")
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
