"""`seqlane local run`: checking the run folder and reference, and the summary read back from the catalog."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from seqlane.attempts import RetryDisposition, RetryOutcome
from seqlane.local import rerun
from seqlane.local.client import Upload
from seqlane.local.run import (
    ABORTED,
    CONFLICT,
    FAILED,
    INCOMPLETE,
    SUCCEEDED,
    TIMED_OUT,
    RunInputError,
    RunRequest,
    check_reference,
    check_run_dir,
    execute,
    exit_status,
    sample_states,
    summarise,
)

RUN = "240101_RUN"
REGION = "eu-west-2"
SUMMARY_KEYS = {"run_id", "region", "samples", "ignored", "events", "accounting"}
SAMPLE_KEYS = {
    "sample_id",
    "status",
    "execution_name",
    "manifest_uri",
    "outputs",
    "metrics",
    "engine",
    "error",
    "conflicts",
}


def _sample_item(sample_id: str, status: str, **fields) -> dict:
    """A catalog SAMPLE# item as DynamoCatalog stores it (numbers come back as Decimal)."""
    item = {"pk": f"RUN#{RUN}", "sk": f"SAMPLE#{sample_id}", "run_id": RUN, "sample_id": sample_id, "status": status}
    return item | fields


def _output_item(sample_id: str, version: str, path: str) -> dict:
    uri = f"s3://results/{RUN}/{sample_id}/{version}/{path}"
    return {
        "pk": f"RUN#{RUN}",
        "sk": f"OUTPUT#{sample_id}#{version}#{path}",
        "sample_id": sample_id,
        "version": version,
        "path": path,
        "uri": uri,
    }


def _ignored_item(key: str, reason: str) -> dict:
    return {"pk": f"RUN#{RUN}", "sk": f"IGNORED#{key}", "key": key, "reason": reason}


def _slots(sample_id: str, *slots: tuple[int, int]) -> dict:
    """The `fastq#L001#R1` attributes DynamoCatalog.record_fastq writes for these (lane, read) slots."""
    return {
        f"fastq#L{lane:03d}#R{read}": {
            "key": f"{RUN}/{sample_id}_S1_L{lane:03d}_R{read}_001.fastq.gz",
            "lane": lane,
            "read": read,
            "size": 10,
            "etag": "e",
            "segment": 1,
        }
        for lane, read in slots
    }


def _by_id(summary: dict) -> dict[str, dict]:
    return {sample["sample_id"]: sample for sample in summary["samples"]}


