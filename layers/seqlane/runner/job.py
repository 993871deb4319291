"""One job: stage a sample's inputs to local scratch, verifying every FASTQ as it streams in, run the engine, check
its read count against the staged one, then upload its outputs and a result file under the attempt's own prefix.

S3 is only read, except under `manifest.attempt_uri(job_id, attempt)` (`$AWS_BATCH_JOB_ID`, `$AWS_BATCH_JOB_ATTEMPT`),
where every write is `If-None-Match: *`: nothing on S3 is ever overwritten or deleted.

Every failure is one line on stderr (`seqlane-runner: error: ...`, the last line of the job log) and its own exit
code; after the manifest was read, the result file is written as well (`status` FAILED, the same line as `error`):

    code  meaning
    N     the engine exited with N (DRAGEN's own code; 128 + S for signal S); the error quotes its last line
    2     usage: bad or unreadable manifest, bad AWS_BATCH_JOB_ID / AWS_BATCH_JOB_ATTEMPT, no region,
          unsupported modality, no engine binary
    3     the manifest is pinned to another region (nothing is read or written)
    4     an input is missing, or changed since the manifest was written (size or ETag)
    5     an input is invalid: corrupt or truncated gzip, not FASTQ, empty, R1 and R2 read counts differ
    6     the scratch directory cannot be written
    7     the disk filled up (ENOSPC) while staging
    8     S3 unreachable: connection errors, timeouts, throttling after botocore's retries
    9     the engine's read count does not reconcile with the staged count (or its metrics are unreadable)
    10    an output or the result file already exists at the attempt's prefix (another attempt wrote it)
    70    unexpected error (a bug): its type and message
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from seqlane.manifest import FastqFile, Manifest
from seqlane.runner.cpu import CpuEngine
from seqlane.runner.dragen import DragenEngine, Engine, EngineError, JobPaths, find_dragen
from seqlane.runner.fastq import InvalidInput
from seqlane.runner.metrics import TOTAL_INPUT_READS, MetricsError, summary_metrics
from seqlane.runner.storage import (
    AlreadyExists,
    ObjectChanged,
    ObjectUnavailable,
    S3Storage,
    StorageUnreachable,
)
from seqlane.runner.verify import Verifiers

EXIT_USAGE = 2  # bad manifest, unsupported modality, no engine binary
EXIT_WRONG_REGION = 3  # the manifest is pinned to another region
EXIT_INPUT_CHANGED = 4  # an input is missing or no longer what the manifest describes
EXIT_INPUT_INVALID = 5  # corrupt or truncated gzip, not FASTQ, empty, R1/R2 read counts differ
EXIT_SCRATCH_UNWRITABLE = 6
EXIT_DISK_FULL = 7  # ENOSPC while staging
EXIT_S3_UNREACHABLE = 8
EXIT_NOT_RECONCILED = 9  # the engine's Total input reads is not the staged count
EXIT_OUTPUT_EXISTS = 10  # If-None-Match refused a write: another attempt wrote there
EXIT_UNEXPECTED = 70  # a bug: one line with the exception's type and message
EXIT_CODES = {
    EXIT_USAGE: "bad manifest, job id or attempt, unsupported modality, or no engine binary",
    EXIT_WRONG_REGION: "manifest pinned to another region",
    EXIT_INPUT_CHANGED: "an input is missing or changed since the manifest was written",
    EXIT_INPUT_INVALID: "an input is invalid (corrupt or truncated gzip, not FASTQ, empty, R1/R2 read counts differ)",
    EXIT_SCRATCH_UNWRITABLE: "scratch directory not writable",
    EXIT_DISK_FULL: "disk full while staging",
    EXIT_S3_UNREACHABLE: "S3 unreachable (connection errors or throttling after retries)",
    EXIT_NOT_RECONCILED: "engine read count does not reconcile with the staged count",
    EXIT_OUTPUT_EXISTS: "output already written by another attempt",
    EXIT_UNEXPECTED: "unexpected error",
}
RESULT_SCHEMA = "seqlane.result/1"
STATUS_SUCCEEDED, STATUS_FAILED = "SUCCEEDED", "FAILED"
_REGION_VARIABLES = ("SEQLANE_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
JOB_ID_VARIABLE, ATTEMPT_VARIABLE = "AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT"
DEFAULT_JOB_ID = "local"
ENGINES = ("dragen", "cpu")
DEFAULT_ENGINE = "dragen"  # a DRAGEN route never falls back to another engine by itself
_CHUNK = 8 * 1024 * 1024
_TRANSFER_FILES_AT_ONCE = 4
_MAX_LINE = 1000

logger = logging.getLogger(__name__)


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed, so an error is always one line of the job log."""
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "..."


