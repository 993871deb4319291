"""The embedded AWS on 127.0.0.1: a moto server holding the stack of template.yaml, the handlers fed from its queues,
and the local Batch executor. Clients (the CLI, tests, boto3 with AWS_ENDPOINT_URL) talk to it over HTTP as to AWS.

    with LocalHost(template_path, "eu-west-2") as host:
        ...  # boto3.client("s3", endpoint_url=host.endpoint)

`python -m seqlane.local.host --state-file F` keeps one running in the background (`seqlane local up`).

Stopping a host ends what it started: Batch jobs still running (the executor's `seqlane-runner` subprocesses and
their children) are terminated, not orphaned, before the server stops.
"""

from __future__ import annotations

import argparse
import copy
import errno
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from seqlane.local import execution_events, moto_asl, moto_s3_events
from seqlane.local.batch import LocalBatchExecutor
from seqlane.local.delivery import QueuePump, patched_environ
from seqlane.local.stack import LocalStack, deploy

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer  # imported when a host starts

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "batch": {"use_docker": False},
    "lambda": {"use_docker": False},
}
# Batch jobs keep the status the local executor gives them (moto would otherwise jump to SUCCEEDED when read).
_JOB_TRANSITION: dict[str, Any] = {"model_name": "batch::job", "transition": {"progression": "manual", "times": 2**31}}
# Credentials for the embedded AWS only: while a host runs, nothing in this process may reach a real account.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "seqlane-local",
    "AWS_SECRET_ACCESS_KEY": "seqlane-local",
    "AWS_SESSION_TOKEN": "seqlane-local",
}
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
logger = logging.getLogger(__name__)


