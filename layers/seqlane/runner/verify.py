"""Where staged FASTQs are checked: in this process, or in worker processes so that several files inflate and
parse in parallel (the checks hold the GIL for about half their time; a thread per file would share one core).

`Verifiers(processes=N)` keeps up to N workers (`python -m seqlane.runner.verify`, which imports only the FASTQ
checks and ISA-L, not boto3, so one starts in a fraction of a second) and hands one to each file at least
`min_process_bytes` long; smaller files and ORA (which is only counted in bytes) are checked in place.

A worker reads, on its stdin, a line with the file's name, then chunks framed as `<length>\\n<bytes>` and `0\\n`
for the end; it answers one JSON line per file, `{"reads": N}` or `{"error": "..."}`, and an `{"error": ...}` as
soon as a chunk is refused, so the download stops early (`{"failed": ...}` if the worker itself breaks: the
runner's unexpected error, not the file's). A worker that failed or was left mid-file is ended, never reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from seqlane.runner.fastq import FastqCheck, InvalidInput, kind_of

MIN_PROCESS_BYTES = 32 * 1024 * 1024
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the seqlane package


class VerifierFailed(RuntimeError):
    """A worker process died or stopped answering: not the file's fault."""


class Check(Protocol):
    def feed(self, data: bytes) -> None: ...

    def finish(self) -> int | None: ...


class _Worker:
    def __init__(self) -> None:
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, environ.get("PYTHONPATH"))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seqlane.runner.verify"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the runner's stderr is its one error line; a worker reports on stdout
            env=environ,
        )
        self.answers: queue.Queue[dict] = queue.Queue()
        self._reader = threading.Thread(target=self._read_answers, daemon=True)
        self._reader.start()
        self.name = ""
        self.finished = False

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(json.loads(line))
        self.answers.put({"died": self.proc.wait()})

    def begin(self, name: str) -> None:
        self.name, self.finished = name, False
        self._send(name.encode() + b"\n")

    def feed(self, data: bytes) -> None:
        if data:
            self._send(b"%d\n" % len(data), data)
        with contextlib.suppress(queue.Empty):
            self._raise(self.answers.get_nowait())

    def finish(self) -> int | None:
        self._send(b"0\n")
        answer = self.answers.get()
        self._raise(answer)
        self.finished = True
        return answer["reads"]

    def _raise(self, answer: dict) -> None:
        if "error" in answer:
            raise InvalidInput(answer["error"])
        if "failed" in answer:
            raise VerifierFailed(f"the check of {self.name} failed in its worker: {answer['failed']}")
        if "died" in answer:
            raise VerifierFailed(f"the check of {self.name} stopped: its worker exited with {answer['died']}")

    def _send(self, *parts: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            for part in parts:
                self.proc.stdin.write(part)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as err:
            raise VerifierFailed(f"the check of {self.name} stopped: its worker is gone ({err})") from err

    def close(self, *, kill: bool = False) -> None:
        with contextlib.suppress(OSError, ValueError):
            if kill:
                self.proc.kill()
            else:
                self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]


class Verifiers:
    """Checks for the files of one staging; use as a context manager so that every worker ends with it."""

    def __init__(self, processes: int = 0, min_process_bytes: int | None = None) -> None:
        self.processes = processes
        self.min_process_bytes = MIN_PROCESS_BYTES if min_process_bytes is None else min_process_bytes
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Verifiers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def check(self, name: str, size: int) -> Iterator[Check]:
        """A check for one file: feed it the file's bytes in order, then `finish()` for its read count."""
        if self.processes < 1 or size < self.min_process_bytes or kind_of(name) == "ora":
            yield FastqCheck.for_file(name)
            return
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        worker = worker or _Worker()
        try:
            worker.begin(name)
            yield worker
        finally:
            if worker.finished:
                with self._lock:
                    self._idle.append(worker)
            else:
                worker.close(kill=True)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The worker's side: check each file framed on `source`, answer on `sink`."""

    def answer(message: dict) -> None:
        sink.write(json.dumps(message).encode() + b"\n")
        sink.flush()

    while header := source.readline():
        check = FastqCheck.for_file(header.decode().rstrip("\n"))
        error = None
        while size := int(source.readline() or b"0"):
            data = source.read(size)
            if error is None:
                try:
                    check.feed(data)
                except InvalidInput as err:
                    error = str(err)
                    answer({"error": error})
        if error is None:
            try:
                answer({"reads": check.finish()})
            except InvalidInput as err:
                answer({"error": str(err)})


def main() -> int:
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except Exception as err:  # noqa: BLE001 - reported to the runner as one line, never a traceback
        message = " ".join(f"{type(err).__name__}: {err}".split())
        with contextlib.suppress(OSError):
            sys.stdout.buffer.write(json.dumps({"failed": message}).encode() + b"\n")
            sys.stdout.buffer.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