class RunnerError(Exception):
    """An expected failure: one line for the log and the runner's own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


class _Cancelled(Exception):
    """Another transfer of the same batch failed: stop this one."""


def job_region(environ: Mapping[str, str]) -> str | None:
    return next((environ[name] for name in _REGION_VARIABLES if environ.get(name)), None)


def batch_attempt(environ: Mapping[str, str]) -> tuple[str, int]:
    """(job id, attempt) as AWS Batch sets them in the container; ("local", 1) outside Batch."""
    job_id = environ.get(JOB_ID_VARIABLE) or DEFAULT_JOB_ID
    if job_id in (".", "..") or "/" in job_id or any(ch.isspace() for ch in job_id):
        raise RunnerError(f"${JOB_ID_VARIABLE} {job_id!r} cannot name an output folder", EXIT_USAGE)
    text = environ.get(ATTEMPT_VARIABLE) or "1"
    if not text.isdigit() or int(text) < 1:
        raise RunnerError(f"${ATTEMPT_VARIABLE} must be a whole number from 1, not {text!r}", EXIT_USAGE)
    return job_id, int(text)


def load_manifest(source: str, storage: S3Storage) -> Manifest:
    """Read a manifest from an s3:// URI or a local file; from_json checks its content hash."""
    try:
        text = storage.read_text(source) if source.startswith("s3://") else Path(source).read_text()
    except StorageUnreachable as err:
        raise RunnerError(f"cannot read manifest {source}: {err}", EXIT_S3_UNREACHABLE) from err
    except (ObjectUnavailable, OSError, ValueError) as err:
        raise RunnerError(f"cannot read manifest {source}: {err}", EXIT_USAGE) from err
    try:
        return Manifest.from_json(text)
    except (ValueError, KeyError, TypeError) as err:
        raise RunnerError(f"invalid manifest {source}: {err}", EXIT_USAGE) from err


def check_region(manifest: Manifest, region: str) -> None:
    if manifest.route.region != region:
        raise RunnerError(
            f"manifest is pinned to region {manifest.route.region} but this job runs in {region}; "
            "nothing was downloaded",
            EXIT_WRONG_REGION,
        )


def select_engine(name: str | None, dragen: str | None, environ: Mapping[str, str]) -> Engine:
    """The engine the route asked for (--engine, else $SEQLANE_ENGINE, else dragen); never a silent fallback."""
    name = name or environ.get("SEQLANE_ENGINE") or DEFAULT_ENGINE
    if name == "cpu":
        return CpuEngine()
    if name == "dragen":
        return DragenEngine(find_dragen(dragen, environ))
    raise EngineError(f"unknown engine {name!r} (choose from {', '.join(ENGINES)})")


def job_dir(scratch: Path, manifest: Manifest) -> Path:
    parts = (manifest.run_id, manifest.sample_id, manifest.version)
    # These name a directory that is wiped, so none may climb out of scratch.
    if any(part in ("", ".", "..") or "/" in part for part in parts):
        raise RunnerError(f"run or sample id unusable as a directory name: {parts}", EXIT_USAGE)
    return scratch.joinpath(*parts)


def job_paths(manifest: Manifest, workdir: Path) -> JobPaths:
    reference = manifest.route.reference_uri
    if reference.startswith("s3://"):
        ref_dir = workdir / "ref"
    elif Path(reference).is_dir():
        ref_dir = Path(reference)  # a local reference is used in place
    else:
        raise RunnerError(f"reference {reference} is neither an s3:// prefix nor a local directory", EXIT_USAGE)
    return JobPaths(
        ref_dir=ref_dir,
        fastq_list=workdir / "fastq_list.csv",
        output_dir=workdir / "output",
        tmp_dir=workdir / "tmp",
    )


@dataclass
class JobRecord:
    """What one attempt found and did, as far as it got: the result file is written from it, success or not."""

    manifest: Manifest
    job_id: str
    attempt: int
    engine: str | None = None
    command: list[str] = field(default_factory=list)
    exit_code: int | None = None  # the engine's
    started: datetime | None = None
    finished: datetime | None = None
    reads: dict[str, int | None] = field(default_factory=dict)  # FASTQ key -> reads counted at staging
    outputs: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    reconciliation: dict | None = None

    @property
    def staged_reads(self) -> int | None:
        """The sum over every input, or None unless every input was counted (ORA inputs are not decoded)."""
        counts = [self.reads.get(f.key) for f in self.manifest.files]
        return sum(counts) if counts and None not in counts else None  # type: ignore[arg-type]