def _fastq(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(gzip.compress(b"@r\nACGT\n+\nIIII\n"))
    return path


# ---- check_run_dir


def test_check_run_dir_refuses_a_missing_folder(tmp_path):
    # Given a path that does not exist
    missing = tmp_path / "no_such_run"

    # When / Then it is refused, naming the path
    with pytest.raises(RunInputError, match="does not exist") as excinfo:
        check_run_dir(missing)
    assert str(missing) in str(excinfo.value)


def test_check_run_dir_refuses_a_file(tmp_path):
    # Given a file where the run folder should be
    path = tmp_path / "run.tar"
    path.write_text("not a folder")

    # When / Then it is refused, naming the path
    with pytest.raises(RunInputError, match="is not a folder") as excinfo:
        check_run_dir(path)
    assert str(path) in str(excinfo.value)


def test_check_run_dir_refuses_a_folder_without_illumina_fastqs(tmp_path):
    # Given a run folder with a sample sheet and a FASTQ that is not Illumina-named
    run_dir = tmp_path / RUN
    run_dir.mkdir()
    (run_dir / "SampleSheet.csv").write_text("[Data]\nSample_ID\nNA12878\n")
    _fastq(run_dir, "reads.fq.gz")

    # When / Then it is refused, naming the folder and the expected naming
    with pytest.raises(RunInputError, match="no Illumina-named FASTQs") as excinfo:
        check_run_dir(run_dir)
    assert str(run_dir) in str(excinfo.value)


def test_check_run_dir_returns_fastqs_of_project_sub_folders(tmp_path):
    # Given a run folder whose FASTQs are in a Sample_Project sub-folder, next to other files
    run_dir = tmp_path / RUN
    run_dir.mkdir()
    (run_dir / "SampleSheet.csv").write_text("[Data]\n")
    (run_dir / "RTAComplete.txt").write_text("")
    project = run_dir / "Sample_Project"
    r2 = _fastq(project, "NA12878_S1_L001_R2_001.fastq.gz")
    r1 = _fastq(project, "NA12878_S1_L001_R1_001.fastq.gz")
    _fastq(project, "Undetermined_S0_L001_R1_001.fastq.gz")

    # When the folder is checked
    fastqs = check_run_dir(run_dir)

    # Then exactly the sample's Illumina-named FASTQs come back, in order
    assert fastqs == [r1, r2]


# ---- check_reference


def test_check_reference_refuses_a_missing_file(tmp_path):
    # Given a reference path that does not exist
    missing = tmp_path / "ref.fa"

    # When / Then it cannot be read, and the message names it
    with pytest.raises(RunInputError, match="cannot read reference") as excinfo:
        check_reference(missing)
    assert str(missing) in str(excinfo.value)


def test_check_reference_refuses_text_that_is_not_fasta(tmp_path):
    # Given a text file whose first non-empty line is not a '>' header
    path = tmp_path / "ref.fa"
    path.write_text("\n\nACGTACGT\n>chr1\n")

    # When / Then it is refused as not a FASTA
    with pytest.raises(RunInputError, match="is not a FASTA file") as excinfo:
        check_reference(path)
    assert str(path) in str(excinfo.value)


def test_check_reference_refuses_garbage_named_gz(tmp_path):
    # Given a .gz file that is not gzip at all
    path = tmp_path / "ref.fa.gz"
    path.write_bytes(b"\x00\x01garbage\xff\xfe" * 10)

    # When / Then it is refused, naming the file
    with pytest.raises(RunInputError, match="cannot read reference") as excinfo:
        check_reference(path)
    assert str(path) in str(excinfo.value)


def test_check_reference_refuses_gzipped_binary(tmp_path):
    # Given a valid gzip stream holding binary data, not text
    path = tmp_path / "ref.fa.gz"
    path.write_bytes(gzip.compress(bytes(range(128, 256)) * 4))

    # When / Then it is refused
    with pytest.raises(RunInputError, match="cannot read reference") as excinfo:
        check_reference(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("name", ["ref.fa", "ref.fa.gz"])
def test_check_reference_accepts_plain_and_gzipped_fasta(tmp_path, name):
    # Given a FASTA with leading blank lines, plain or gzipped by its name
    path = tmp_path / name
    content = b"\n>chr1 test\nACGTACGT\n"
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)

    # When / Then it is accepted
    assert check_reference(path) is None


# ---- summarise


def test_summarise_succeeded_sample_lists_only_its_current_version_outputs():
    # Given a succeeded sample at version v2, with outputs of v2 and of an older v1
    items = [
        _sample_item(
            "NA12878",
            "SUCCEEDED",
            manifest_version="v2",
            manifest_uri=f"s3://ingest/{RUN}/manifests/NA12878.v2.json",
            execution_name="exec-NA12878-v2",
            metrics={"mapped_reads": Decimal(90)},
            engine="cpu",
            exit_code=Decimal(0),
        ),
        _output_item("NA12878", "v2", "NA12878.bam"),
        _output_item("NA12878", "v1", "NA12878.bam"),
        _output_item("NA12878", "v2", "NA12878.hard-filtered.vcf.gz"),
    ]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then it lists exactly v2's outputs, sorted, and the sample's own fields
    assert summary["samples"] == [
        {
            "sample_id": "NA12878",
            "status": SUCCEEDED,
            "execution_name": "exec-NA12878-v2",
            "manifest_uri": f"s3://ingest/{RUN}/manifests/NA12878.v2.json",
            "outputs": [
                f"s3://results/{RUN}/NA12878/v2/NA12878.bam",
                f"s3://results/{RUN}/NA12878/v2/NA12878.hard-filtered.vcf.gz",
            ],
            "metrics": {"mapped_reads": Decimal(90)},
            "engine": "cpu",
            "error": None,
            "conflicts": [],
        }
    ]


def test_summarise_outputs_are_not_mixed_between_versions_sharing_a_prefix():
    # Given a sample at version "1" and outputs of a version "10" of the same sample
    items = [
        _sample_item("S", "SUCCEEDED", manifest_version="1"),
        _output_item("S", "1", "S.bam"),
        _output_item("S", "10", "S.bam"),
    ]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then only version 1's output is listed
    assert summary["samples"][0]["outputs"] == [f"s3://results/{RUN}/S/1/S.bam"]


def test_summarise_failed_job_reports_exit_code_and_reason():
    # Given a sample whose job exited with code 4
    items = [
        _sample_item(
            "S1",
            "FAILED",
            manifest_version="v1",
            exit_code=Decimal(4),
            status_reason="Essential container in task exited",
            job_id="job-1",
        )
    ]

    # When the run is summarised without a jobs folder
    summary = summarise(RUN, REGION, items, [])

    # Then the error names the exit code and Batch's reason
    sample = summary["samples"][0]
    assert (sample["status"], sample["error"]) == (FAILED, "job exited with code 4: Essential container in task exited")


def test_summarise_failed_job_error_uses_the_last_line_of_its_log(tmp_path):
    # Given a failed job whose log is in the jobs folder
    jobs_dir = tmp_path / "jobs"
    (jobs_dir / "logs").mkdir(parents=True)
    (jobs_dir / "logs" / "job-7.log").write_text("staging\nrunning dragen\ninput changed: size differs\n\n")
    items = [
        _sample_item(
            "S1",
            "FAILED",
            manifest_version="v1",
            exit_code=Decimal(4),
            status_reason="Essential container in task exited",
            job_id="job-7",
        )
    ]

    # When the run is summarised with that jobs folder
    summary = summarise(RUN, REGION, items, [], jobs_dir=jobs_dir)

    # Then the error is the job's own last words
    assert summary["samples"][0]["error"] == "job exited with code 4: input changed: size differs"


def test_summarise_failed_job_without_its_log_falls_back_to_the_reason(tmp_path):
    # Given a jobs folder that does not hold this job's log
    items = [_sample_item("S1", "FAILED", exit_code=Decimal(1), status_reason="reason X", job_id="job-9")]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [], jobs_dir=tmp_path)

    # Then Batch's reason is used
    assert summary["samples"][0]["error"] == "job exited with code 1: reason X"


