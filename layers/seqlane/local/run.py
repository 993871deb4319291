"""`seqlane local run` and `seqlane demo`: one run folder through the embedded stack, and its summary.

The summary is read back from what the pipeline itself wrote (catalog, results bucket, seqlane events), never
from what this module uploaded, so it shows what an operator or analyst would see in AWS.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlane.adapters.catalog_table import is_sample_item, sample_from_item
from seqlane.completion import Conflict, account, conflicts, missing_reads, sample_keys
from seqlane.local.client import LocalClient
from seqlane.naming import FastqKey, classify_key
from seqlane.ports import SampleRecord, SampleStatus

SUCCEEDED, FAILED, INCOMPLETE, CONFLICT = "SUCCEEDED", "FAILED", "INCOMPLETE", "CONFLICT"
TIMED_OUT, ABORTED = "TIMED_OUT", "ABORTED"
FAILURE_STATUSES = frozenset({FAILED, TIMED_OUT, ABORTED, CONFLICT})  # any of them makes the run exit non-zero
CALLS_SUFFIX = ".hard-filtered.vcf.gz"
Progress = Callable[[list[dict[str, str]]], None]  # [{"sample_id", "state"}] on every poll


class RunInputError(ValueError):
    """The run folder or reference cannot be used: one line for the user."""


def check_run_dir(run_dir: Path) -> list[Path]:
    """The run folder's FASTQs by their Illumina names; refuses a missing folder or one without any."""
    if not run_dir.exists():
        raise RunInputError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise RunInputError(f"{run_dir} is not a folder")
    fastqs = [
        path
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
        and isinstance(classify_key(f"{run_dir.name}/{path.relative_to(run_dir).as_posix()}"), FastqKey)
    ]
    if not fastqs:
        raise RunInputError(
            f"no Illumina-named FASTQs in {run_dir} (expected <Sample>_S<n>_L<lane>_R<1|2>_001.fastq.gz)"
        )
    return fastqs


def check_reference(fasta: Path) -> None:
    """A readable FASTA (plain or gzipped): its first non-empty line is a '>' header."""
    try:
        opener = gzip.open if fasta.name.endswith(".gz") else open
        with opener(fasta, "rt") as stream:
            first = next((line for line in stream if line.strip()), "")
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise RunInputError(f"cannot read reference {fasta}: {err}") from err
    if not first.startswith(">"):
        raise RunInputError(f"reference {fasta} is not a FASTA file (no '>' header line)")


@dataclass(frozen=True)
class RunRequest:
    run_dir: Path
    reference: Path | None = None  # None: use the reference already in the local stack
    truth_vcf: Path | None = None  # compare each sample's calls with it (recall, precision)
    out_dir: Path | None = None  # copy each sample's outputs to out_dir/<sample_id>/
    seed: int = 0  # upload order and duplicated deliveries
    timeout: float = 600.0


def check_request(request: RunRequest) -> None:
    """Refuse a run folder or reference that cannot be used, before anything starts."""
    check_run_dir(request.run_dir)
    if request.reference is not None:
        check_reference(request.reference)