def prepare_scratch(workdir: Path, paths: JobPaths) -> None:
    """A fresh job directory: a previous attempt's files must not pass for this one's."""
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        for directory in (workdir / "fastq", paths.output_dir, paths.tmp_dir):
            directory.mkdir(parents=True)
        probe = workdir / ".writable"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        if err.errno == errno.ENOSPC:
            message = f"disk full while staging: cannot create {workdir}: {err.strerror}"
            raise RunnerError(message, EXIT_DISK_FULL) from err
        raise RunnerError(f"scratch {workdir} is not writable: {err}", EXIT_SCRATCH_UNWRITABLE) from err


def stage(manifest: Manifest, storage: S3Storage, paths: JobPaths, fastq_dir: Path, record: JobRecord) -> None:
    """Download and verify the FASTQs (several at a time), check R1 and R2 agree, stage an s3:// reference, then
    write the local fastq-list CSV."""
    local = {fastq: fastq_dir / PurePosixPath(fastq.key).name for fastq in manifest.sorted_files}
    if len(set(local.values())) != len(local):
        raise RunnerError("two FASTQs of the manifest have the same file name", EXIT_USAGE)

    with Verifiers(processes=_verifier_processes(len(local))) as verifiers:

        def fetch(fastq: FastqFile, abort: threading.Event) -> None:
            uri = f"s3://{manifest.ingest_bucket}/{fastq.key}"
            record.reads[fastq.key] = stage_fastq(storage, uri, fastq, local[fastq], abort, verifiers=verifiers)

        _concurrently(fetch, local)
    counted = [n for n in record.reads.values() if n is not None]
    logger.info(
        "staged and verified %d FASTQs, %d bytes, %d reads", len(local), sum(f.size for f in local), sum(counted)
    )
    check_mates(manifest, record.reads)

    reference = manifest.route.reference_uri
    if reference.startswith("s3://"):
        try:
            ref_files = storage.download_prefix(reference, paths.ref_dir)
        except ObjectUnavailable as err:
            raise RunnerError(str(err), EXIT_INPUT_CHANGED) from err
        except StorageUnreachable:
            raise
        except OSError as err:
            raise _staging_error(err, reference) from err
        if not ref_files:
            raise RunnerError(f"reference {reference} holds no objects", EXIT_INPUT_CHANGED)
        ref_bytes = sum(p.stat().st_size for p in ref_files)
        logger.info("staged reference %s: %d files, %d bytes", reference, len(ref_files), ref_bytes)

    try:
        paths.fastq_list.write_text(manifest.fastq_list_csv(uri_of=lambda f: str(local[f])))
    except OSError as err:
        raise _staging_error(err, str(paths.fastq_list)) from err


def _verifier_processes(files: int) -> int:
    """Worker processes for the FASTQ checks: one per file staged at once, when there is more than one CPU."""
    return min(_TRANSFER_FILES_AT_ONCE, files) if (os.cpu_count() or 1) > 1 else 0


def stage_fastq(
    storage: S3Storage,
    uri: str,
    fastq: FastqFile,
    path: Path,
    abort: threading.Event,
    *,
    verifiers: Verifiers | None = None,
) -> int | None:
    """Stream one FASTQ to `path`, checking it on the way: the object the manifest names (size and ETag), a whole
    gzip stream, FASTQ records. Returns its read count (None for ORA, which only DRAGEN decodes)."""
    try:
        obj = storage.head(uri)
    except ObjectUnavailable as err:
        raise RunnerError(str(err), EXIT_INPUT_CHANGED) from err
    expected = fastq.etag.strip('"')
    if obj.etag != expected or obj.size != fastq.size:
        raise RunnerError(
            f"{uri} changed since the manifest was written: it is {obj.size} bytes with ETag {obj.etag}, "
            f"the manifest says {fastq.size} bytes with ETag {expected}",
            EXIT_INPUT_CHANGED,
        )
    verifiers = verifiers or Verifiers()
    try:
        with verifiers.check(uri, obj.size) as check:
            with staging_file(path) as out:
                for chunk in storage.stream(uri, obj):
                    if abort.is_set():
                        raise _Cancelled
                    out.write(chunk)
                    check.feed(chunk)
            return check.finish()
    except ObjectChanged as err:
        raise RunnerError(f"{err}: it changed since the manifest was written", EXIT_INPUT_CHANGED) from err
    except InvalidInput as err:
        raise RunnerError(str(err), EXIT_INPUT_INVALID) from err
    except OSError as err:
        if isinstance(err, StorageUnreachable):
            raise
        raise _staging_error(err, uri) from err