def test_summarise_failed_without_exit_code_reports_the_failure_error():
    # Given a sample whose execution failed before any job exited (no exit code)
    items = [_sample_item("S1", "FAILED", failure_error="States.TaskFailed", status_reason="ignored")]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then the execution's error is reported
    assert summary["samples"][0]["error"] == "States.TaskFailed"


def test_summarise_receiving_sample_is_incomplete_waiting_for_its_missing_reads():
    # Given a sample with only L001 R1 recorded
    items = [_sample_item("S1", "RECEIVING", **_slots("S1", (1, 1)))]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then it is incomplete and says which read is awaited
    sample = summary["samples"][0]
    assert (sample["status"], sample["error"]) == (INCOMPLETE, "waiting for L001 R2")


def test_summarise_receiving_sample_with_all_reads_waits_for_the_run_to_close():
    # Given a sample with both reads of its lane but no run completion
    items = [_sample_item("S1", "RECEIVING", **_slots("S1", (1, 1), (1, 2)))]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then it is incomplete, waiting for the run to close
    sample = summary["samples"][0]
    assert sample["status"] == INCOMPLETE
    assert sample["error"].startswith("waiting for the run to close")


def test_summarise_sample_stuck_at_submitted_is_failed():
    # Given a sample still SUBMITTED when the stack is idle
    items = [_sample_item("S1", "SUBMITTED", manifest_version="v1")]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, [])

    # Then it is a failure saying where it stopped
    sample = summary["samples"][0]
    assert sample["status"] == FAILED
    assert sample["error"] == "stopped at SUBMITTED: nothing is queued or running for it"


def test_summarise_shapes_the_summary_ignored_entries_and_events():
    # Given samples out of order, ignored files out of order, and observed events
    items = [
        _ignored_item(f"{RUN}/reads.fq.gz", "not an Illumina FASTQ name"),
        _sample_item("S2", "SUCCEEDED", manifest_version="v1"),
        {"pk": f"RUN#{RUN}", "sk": "RUN", "run_id": RUN, "complete": True},
        _ignored_item(f"{RUN}/InterOp/x.bin", "not used"),
        _sample_item("S1", "SUCCEEDED", manifest_version="v1"),
    ]
    events = [
        {"detail-type": "Run Completed", "detail": {}},
        {"detail-type": "Analysis Started", "detail": {}},
        {"detail-type": "Analysis Succeeded", "detail": {}},
    ]

    # When the run is summarised
    summary = summarise(RUN, REGION, items, events)

    # Then the summary has exactly its keys, samples by id, ignored by key, events by detail-type in order
    assert set(summary) == SUMMARY_KEYS
    assert (summary["run_id"], summary["region"]) == (RUN, REGION)
    assert [sample["sample_id"] for sample in summary["samples"]] == ["S1", "S2"]
    assert all(set(sample) == SAMPLE_KEYS for sample in summary["samples"])
    assert summary["ignored"] == [
        {"key": f"{RUN}/InterOp/x.bin", "reason": "not used"},
        {"key": f"{RUN}/reads.fq.gz", "reason": "not an Illumina FASTQ name"},
    ]
    assert summary["events"] == ["Run Completed", "Analysis Started", "Analysis Succeeded"]