def default_template() -> Path:
    """template.yaml of this checkout (the package is installed from it), else of the working directory."""
    for candidate in (Path(__file__).resolve().parents[3] / "template.yaml", Path.cwd() / "template.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("template.yaml not found: run from a seqlane checkout or pass --template")


@contextmanager
def local_aws_environment(endpoint: str, region: str) -> Iterator[None]:
    """Point every AWS SDK call of this process (and of its child processes) at the embedded AWS; MOTO_PORT is
    where moto's Step Functions interpreter sends its service integrations."""
    values = {
        **LOCAL_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "MOTO_PORT": endpoint.rsplit(":", 1)[1],
    }
    with patched_environ(values, cleared=_CLEARED):
        yield


class PortInUse(OSError):
    """The port asked for on 127.0.0.1 is taken."""


def _moto_server(port: int) -> ThreadedMotoServer:
    """moto's ThreadedMotoServer, except that a port that cannot be bound raises instead of hanging: moto binds in
    its server thread and only sets the ready event after a successful bind."""
    from moto.server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        bind_error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as err:  # noqa: BLE001 - handed to the starting thread
                self.bind_error = err
                self._server_ready_event.set()

        def start(self) -> None:
            super().start()
            if self.bind_error is not None:
                assert self._thread is not None  # started by super().start()
                self._thread.join()
                error = self.bind_error  # werkzeug turns a failed bind into SystemExit(1), raised from the OSError
                cause = error if isinstance(error, OSError) else error.__context__
                if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
                    raise PortInUse(errno.EADDRINUSE, f"port {port} on 127.0.0.1 is already in use")
                raise error

        def stop(self) -> None:
            if self.bind_error is None:
                super().stop()

    return _Server(ip_address="127.0.0.1", port=port, verbose=False)


# ---- the processes a host's Batch jobs run in
JOB_PROCESS_MARKER = "seqlane.runner"  # `seqlane-runner` runs as `python -m seqlane.runner` (seqlane.local.batch)
_JOB_GRACE_SECONDS = 5.0


def _process_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, arguments) of every process this user can see in /proc ({} without /proc)."""
    table: dict[int, tuple[int, list[str]]] = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return table
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            arguments = Path(f"/proc/{entry}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])  # the command name may hold spaces and parentheses
        table[int(entry)] = (parent, [argument.decode(errors="replace") for argument in arguments])
    return table


def _is_job_runner(arguments: list[str]) -> bool:
    """`python -m seqlane.runner ...`, or the `seqlane-runner` entry point itself."""
    return JOB_PROCESS_MARKER in arguments or any(Path(a).name == "seqlane-runner" for a in arguments[:2])


def job_processes(parent: int | None = None) -> list[int]:
    """The job runners started by `parent` (default: this process), and everything they started in turn."""
    parent = os.getpid() if parent is None else parent
    table = _process_table()
    found = [pid for pid, (ppid, arguments) in table.items() if ppid == parent and _is_job_runner(arguments)]
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    index = 0
    while index < len(found):
        found.extend(child for child in children.get(found[index], []) if child not in found)
        index += 1
    return found


def terminate_job_processes(first_signalled: dict[int, float]) -> int:
    """SIGTERM each job process once, SIGKILL it when it outlives the grace period; returns how many were left."""
    now = time.monotonic()
    remaining = job_processes()
    for pid in remaining:
        if pid not in first_signalled:
            first_signalled[pid] = now
            chosen = signal.SIGTERM
        elif now - first_signalled[pid] > _JOB_GRACE_SECONDS:
            chosen = signal.SIGKILL
        else:
            continue
        with suppress(ProcessLookupError):
            os.kill(pid, chosen)
    return len(remaining)


class LocalHost:
    def __init__(
        self,
        template_path: Path | None = None,
        region: str = "eu-west-2",
        *,
        port: int = 0,
        scratch: Path | None = None,
        job_environment: Mapping[str, str] | None = None,
        workers: int | None = None,
    ) -> None:
        self.template_path = template_path or default_template()
        self.region = region
        self.port = port
        self._own_scratch = scratch is None
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="seqlane-local-"))
        self.job_environment = dict(job_environment or {})
        self.workers = workers
        self.endpoint = ""
        self.stack: LocalStack | None = None
        self._server: ThreadedMotoServer | None = None
        self._executor: LocalBatchExecutor | None = None
        self._environment: AbstractContextManager[None] | None = None
        self._stopping = threading.Event()
        self._pump_thread: threading.Thread | None = None

    def __enter__(self) -> LocalHost:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> str:
        from moto.core.config import default_user_config

        self._saved_moto_config = copy.deepcopy(default_user_config)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        server = _moto_server(self.port)
        server.start()  # raises PortInUse for a taken port
        self._server = server
        host, port = server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        try:
            self._environment = environment = local_aws_environment(self.endpoint, self.region)
            environment.__enter__()
            self._moto_api("reset", None)
            self._moto_api("config", MOTO_CONFIG)
            self._moto_api("state-manager/set-transition", _JOB_TRANSITION)
            moto_asl.install()
            moto_s3_events.install()
            execution_events.install()  # Step Functions' status change events, which moto does not emit
            self._executor = LocalBatchExecutor(self.jobs_dir, self.job_environment, self.workers)
            self._executor.install()
            self.stack = deploy(self.template_path, self.region)
            pump = QueuePump(self.stack)
            self._pump_thread = threading.Thread(target=self._deliver, args=(pump,), name="local-delivery", daemon=True)
            self._pump_thread.start()
        except BaseException:
            self.stop()
            raise
        logger.info("embedded AWS with stack %s at %s", self.template_path, self.endpoint)
        return self.endpoint

    def stop(self) -> None:
        self._stopping.set()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=30)
        if self._executor is not None:
            self._end_jobs(self._executor)
            self._executor = None
        if self._server is not None:
            self._server.stop()
            self._server = None
            self._restore_moto_settings()
            moto_s3_events.uninstall()
        if self._environment is not None:
            self._environment.__exit__(None, None, None)
            self._environment = None
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    @staticmethod
    def _end_jobs(executor: LocalBatchExecutor) -> None:
        """Uninstall the executor (it waits for its running jobs) while terminating the job processes, so that
        neither a running job nor one the pool starts meanwhile outlives the host. An executor with a `terminate()`
        of its own (cancel the queue, end the running jobs) is asked first; /proc then catches what is left."""
        terminate = getattr(executor, "terminate", None)
        if terminate is not None:
            terminate()
        uninstalled = threading.Event()

        def uninstall() -> None:
            try:
                executor.uninstall()
            finally:
                uninstalled.set()

        threading.Thread(target=uninstall, name="local-batch-uninstall", daemon=True).start()
        signalled: dict[int, float] = {}
        while not uninstalled.wait(0.05):
            terminate_job_processes(signalled)

    @property
    def jobs_dir(self) -> Path:
        return self.scratch / "jobs"

    def _deliver(self, pump: QueuePump) -> None:
        """What Lambda's event source mappings do: poll the queues and invoke the functions, until stopped."""
        while not self._stopping.is_set():
            try:
                delivered = pump.drain()
            except Exception:  # keep delivering; the failed batch stays on its queue as in AWS
                logger.exception("local event delivery failed")
                delivered = 0
            if not delivered:
                self._stopping.wait(0.05)

    def _restore_moto_settings(self) -> None:
        """moto's settings are process-wide: leave them as found (tests run mock_aws after a host)."""
        from moto.core.config import default_user_config
        from moto.moto_api import state_manager

        cast(dict[str, Any], default_user_config).clear()  # a plain dict, typed as a TypedDict
        default_user_config.update(self._saved_moto_config)
        state_manager.unset_transition(_JOB_TRANSITION["model_name"])

    def _moto_api(self, path: str, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/{path}", data=data, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own 127.0.0.1 server
            response.read()


# ---- `seqlane local up`: one host in the background, described by a state file
def serve(state_file: Path, template_path: Path | None, region: str, port: int, token: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with LocalHost(template_path, region, port=port) as host:
        state = {
            "endpoint": host.endpoint,
            "region": region,
            "pid": os.getpid(),
            "token": token,  # on this process's command line too: `seqlane local down` signals only a match
            "jobs_dir": str(host.jobs_dir),
            "started_at": time.time(),
        }
        other = _claim_state_file(state_file, state)
        if other is not None:  # two `local up` at once: the first to get here keeps the state file
            logger.error("another local stack (pid %s) already runs for %s: this one stops", other, state_file)
            return 1
        try:
            stop.wait()
        finally:
            _release_state_file(state_file, token)
    return 0


def _recorded_host(state_file: Path) -> tuple[int, str | None] | None:
    try:
        recorded = json.loads(state_file.read_text())
        return int(recorded["pid"]), recorded.get("token")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _claim_state_file(state_file: Path, state: dict) -> int | None:
    """Write our state unless the file names another live host of ours (returns its pid); check and write under
    a lock, and atomically, so readers see a whole state or none."""
    import fcntl

    from seqlane.local.control import is_our_host

    state_file.parent.mkdir(parents=True, exist_ok=True)
    with state_file.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = _recorded_host(state_file)
        if recorded is not None and recorded[0] != os.getpid() and is_our_host(*recorded):
            return recorded[0]
        partial = state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        partial.replace(state_file)
    return None


def _release_state_file(state_file: Path, token: str) -> None:
    """Remove the state file if it is still ours."""
    recorded = _recorded_host(state_file)
    if recorded is not None and recorded == (os.getpid(), token):
        state_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlane.local.host", description=__doc__.splitlines()[0])
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--template", type=Path)
    parser.add_argument("--region", default="eu-west-2")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", help="Identifies this host to `seqlane local down` (default: a new one).")
    args = parser.parse_args(argv)
    if not args.token:  # the token must be on the command line, where `down` checks it: start again with one
        from seqlane.local.control import new_token

        arguments = [sys.executable, "-m", "seqlane.local.host", *(argv if argv is not None else sys.argv[1:])]
        os.execv(sys.executable, [*arguments, "--token", new_token()])  # noqa: S606 - this interpreter
    try:
        return serve(args.state_file, args.template, args.region, args.port, args.token)
    except PortInUse as err:  # one line, the last of the log `seqlane local up` quotes
        print(err.strerror, file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