def staging_file(path: Path) -> BinaryIO:
    """Where a staged file's bytes go (a seam for tests that fill the disk)."""
    return path.open("wb")


def _staging_error(err: OSError, what: str) -> RunnerError:
    if err.errno == errno.ENOSPC:
        return RunnerError(f"disk full while staging {what}: {err.strerror or err}", EXIT_DISK_FULL)
    return RunnerError(f"scratch not writable while staging {what}: {err}", EXIT_SCRATCH_UNWRITABLE)


def check_mates(manifest: Manifest, reads: Mapping[str, int | None]) -> None:
    """Per lane and segment, R1 and R2 hold as many reads (where both were counted)."""
    slots: dict[tuple[int, int], dict[int, FastqFile]] = {}
    for fastq in manifest.files:
        slots.setdefault((fastq.lane, fastq.segment), {})[fastq.read] = fastq
    segmented = any(segment > 1 for _, segment in slots)
    for (lane, segment), mates in sorted(slots.items()):
        read1, read2 = mates.get(1), mates.get(2)
        if read1 is None or read2 is None:
            continue
        count1, count2 = reads.get(read1.key), reads.get(read2.key)
        if count1 is None or count2 is None or count1 == count2:
            continue
        where = f"{manifest.sample_id} L{lane:03d}" + (f" segment {segment:03d}" if segmented else "")
        bucket = manifest.ingest_bucket
        raise RunnerError(
            f"{where}: R1 has {count1} reads, R2 has {count2} (s3://{bucket}/{read1.key}, s3://{bucket}/{read2.key})",
            EXIT_INPUT_INVALID,
        )


def run_command(command: list[str]) -> tuple[int, datetime, datetime, str]:
    """Run without a shell, its stdout and stderr passed through line by line; returns (exit code, start, end,
    its last non-empty stderr line, else its last non-empty stdout line). Signal N gives 128 + N."""
    logger.info("running: %s", " ".join(command))
    started = datetime.now(UTC)
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as err:
        raise RunnerError(f"cannot start {command[0]}: {err}", EXIT_USAGE) from err
    # Batch stops a job with SIGTERM to the runner (PID 1, which ignores it by default): pass it on to the
    # engine so it ends and its partial outputs still get uploaded. Only the main thread may set handlers
    # (the local Batch executor runs jobs on a worker thread, where there is no SIGTERM to pass on).
    forward = threading.current_thread() is threading.main_thread()
    last = {"stdout": "", "stderr": ""}
    with proc:
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum)) if forward else None
        relay_stderr = threading.Thread(target=_relay, args=(proc.stderr, sys.stderr, last, "stderr"), daemon=True)
        relay_stderr.start()
        try:
            _relay(proc.stdout, sys.stdout, last, "stdout")
            code = proc.wait()
            relay_stderr.join()
        finally:
            if forward:
                signal.signal(signal.SIGTERM, previous)
    finished = datetime.now(UTC)
    code = 128 - code if code < 0 else code
    logger.info("%s exited with %d after %s", command[0], code, finished - started)
    return code, started, finished, last["stderr"] or last["stdout"]


def _relay(pipe, target, last: dict[str, str], name: str) -> None:
    """Copy the engine's lines to our own stream as they come, remembering the last non-empty one."""
    for raw in pipe:
        text = raw.decode("utf-8", "replace")
        target.write(text)
        target.flush()
        if text.strip():
            last[name] = text.strip()


def upload_outputs(output_dir: Path, output_uri: str, storage: S3Storage) -> list[dict]:
    """Upload each file under output_dir to output_uri + its relative path (write-once), several at a time;
    returns records sorted by path."""

    def upload(path: Path, _abort: threading.Event) -> dict:
        relative = path.relative_to(output_dir).as_posix()
        size, sha256 = _size_and_sha256(path)
        storage.upload(path, output_uri + relative)
        return {"path": relative, "uri": output_uri + relative, "size": size, "sha256": sha256}

    outputs = _concurrently(upload, sorted(p for p in output_dir.rglob("*") if p.is_file()))
    logger.info("uploaded %d outputs, %d bytes, to %s", len(outputs), sum(o["size"] for o in outputs), output_uri)
    return sorted(outputs, key=lambda o: o["path"])


