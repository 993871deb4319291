"""One job: stage a sample's inputs to local scratch, run the engine, upload its outputs and a result file.

S3 is only read, except under the manifest's output_uri; nothing on S3 is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from seqlane.manifest import FastqFile, Manifest
from seqlane.runner.cpu import CpuEngine
from seqlane.runner.dragen import DragenEngine, Engine, EngineError, JobPaths, find_dragen
from seqlane.runner.metrics import MetricsError, summary_metrics
from seqlane.runner.storage import ObjectUnavailable, S3Storage

EXIT_USAGE = 2  # bad manifest, unsupported modality, no engine binary
EXIT_WRONG_REGION = 3  # the manifest is pinned to another region
EXIT_INPUT_CHANGED = 4  # an input is missing or no longer what the manifest describes
RESULT_SCHEMA = "seqlane.result/1"
_REGION_VARIABLES = ("SEQLANE_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
ENGINES = ("dragen", "cpu")
DEFAULT_ENGINE = "dragen"  # a DRAGEN route never falls back to another engine by itself
_CHUNK = 8 * 1024 * 1024
_TRANSFER_FILES_AT_ONCE = 4

logger = logging.getLogger(__name__)


class RunnerError(Exception):
    """An expected failure: one line for the log and the runner's own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def job_region(environ: Mapping[str, str]) -> str | None:
    return next((environ[name] for name in _REGION_VARIABLES if environ.get(name)), None)


def load_manifest(source: str, storage: S3Storage) -> Manifest:
    """Read a manifest from an s3:// URI or a local file; from_json checks its content hash."""
    try:
        text = storage.read_text(source) if source.startswith("s3://") else Path(source).read_text()
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


def stage(manifest: Manifest, storage: S3Storage, paths: JobPaths, fastq_dir: Path) -> None:
    """Download the FASTQs (checking sizes, several files at a time) and an s3:// reference, then write the local
    fastq-list CSV."""
    local = {fastq: fastq_dir / PurePosixPath(fastq.key).name for fastq in manifest.sorted_files}
    if len(set(local.values())) != len(local):
        raise RunnerError("two FASTQs of the manifest have the same file name", EXIT_USAGE)

    def fetch(fastq: FastqFile) -> None:
        uri = f"s3://{manifest.ingest_bucket}/{fastq.key}"
        size = _download(storage, uri, local[fastq])
        if size != fastq.size:
            raise RunnerError(
                f"{uri} is {size} bytes but the manifest says {fastq.size}: it changed after the manifest was written",
                EXIT_INPUT_CHANGED,
            )

    _concurrently(fetch, local)
    logger.info("staged %d FASTQs, %d bytes", len(local), sum(f.size for f in local))

    reference = manifest.route.reference_uri
    if reference.startswith("s3://"):
        try:
            ref_files = storage.download_prefix(reference, paths.ref_dir)
        except ObjectUnavailable as err:
            raise RunnerError(str(err), EXIT_INPUT_CHANGED) from err
        if not ref_files:
            raise RunnerError(f"reference {reference} holds no objects", EXIT_INPUT_CHANGED)
        ref_bytes = sum(p.stat().st_size for p in ref_files)
        logger.info("staged reference %s: %d files, %d bytes", reference, len(ref_files), ref_bytes)

    paths.fastq_list.write_text(manifest.fastq_list_csv(uri_of=lambda f: str(local[f])))


def _download(storage: S3Storage, uri: str, path: Path) -> int:
    try:
        return storage.download(uri, path)
    except ObjectUnavailable as err:
        raise RunnerError(str(err), EXIT_INPUT_CHANGED) from err


def run_command(command: list[str]) -> tuple[int, datetime, datetime]:
    """Run without a shell, output passed through; returns (exit code, start, end). Signal N gives 128 + N."""
    logger.info("running: %s", " ".join(command))
    started = datetime.now(UTC)
    try:
        proc = subprocess.Popen(command)
    except OSError as err:
        raise RunnerError(f"cannot start {command[0]}: {err}", EXIT_USAGE) from err
    # Batch stops a job with SIGTERM to the runner (PID 1, which ignores it by default): pass it on to the
    # engine so it ends and its partial outputs still get uploaded. Only the main thread may set handlers
    # (the local Batch executor runs jobs on a worker thread, where there is no SIGTERM to pass on).
    forward = threading.current_thread() is threading.main_thread()
    with proc:
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum)) if forward else None
        try:
            code = proc.wait()
        finally:
            if forward:
                signal.signal(signal.SIGTERM, previous)
    finished = datetime.now(UTC)
    code = 128 - code if code < 0 else code
    logger.info("%s exited with %d after %s", command[0], code, finished - started)
    return code, started, finished