def execute(client: LocalClient, request: RunRequest, on_progress: Progress | None = None) -> dict[str, Any]:
    """Upload the run as a sequencer would, wait until the stack is idle, and summarise what the pipeline did."""
    check_request(request)
    if request.reference is not None:
        client.put_reference(request.reference)
    # Imported here, not with this module: it loads Powertools' Logger, whose handler keeps the sys.stdout of its
    # creation, and the CLI sends stdout to its log only around this call.
    from seqlane.local.rerun import failed_samples, rerun_failed, rerun_summary

    run_id = request.run_dir.name
    # Noted before the upload: a sample that failed on an earlier run of this folder and whose files do not change
    # (same content, same version: the upload alone starts nothing) is analysed again once the upload is handled.
    before = failed_samples(client.catalog_items(run_id))
    client.observe_events(run_id)
    try:
        uploads = client.upload_run(request.run_dir, seed=request.seed)

        def poll() -> None:
            if on_progress:
                on_progress(sample_states(client.catalog_items(run_id)))

        client.wait_until_idle(timeout=request.timeout, on_poll=poll)
        outcomes = rerun_failed(client, run_id, before) if before else []
        if outcomes:
            client.wait_until_idle(timeout=request.timeout, on_poll=poll)
        poll()
        events = client.observed_events()
    finally:
        client.stop_observing()
    items = client.catalog_items(run_id)
    summary = summarise(
        run_id, client.region, items, events, jobs_dir=client.jobs_dir, uploaded_keys=[u.key for u in uploads]
    )
    summary["rerun"] = rerun_summary(outcomes)
    summary["dead_letters"] = client.dead_letters()
    if request.truth_vcf is not None:
        add_concordance(client, summary, request.truth_vcf)
    if request.out_dir is not None:
        copy_outputs(client, summary, items, request.out_dir)
    return summary


def sample_states(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"sample_id": _sample_id(item), "state": item.get("status", SampleStatus.RECEIVING)}
        for item in sorted(items, key=lambda item: item["sk"])
        if is_sample_item(item)
    ]


def _sample_id(item: dict[str, Any]) -> str:
    return item["sk"].removeprefix("SAMPLE#")


def summarise(
    run_id: str,
    region: str,
    items: list[dict[str, Any]],
    events: list[dict[str, Any]],
    *,
    jobs_dir: Path | None = None,
    uploaded_keys: list[str] | None = None,
) -> dict[str, Any]:
    """`uploaded_keys`: what the client uploaded, for the accounting (without it, the keys the catalog knows)."""
    samples, records = [], []
    for item in sorted((i for i in items if is_sample_item(i)), key=_sample_id):
        sample_id = _sample_id(item)
        version = item.get("manifest_version")
        output_prefix = f"OUTPUT#{sample_id}#{version}#"
        outputs = sorted(i["uri"] for i in items if version and i["sk"].startswith(output_prefix))
        record = sample_from_item(item)
        records.append(record)
        found = conflicts(record)
        # Held (nothing started), or started before the conflict: either way its files are not accounted for.
        status, error = (CONFLICT, _conflict_error(found)) if found else _status_and_error(item, record, jobs_dir)
        samples.append(
            {
                "sample_id": sample_id,
                "status": status,
                "execution_name": item.get("execution_name"),
                "manifest_uri": item.get("manifest_uri"),
                "outputs": outputs,
                "metrics": item.get("metrics", {}),
                "engine": item.get("engine"),
                "error": error,
                "conflicts": [{"slot": c.slot, "keys": list(c.keys), "reason": c.reason} for c in found],
            }
        )
    ignored = sorted(
        ({"key": item["key"], "reason": item["reason"]} for item in items if item["sk"].startswith("IGNORED#")),
        key=lambda entry: entry["key"],
    )
    ignored_keys = [entry["key"] for entry in ignored]
    if uploaded_keys is None:
        uploaded_keys = [key for record in records for key in sample_keys(record)] + ignored_keys
    return {
        "run_id": run_id,
        "region": region,
        "samples": samples,
        "ignored": ignored,
        "events": [event["detail-type"] for event in events],
        "accounting": account(uploaded_keys, records, ignored_keys),
    }


def _conflict_error(found: list[Conflict]) -> str:
    return "; ".join(f"{conflict.reason}: {', '.join(conflict.keys)}" for conflict in found)