def read_metrics(output_dir: Path) -> dict:
    """The engine's summary QC metrics; unreadable metrics are logged here (reconcile() decides what they mean)."""
    try:
        return summary_metrics(output_dir)
    except (MetricsError, OSError) as err:
        logger.warning("metrics not read: %s", err)
        return {}


def reconcile(staged: int | None, output_dir: Path) -> tuple[dict, dict]:
    """(metrics, reconciliation): the engine's Total input reads against the reads counted at staging."""
    staged_text = f"{staged} reads" if staged is not None else "an unknown number of reads (ORA)"

    def outcome(engine_reads: int | None, ok: bool, detail: str) -> dict:
        return {"staged_reads": staged, "engine_reads": engine_reads, "ok": ok, "detail": detail}

    try:
        metrics = summary_metrics(output_dir)
    except (MetricsError, OSError) as err:
        return {}, outcome(None, False, f"staged {staged_text}, engine metrics unreadable: {err}")
    engine_reads = metrics.get(TOTAL_INPUT_READS)
    if not isinstance(engine_reads, int):
        return metrics, outcome(None, False, f"staged {staged_text}, engine metrics report no Total input reads")
    if staged is None:
        return metrics, outcome(engine_reads, True, f"engine count only: engine reports {engine_reads} reads")
    detail = f"staged {staged_text}, engine reports {engine_reads}"
    return metrics, outcome(engine_reads, engine_reads == staged, detail)