def upload_outputs(output_dir: Path, output_uri: str, storage: S3Storage) -> list[dict]:
    """Upload each file under output_dir to output_uri + its relative path, several at a time; returns records
    sorted by path."""

    def upload(path: Path) -> dict:
        relative = path.relative_to(output_dir).as_posix()
        size, sha256 = _size_and_sha256(path)
        storage.upload(path, output_uri + relative)
        return {"path": relative, "uri": output_uri + relative, "size": size, "sha256": sha256}

    outputs = _concurrently(upload, sorted(p for p in output_dir.rglob("*") if p.is_file()))
    logger.info("uploaded %d outputs, %d bytes, to %s", len(outputs), sum(o["size"] for o in outputs), output_uri)
    return sorted(outputs, key=lambda o: o["path"])


def read_metrics(output_dir: Path) -> dict:
    """The engine's summary QC metrics; unreadable metrics are logged, not a reason to fail the analysis."""
    try:
        return summary_metrics(output_dir)
    except (MetricsError, OSError) as err:
        logger.warning("metrics not read: %s", err)
        return {}


def _concurrently(work, items) -> list:
    """`work` on each item, a few at a time (each S3 transfer is itself multipart-parallel); results in item order,
    and the first failure raised after every started transfer has ended."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(_TRANSFER_FILES_AT_ONCE, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    return [future.result() for future in futures]


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def result_document(
    manifest: Manifest,
    engine: Engine,
    *,
    command: list[str],
    exit_code: int,
    started: datetime,
    finished: datetime,
    outputs: list[dict],
    metrics: dict | None = None,
) -> dict:
    return {
        "schema": RESULT_SCHEMA,
        "run_id": manifest.run_id,
        "sample_id": manifest.sample_id,
        "version": manifest.version,
        "engine": engine.name,
        "command": command,
        "exit_code": exit_code,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "engine_seconds": round((finished - started).total_seconds(), 3),
        "metrics": metrics or {},
        "outputs": outputs,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
    """Run one job end to end and return the engine's exit code; expected failures raise RunnerError."""
    environ = os.environ if environ is None else environ
    region = job_region(environ)
    if not region:
        raise RunnerError(f"cannot tell this job's region: set one of {', '.join(_REGION_VARIABLES)}", EXIT_USAGE)
    storage = storage or S3Storage(region)
    manifest = load_manifest(manifest_source, storage)
    check_region(manifest, region)
    logger.info("job %s/%s version %s in %s", manifest.run_id, manifest.sample_id, manifest.version, region)

    # Everything that can be refused is checked before the first byte is downloaded.
    workdir = job_dir(Path(scratch), manifest)
    paths = job_paths(manifest, workdir)
    try:
        selected = select_engine(engine, dragen, environ)
        command = selected.command(manifest, paths)
    except EngineError as err:
        raise RunnerError(str(err), EXIT_USAGE) from err

    shutil.rmtree(workdir, ignore_errors=True)  # a previous attempt's files must not pass for this one's
    try:
        for directory in (workdir / "fastq", paths.output_dir, paths.tmp_dir):
            directory.mkdir(parents=True)
        stage(manifest, storage, paths, workdir / "fastq")
        exit_code, started, finished = run_command(command)
        outputs = upload_outputs(paths.output_dir, manifest.output_uri, storage)  # even on failure: diagnosis
        metrics = read_metrics(paths.output_dir)
        result = result_document(
            manifest,
            selected,
            command=command,
            exit_code=exit_code,
            started=started,
            finished=finished,
            outputs=outputs,
            metrics=metrics,
        )
        storage.put_json(manifest.result_uri, json.dumps(result, indent=2) + "\n")
        logger.info("wrote %s", manifest.result_uri)
    finally:
        if not keep_scratch:  # scratch is the host's disk, reused by the next job on this instance
            shutil.rmtree(workdir, ignore_errors=True)
    return exit_code