def _status_and_error(  # noqa: PLR0911 - one return per status
    item: dict[str, Any], record: SampleRecord, jobs_dir: Path | None
) -> tuple[str, str | None]:
    status = item.get("status", SampleStatus.RECEIVING)
    if status == SampleStatus.SUCCEEDED:
        return SUCCEEDED, None
    if status == SampleStatus.FAILED:
        return FAILED, _failure_error(item, jobs_dir)
    if status in (SampleStatus.TIMED_OUT, SampleStatus.ABORTED):
        return str(status), item.get("failure_reason") or item.get("failure_error") or f"{status} without a reason"
    if status == SampleStatus.CONFLICT:  # held, though its record no longer shows the claims
        return CONFLICT, item.get("failure_reason") or "held in conflict: nothing started"
    if status == SampleStatus.RECEIVING:
        missing = missing_reads(record)
        if missing:
            return INCOMPLETE, f"waiting for {', '.join(missing)}"
        return INCOMPLETE, "waiting for the run to close (no completion marker or sample sheet yet)"
    return FAILED, f"stopped at {status}: nothing is queued or running for it"


def _failure_error(item: dict[str, Any], jobs_dir: Path | None) -> str:
    """The catalog's one-line reason (the runner's own, naming the file, when it wrote one) first; then the job
    log's last line, then Batch's reason."""
    reason = item.get("failure_reason")
    if item.get("exit_code") is None:
        return reason or item.get("failure_error") or item.get("status_reason") or "failed without a reason"
    code = item["exit_code"]
    if reason and "exit code" in reason:  # the catalog's own fallback already says it
        return reason
    reason = reason or _last_log_line(jobs_dir, item.get("job_id")) or item.get("status_reason") or "no reason given"
    return f"job exited with code {code}: {reason}"


def _last_log_line(jobs_dir: Path | None, job_id: str | None) -> str | None:
    """The job's own last words (the runner's one-line error), when its log is on this machine."""
    if jobs_dir is None or not job_id:
        return None
    from seqlane.local.batch import job_log_path

    try:
        lines = job_log_path(jobs_dir, job_id).read_text(errors="replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1] if lines else None


def add_concordance(client: LocalClient, summary: dict[str, Any], truth_vcf: Path) -> None:
    """Recall and precision of each succeeded sample's PASS calls against the truth VCF, and over the run."""
    from seqlane.demo.truth import Concordance, compare

    totals, scored = Concordance(0, 0, 0), 0
    with tempfile.TemporaryDirectory(prefix="seqlane-calls-") as scratch:
        for sample in summary["samples"]:
            calls = [uri for uri in sample["outputs"] if uri.endswith(CALLS_SUFFIX)]
            if sample["status"] != SUCCEEDED or len(calls) != 1:
                sample["concordance"] = None
                continue
            local = client.download(calls[0], Path(scratch) / sample["sample_id"] / "calls.vcf.gz")
            result = compare(truth_vcf, local)
            sample["concordance"] = result.as_dict()
            scored += 1
            totals = Concordance(
                totals.true_positives + result.true_positives,
                totals.false_positives + result.false_positives,
                totals.false_negatives + result.false_negatives,
            )
    summary["concordance"] = totals.as_dict() if scored else None


def copy_outputs(client: LocalClient, summary: dict[str, Any], items: list[dict[str, Any]], out_dir: Path) -> None:
    """Each sample's outputs to out_dir/<sample_id>/, at their paths below the output prefix."""
    paths = {item["uri"]: item["path"] for item in items if item["sk"].startswith("OUTPUT#")}
    for sample in summary["samples"]:
        if not sample["outputs"]:
            continue
        directory = out_dir / sample["sample_id"]
        shutil.rmtree(directory, ignore_errors=True)  # a previous copy must not mix with this one
        for uri in sample["outputs"]:
            client.download(uri, directory / paths[uri])
        sample["local_outputs"] = str(directory)


def exit_status(summary: dict[str, Any]) -> int:
    """0 only when every complete sample succeeded (and there was at least one); 1 when any is FAILED, TIMED_OUT,
    ABORTED or in CONFLICT."""
    complete = [s for s in summary["samples"] if s["status"] != INCOMPLETE]
    if any(s["status"] in FAILURE_STATUSES for s in complete):
        return 1
    return 0 if complete and all(s["status"] == SUCCEEDED for s in complete) else 1