def test_summarise_sample_without_a_version_has_no_outputs_and_empty_metrics():
    # Given a receiving sample (no manifest yet) and a stray output item of it
    items = [_sample_item("S1", "RECEIVING"), _output_item("S1", "None", "S1.bam")]

    # When the run is summarised
    sample = _by_id(summarise(RUN, REGION, items, []))["S1"]

    # Then no outputs are listed and its metrics default to {}
    assert (sample["outputs"], sample["metrics"], sample["engine"]) == ([], {}, None)


def test_summarise_failed_job_error_prefers_the_catalog_reason_over_its_log(tmp_path):
    # Given a failed job whose catalog record holds the runner's one-line reason, and whose log ends otherwise
    jobs_dir = tmp_path / "jobs"
    (jobs_dir / "logs").mkdir(parents=True)
    (jobs_dir / "logs" / "job-7.log").write_text("staging\nexiting with code 5\n")
    reason = f"NA12878 L001: R1 has 900 reads, R2 has 676 (s3://in/{RUN}/a_R1.fastq.gz, s3://in/{RUN}/a_R2.fastq.gz)"
    items = [
        _sample_item(
            "S1",
            "FAILED",
            manifest_version="v1",
            exit_code=Decimal(5),
            status_reason="Essential container in task exited",
            job_id="job-7",
            failure_error="JobFailed",
            failure_reason=reason,
        )
    ]

    # When the run is summarised with that jobs folder
    sample = summarise(RUN, REGION, items, [], jobs_dir=jobs_dir)["samples"][0]

    # Then the error is the catalog's reason, after the exit code
    assert (sample["status"], sample["error"]) == (FAILED, f"job exited with code 5: {reason}")


def test_summarise_failed_job_reason_that_states_the_exit_code_is_not_prefixed_again():
    # Given the catalog's own reason for a job that left no result file (it names the exit code)
    reason = "Batch: Essential container in task exited (exit code 137); no runner result file (is missing)"
    items = [_sample_item("S1", "FAILED", exit_code=Decimal(137), job_id="job-1", failure_reason=reason)]

    # When / Then it is reported as it is
    assert summarise(RUN, REGION, items, [])["samples"][0]["error"] == reason


def test_summarise_failed_execution_without_a_job_prefers_the_reason_over_the_error_name():
    # Given an execution that failed before any job ran (no exit code), with its error and cause
    items = [
        _sample_item(
            "S1", "FAILED", failure_error="States.TaskFailed", failure_reason="States.TaskFailed: submit refused"
        )
    ]

    # When / Then the reason, which holds the cause, is the error
    assert summarise(RUN, REGION, items, [])["samples"][0]["error"] == "States.TaskFailed: submit refused"


@pytest.mark.parametrize("status", [TIMED_OUT, ABORTED])
def test_summarise_timed_out_or_aborted_sample_keeps_its_status_and_the_catalog_reason(status):
    # Given a sample whose execution timed out or was stopped
    reason = f"the execution ended {status}"
    items = [_sample_item("S1", status, manifest_version="v1", failure_error=status, failure_reason=reason)]

    # When the run is summarised
    sample = summarise(RUN, REGION, items, [])["samples"][0]

    # Then its status is its own, not FAILED, with the catalog's reason
    assert (sample["status"], sample["error"]) == (status, reason)


def _claims(sample_id: str, *keys: str) -> dict:
    """Two keys' claims on L001 R1 as DynamoCatalog.record_fastq writes them when a second key takes a taken slot."""
    value = {"lane": 1, "read": 1, "size": 10, "etag": "e", "segment": 1}
    return {f"claim#L001#R1#{number:016x}": value | {"key": key} for number, key in enumerate(keys)}