def _concurrently(work: Callable, items: Iterable) -> list:
    """`work(item, abort)` on each item, a few at a time (each transfer is itself parallel); results in item order.
    The first failure sets `abort` (transfers under way stop at their next chunk) and is raised once all ended."""
    items = list(items)
    if not items:
        return []
    abort = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def guarded(item):
        if abort.is_set():
            raise _Cancelled
        try:
            return work(item, abort)
        except _Cancelled:
            raise
        except BaseException as err:
            with lock:
                failures.append(err)
            abort.set()
            raise

    with ThreadPoolExecutor(max_workers=min(_TRANSFER_FILES_AT_ONCE, len(items))) as pool:
        futures = [pool.submit(guarded, item) for item in items]
    if failures:
        raise failures[0]
    return [future.result() for future in futures]


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def result_document(record: JobRecord, failure: RunnerError | None) -> dict:
    """seqlane-result.json. The catalog reads status, error, outputs, metrics, engine, inputs, reconciliation,
    job_id and attempt."""
    manifest = record.manifest
    started, finished = record.started, record.finished
    return {
        "schema": RESULT_SCHEMA,
        "run_id": manifest.run_id,
        "sample_id": manifest.sample_id,
        "version": manifest.version,
        "job_id": record.job_id,
        "attempt": record.attempt,
        "status": STATUS_FAILED if failure else STATUS_SUCCEEDED,
        "error": str(failure) if failure else None,
        "runner_exit_code": failure.exit_code if failure else 0,
        "engine": record.engine,
        "command": record.command,
        "exit_code": record.exit_code,
        "started_at": _iso(started) if started else None,
        "finished_at": _iso(finished) if finished else None,
        "engine_seconds": round((finished - started).total_seconds(), 3) if started and finished else None,
        "metrics": record.metrics,
        "outputs": record.outputs,
        "inputs": [
            {
                "key": f.key,
                "lane": f.lane,
                "read": f.read,
                "segment": f.segment,
                "size": f.size,
                "etag": f.etag,
                "reads": record.reads.get(f.key),
            }
            for f in manifest.sorted_files
        ],
        "reconciliation": record.reconciliation,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_EXIT_OF = (  # foreseen exceptions that reach run_job without a RunnerError of their own
    (InvalidInput, EXIT_INPUT_INVALID),
    (ObjectChanged, EXIT_INPUT_CHANGED),
    (ObjectUnavailable, EXIT_INPUT_CHANGED),
    (AlreadyExists, EXIT_OUTPUT_EXISTS),
    (StorageUnreachable, EXIT_S3_UNREACHABLE),
)


def as_runner_error(err: BaseException) -> RunnerError:
    """Any exception as the runner's one line and exit code; what is not foreseen is EXIT_UNEXPECTED."""
    if isinstance(err, RunnerError):
        return err
    for kind, code in _EXIT_OF:
        if isinstance(err, kind):
            return RunnerError(str(err), code)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return RunnerError(f"disk full: {err}", EXIT_DISK_FULL)
    logger.debug("unexpected error", exc_info=err)
    return RunnerError(f"unexpected {type(err).__name__}: {err}", EXIT_UNEXPECTED)


def run_job(
    manifest_source: str,
    *,
    scratch: str | Path,
    dragen: str | None = None,
    engine: str | None = None,
    keep_scratch: bool = False,
    environ: Mapping[str, str] | None = None,
    storage: S3Storage | None = None,
) -> int:
    """Run one job end to end; returns 0, and raises RunnerError (one line, exit code) for every failure, the
    engine's included, after writing the result file when the manifest could be read."""
    environ = os.environ if environ is None else environ
    job_id, attempt = batch_attempt(environ)
    region = job_region(environ)
    if not region:
        raise RunnerError(f"cannot tell this job's region: set one of {', '.join(_REGION_VARIABLES)}", EXIT_USAGE)
    storage = storage or S3Storage(region)
    manifest = load_manifest(manifest_source, storage)
    check_region(manifest, region)  # nothing is written into another region's bucket either
    logger.info(
        "job %s/%s version %s in %s: batch job %s attempt %d",
        manifest.run_id,
        manifest.sample_id,
        manifest.version,
        region,
        job_id,
        attempt,
    )

    record = JobRecord(manifest, job_id, attempt)
    failure: RunnerError | None = None
    workdir: Path | None = None
    try:
        workdir = job_dir(Path(scratch), manifest)
        _execute(manifest, record, workdir, storage, engine=engine, dragen=dragen, environ=environ)
    except Exception as err:  # noqa: BLE001 - every failure becomes one line and a code, and still a result file
        failure = as_runner_error(err)
    finally:
        if workdir is not None and not keep_scratch:  # scratch is the host's disk, reused by the next job
            shutil.rmtree(workdir, ignore_errors=True)

    result_uri = manifest.result_uri(job_id, attempt)
    try:
        storage.put_json(result_uri, json.dumps(result_document(record, failure), indent=2) + "\n")
        logger.info("wrote %s (%s)", result_uri, STATUS_FAILED if failure else STATUS_SUCCEEDED)
    except Exception as err:  # noqa: BLE001 - a result file that cannot be written is one more failure line
        if failure is None:
            failure = as_runner_error(err)
        else:
            logger.warning("result file not written: %s", one_line(str(err)))
    if failure is not None:
        raise failure
    return 0


def _execute(
    manifest: Manifest,
    record: JobRecord,
    workdir: Path,
    storage: S3Storage,
    *,
    engine: str | None,
    dragen: str | None,
    environ: Mapping[str, str],
) -> None:
    """Everything after the manifest, recorded in `record` as it goes; raises at the first failure."""
    # Everything that can be refused is checked before the first byte is downloaded.
    paths = job_paths(manifest, workdir)
    try:
        selected = select_engine(engine, dragen, environ)
        record.engine = selected.name
        record.command = selected.command(manifest, paths)
    except EngineError as err:
        raise RunnerError(str(err), EXIT_USAGE) from err

    prepare_scratch(workdir, paths)
    stage(manifest, storage, paths, workdir / "fastq", record)
    record.exit_code, record.started, record.finished, last_line = run_command(record.command)
    engine_failure = None
    if record.exit_code != 0:
        engine_failure = RunnerError(
            f"engine {selected.name} exited with code {record.exit_code}: {last_line or '(no output)'}",
            record.exit_code,
        )
    output_uri = manifest.attempt_uri(record.job_id, record.attempt)
    try:
        record.outputs = upload_outputs(paths.output_dir, output_uri, storage)  # even on failure: diagnosis
    except Exception as err:  # the engine's own failure is the one to report
        if engine_failure is None:
            raise
        logger.warning("outputs of the failed engine not all uploaded: %s", one_line(str(err)))
    if engine_failure is not None:
        record.metrics = read_metrics(paths.output_dir)
        engine_reads = record.metrics.get(TOTAL_INPUT_READS)
        record.reconciliation = {
            "staged_reads": record.staged_reads,
            "engine_reads": engine_reads if isinstance(engine_reads, int) else None,
            "ok": False,
            "detail": "not checked: the engine failed",
        }
        raise engine_failure
    record.metrics, record.reconciliation = reconcile(record.staged_reads, paths.output_dir)
    if not record.reconciliation["ok"]:
        raise RunnerError(
            f"engine read count does not reconcile: {record.reconciliation['detail']}", EXIT_NOT_RECONCILED
        )
    logger.info("reads reconcile: %s", record.reconciliation["detail"])