def test_summarise_conflict_sample_names_both_keys_and_accounts_for_every_upload():
    # Given a sample held in CONFLICT (two S-numbers for L001 R1), a succeeded one, and an ignored file
    two = [f"{RUN}/S2_S1_L001_R1_001.fastq.gz", f"{RUN}/S2_S9_L001_R1_001.fastq.gz"]
    items = [
        _sample_item("S1", "SUCCEEDED", manifest_version="v1", **_slots("S1", (1, 1), (1, 2))),
        _sample_item("S2", "CONFLICT", **_slots("S2", (1, 2)), **_claims("S2", *two)),
        _ignored_item(f"{RUN}/InterOp/x.bin", "not used"),
    ]
    items[1]["fastq#L001#R1"] = {"key": two[0], "lane": 1, "read": 1, "size": 10, "etag": "e", "segment": 1}
    uploaded = [f"{RUN}/S1_S1_L001_R{r}_001.fastq.gz" for r in (1, 2)] + two + [f"{RUN}/S2_S1_L001_R2_001.fastq.gz"]
    uploaded += [f"{RUN}/InterOp/x.bin", f"{RUN}/CopyComplete.txt"]

    # When the run is summarised with the keys the client uploaded
    summary = summarise(RUN, REGION, items, [], uploaded_keys=uploaded)

    # Then S2 is CONFLICT and its error names both keys; the accounting balances
    sample = _by_id(summary)["S2"]
    assert sample["status"] == CONFLICT
    assert all(key in sample["error"] for key in two) and "S1, S9" in sample["error"]
    assert [c["keys"] for c in sample["conflicts"]] == [two]
    assert summary["accounting"] == {
        "uploaded": 6,
        "in_manifests": 2,
        "ignored": 1,
        "in_conflict": 3,
        "balanced": True,
        "unaccounted": [],
    }
    # And the run exits non-zero
    assert exit_status(summary) == 1


def test_summarise_accounting_names_an_upload_the_catalog_never_recorded():
    # Given a succeeded sample, and an upload the catalog has nothing for
    items = [_sample_item("S1", "SUCCEEDED", manifest_version="v1", **_slots("S1", (1, 1), (1, 2)))]
    uploaded = [f"{RUN}/S1_S1_L001_R{r}_001.fastq.gz" for r in (1, 2)] + [f"{RUN}/lost.fastq.gz"]
    # When summarised / Then the accounting does not balance and names it
    accounting = summarise(RUN, REGION, items, [], uploaded_keys=uploaded)["accounting"]
    assert (accounting["balanced"], accounting["unaccounted"]) == (False, [f"{RUN}/lost.fastq.gz"])


def test_sample_states_and_summary_skip_records_that_only_map_a_sample_name():
    # Given the record a v1 sheet leaves under a Sample_Name (which folders own it), and a sample
    items = [
        {"pk": f"RUN#{RUN}", "sk": "SAMPLE#tissue", "folder_owners": {"S1"}},
        _sample_item("S1", "RECEIVING"),
    ]
    # When / Then only the sample is shown
    assert [s["sample_id"] for s in sample_states(items)] == ["S1"]
    assert [s["sample_id"] for s in summarise(RUN, REGION, items, [])["samples"]] == ["S1"]


# ---- exit_status


def _summary(*statuses: str) -> dict:
    return {"samples": [{"sample_id": f"S{i}", "status": status} for i, status in enumerate(statuses)]}


def test_exit_status_is_zero_when_every_complete_sample_succeeded():
    # Given succeeded samples and an incomplete one
    # When / Then the run counts as a success
    assert exit_status(_summary(SUCCEEDED, INCOMPLETE, SUCCEEDED)) == 0


def test_exit_status_is_one_with_any_failed_sample():
    # Given one failure among successes
    # When / Then the run counts as failed
    assert exit_status(_summary(SUCCEEDED, FAILED, INCOMPLETE)) == 1


def test_exit_status_is_one_with_a_sample_in_conflict():
    # Given a sample in CONFLICT among successes
    # When / Then the run counts as failed
    assert exit_status(_summary(SUCCEEDED, CONFLICT)) == 1


@pytest.mark.parametrize("failed", [TIMED_OUT, ABORTED])
def test_exit_status_is_one_with_a_timed_out_or_aborted_sample(failed):
    # Given one timed-out or aborted sample among successes
    # When / Then the run counts as failed
    assert exit_status(_summary(SUCCEEDED, failed)) == 1


@pytest.mark.parametrize("statuses", [(), (INCOMPLETE,), (INCOMPLETE, INCOMPLETE)])
def test_exit_status_is_one_without_any_complete_sample(statuses):
    # Given no sample, or only incomplete ones
    # When / Then the run counts as failed
    assert exit_status(_summary(*statuses)) == 1


# ---- execute


class _FakeClient:
    """The LocalClient calls execute makes, over a catalog that changes at given moments."""

    region = REGION
    jobs_dir = None

    def __init__(self, run_dir: Path, catalogs: list[list[dict]]) -> None:
        self.run_dir = run_dir
        self.catalogs = catalogs  # before the upload, after it, after the re-analysis
        self.calls: list[str] = []

    def catalog_items(self, run_id: str) -> list[dict]:
        return self.catalogs[min(self.calls.count("idle"), len(self.catalogs) - 1)]

    def observe_events(self, run_id: str) -> None:
        self.calls.append("observe")

    def upload_run(self, run_dir: Path, seed: int = 0) -> list[Upload]:
        self.calls.append("upload")
        return [Upload(key=f"{RUN}/{p.name}", size=1, duplicated=False) for p in sorted(run_dir.iterdir())]

    def wait_until_idle(self, timeout: float, on_poll=None) -> None:
        self.calls.append("idle")

    def observed_events(self) -> list[dict]:
        return []

    def stop_observing(self) -> None:
        self.calls.append("stop")

    def dead_letters(self) -> int:
        return 0


def _run_folder(tmp_path: Path) -> Path:
    run_dir = tmp_path / RUN
    for read in (1, 2):
        _fastq(run_dir, f"S1_S1_L001_R{read}_001.fastq.gz")
    (run_dir / "stray.bin").write_bytes(b"x")
    return run_dir


def test_execute_reanalyses_a_sample_that_failed_before_the_upload_and_reports_it(tmp_path, monkeypatch):
    # Given a run folder whose sample failed on an earlier run, unchanged by this upload, then succeeds again
    run_dir = _run_folder(tmp_path)
    slots = _slots("S1", (1, 1), (1, 2))
    failed = _sample_item("S1", "FAILED", manifest_version="v1", attempt=Decimal(1), failure_reason="boom", **slots)
    succeeded = _sample_item("S1", "SUCCEEDED", manifest_version="v1", attempt=Decimal(2), **slots)
    client = _FakeClient(run_dir, [[failed], [failed], [succeeded]])
    asked = []

    def rerun_failed(client_, run_id, before):
        asked.append((run_id, before, list(client.calls)))
        return [RetryOutcome(RUN, "S1", RetryDisposition.STARTED, 2, "exec-2", "FAILED", "boom")]

    monkeypatch.setattr(rerun, "rerun_failed", rerun_failed)

    # When the run is executed
    summary = execute(client, RunRequest(run_dir=run_dir))

    # Then the failure noted before the upload was re-analysed once the upload was handled, and waited for
    assert asked == [(RUN, {"S1": ("v1", 1)}, ["observe", "upload", "idle"])]
    assert client.calls == ["observe", "upload", "idle", "idle", "stop"]
    assert summary["rerun"] == [
        {"sample_id": "S1", "attempt": 2, "previous_status": "FAILED", "previous_reason": "boom"}
    ]
    assert summary["samples"][0]["status"] == SUCCEEDED
    # And the accounting counts what the client uploaded: the stray file was never recorded
    assert summary["accounting"]["uploaded"] == 3
    assert summary["accounting"]["unaccounted"] == [f"{RUN}/stray.bin"]


def test_execute_first_run_reanalyses_nothing(tmp_path, monkeypatch):
    # Given a run folder the stack has never seen
    run_dir = _run_folder(tmp_path)
    done = _sample_item("S1", "SUCCEEDED", manifest_version="v1", **_slots("S1", (1, 1), (1, 2)))
    client = _FakeClient(run_dir, [[], [done]])
    monkeypatch.setattr(rerun, "rerun_failed", lambda *args: pytest.fail("nothing had failed"))

    # When the run is executed
    summary = execute(client, RunRequest(run_dir=run_dir))

    # Then nothing is re-analysed, the stack is waited for once, and "rerun" is there, empty
    assert client.calls == ["observe", "upload", "idle", "stop"]
    assert summary["rerun"] == []
