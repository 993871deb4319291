"""The job runner end to end on moto S3, with a fake `dragen` that checks its arguments like DRAGEN would."""

from __future__ import annotations

import gzip
import hashlib
import json
import signal
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from seqlane.manifest import RESULT_FILE_NAME, FastqFile, Manifest, Route
from seqlane.runner import job
from seqlane.runner.__main__ import main

REGION = "eu-west-1"
SAMPLE = "NA12878"
FASTQS = {  # key -> (lane, read, FASTQ text), uploaded gzipped
    f"240101_RUN/{SAMPLE}_S1_L001_R1_001.fastq.gz": (1, 1, b"@r1/1\nACGT\n+\nIIII\n"),
    f"240101_RUN/{SAMPLE}_S1_L001_R2_001.fastq.gz": (1, 2, b"@r1/2\nTTGCA\n+\nIIIII\n"),
    f"240101_RUN/{SAMPLE}_S1_L002_R1_001.fastq.gz": (2, 1, b"@r2/1\nGG\n+\nII\n"),
    f"240101_RUN/{SAMPLE}_S1_L002_R2_001.fastq.gz": (2, 2, b"@r2/2\nCCA\n+\nIII\n"),
}
REFERENCE = {  # key in the refs bucket -> content; hg38-alt/ shares the prefix text but is another reference
    "hg38/hash_table.cfg": b"reference_name = hg38\n",
    "hg38/anchored_rna/ref_index.bin": b"\x00\x01\x02",
    "hg38-alt/hash_table.cfg": b"not this one\n",
}
EXPECTED_OUTPUTS = [
    f"{SAMPLE}.bam",
    f"{SAMPLE}.hard-filtered.vcf.gz",
    f"{SAMPLE}.mapping_metrics.csv",
    f"qc/{SAMPLE}.wgs_coverage_metrics.csv",
]


@pytest.fixture
def runner_s3(monkeypatch):
    """Moto S3 with the ingest, results and refs buckets; the job runs in REGION."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SEQLANE_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_REGION", "SEQLANE_SCRATCH", "AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in ("ingest", "results", "refs"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key, body in REFERENCE.items():
            s3.put_object(Bucket="refs", Key=key, Body=body)
        yield s3


@pytest.fixture
def runner_dragen(fake_dragen, monkeypatch) -> Path:
    """The fake DRAGEN (tests/fakes/dragen.py), found through DRAGEN_BIN as in the job definition."""
    path = fake_dragen
    monkeypatch.setenv("DRAGEN_BIN", str(path))
    monkeypatch.delenv("FAKE_DRAGEN_EXIT", raising=False)
    return path


def _gz(text: bytes) -> bytes:
    return gzip.compress(text, mtime=0)


def _put_sample(
    s3,
    *,
    region=REGION,
    modality="germline-wgs",
    reference_uri="s3://refs/hg38",
    bodies: dict[str, bytes] | None = None,
) -> Manifest:
    """Upload the FASTQs (gzipped, or `bodies` as they are), then the manifest describing them (as the pipeline
    does), into moto S3."""
    files = []
    bodies = bodies or {key: _gz(text) for key, (_, _, text) in FASTQS.items()}
    for key, body in bodies.items():
        lane, read = FASTQS[key][:2] if key in FASTQS else _lane_read(key)
        etag = s3.put_object(Bucket="ingest", Key=key, Body=body)["ETag"].strip('"')
        files.append(FastqFile(key=key, lane=lane, read=read, size=len(body), etag=etag))
    manifest = Manifest(
        run_id="240101_RUN",
        sample_id=SAMPLE,
        ingest_bucket="ingest",
        results_bucket="results",
        route=Route(modality=modality, dragen_version="4.3.6", reference_uri=reference_uri, region=region),
        files=tuple(files),
    )
    s3.put_object(Bucket="results", Key=manifest.manifest_key, Body=manifest.to_json())
    return manifest


def _lane_read(key: str) -> tuple[int, int]:
    """Lane and read of an Illumina name: ..._L002_R1_001.fastq.gz -> (2, 1)."""
    parts = Path(key).name.split("_")
    return int(parts[-3].removeprefix("L")), int(parts[-2].removeprefix("R"))


def _run(manifest_source: str, scratch: Path, *extra: str) -> int:
    return main(["--manifest", manifest_source, "--scratch", str(scratch), *extra])


def _result(s3, manifest: Manifest, job_id: str = "local", attempt: int = 1) -> dict:
    key = manifest.result_uri(job_id, attempt).removeprefix("s3://results/")
    return json.loads(s3.get_object(Bucket="results", Key=key)["Body"].read())


def _keys(s3, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_runner_uploads_outputs_and_result_file(runner_s3, runner_dragen, tmp_path, monkeypatch, capfd):
    # Given a sample on S3 and hashing in tiny chunks, so multi-chunk reads are exercised
    manifest = _put_sample(runner_s3)
    monkeypatch.setattr(job, "_CHUNK", 5)

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then DRAGEN succeeded, its output passed through, and every output is on S3 with its true hash
    assert exit_code == 0
    captured = capfd.readouterr()
    assert "fake dragen: done" in captured.out
    assert captured.err == ""
    result = _result(runner_s3, manifest)
    attempt_uri = manifest.attempt_uri("local", 1)
    assert [o["path"] for o in result["outputs"]] == EXPECTED_OUTPUTS
    for output in result["outputs"]:
        assert output["uri"] == attempt_uri + output["path"]
        body = runner_s3.get_object(Bucket="results", Key=output["uri"].removeprefix("s3://results/"))["Body"]
        content = body.read()
        assert output["size"] == len(content)
        assert output["sha256"] == hashlib.sha256(content).hexdigest()
    # and the BAM was built from the staged FASTQs, in fastq-list order
    bam = runner_s3.get_object(Bucket="results", Key=attempt_uri.removeprefix("s3://results/") + f"{SAMPLE}.bam")
    assert bam["Body"].read() == b"BAM\x01" + b"".join(_gz(text) for _, _, text in FASTQS.values())
    # and the result file describes the run
    assert result["schema"] == "seqlane.result/1"
    assert (result["run_id"], result["sample_id"], result["version"]) == (
        "240101_RUN",
        SAMPLE,
        manifest.version,
    )
    assert (result["job_id"], result["attempt"]) == ("local", 1)
    assert (result["status"], result["error"], result["runner_exit_code"]) == ("SUCCEEDED", None, 0)
    assert result["engine"] == "dragen"
    assert result["exit_code"] == 0
    # and every input with its read count, reconciled with the engine's Total input reads
    assert [(i["key"], i["lane"], i["read"], i["segment"], i["reads"]) for i in result["inputs"]] == [
        (key, lane, read, 1, 1) for key, (lane, read, _) in FASTQS.items()
    ]
    assert result["reconciliation"] == {
        "staged_reads": 4,
        "engine_reads": 4,
        "ok": True,
        "detail": "staged 4 reads, engine reports 4",
    }
    assert result["metrics"]["total_input_reads"] == 4
    assert result["command"][0] == str(runner_dragen)
    assert result["command"][result["command"].index("--output-file-prefix") + 1] == SAMPLE
    assert result["started_at"].endswith("Z")
    assert result["started_at"] <= result["finished_at"]
    assert RESULT_FILE_NAME not in [o["path"] for o in result["outputs"]]
    # and nothing was written outside the attempt's prefix, and local scratch was cleaned up
    output_prefix = attempt_uri.removeprefix("s3://results/")
    assert sorted(_keys(runner_s3, "results", "results/")) == sorted(
        [output_prefix + p for p in EXPECTED_OUTPUTS] + [output_prefix + RESULT_FILE_NAME]
    )
    assert not (tmp_path / "scratch" / manifest.run_id / SAMPLE / manifest.version).exists()


def test_runner_propagates_dragen_failure_and_still_uploads(runner_s3, runner_dragen, tmp_path, monkeypatch, capfd):
    # Given DRAGEN will fail with exit code 7 after writing some outputs and an error line on stderr
    manifest = _put_sample(runner_s3)
    monkeypatch.setenv("FAKE_DRAGEN_EXIT", "7")

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then the runner exits with DRAGEN's code, its last line quoting the engine's own error
    assert exit_code == 7
    message = "engine dragen exited with code 7: fake dragen: ERROR: simulated failure, exiting with 7"
    assert capfd.readouterr().err.splitlines()[-1] == f"seqlane-runner: error: {message}"
    # and the outputs and a FAILED result file are still uploaded
    result = _result(runner_s3, manifest)
    assert result["exit_code"] == 7
    assert (result["status"], result["error"], result["runner_exit_code"]) == ("FAILED", message, 7)
    assert [o["path"] for o in result["outputs"]] == EXPECTED_OUTPUTS
    assert result["reconciliation"]["ok"] is False


def test_runner_region_mismatch_exits_3_without_downloading(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a manifest pinned to another region than the job's
    manifest = _put_sample(runner_s3, region="us-east-1")
    scratch = tmp_path / "scratch"

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, scratch)

    # Then it stops with code 3 and one line naming both regions, having downloaded and written nothing
    assert exit_code == 3
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "us-east-1" in error
    assert REGION in error
    assert not scratch.exists()
    assert _keys(runner_s3, "results", "results/") == []


def test_runner_size_mismatch_exits_4(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a FASTQ overwritten with other content after its manifest was written
    manifest = _put_sample(runner_s3)
    changed = next(iter(FASTQS))
    runner_s3.put_object(Bucket="ingest", Key=changed, Body=_gz(b"@longer\nACGTACGT\n+\nIIIIIIII\n"))

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then it stops with code 4 before running DRAGEN, naming the object, in one line
    assert exit_code == 4
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert changed in error
    assert "changed since the manifest was written" in error
    # and the only thing written is the FAILED result file, without outputs
    result = _result(runner_s3, manifest)
    assert (result["status"], result["runner_exit_code"], result["outputs"]) == ("FAILED", 4, [])
    assert _keys(runner_s3, "results", "results/") == [manifest.result_uri("local", 1).removeprefix("s3://results/")]


def test_runner_missing_fastq_exits_4(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a FASTQ of the manifest that is no longer on S3
    manifest = _put_sample(runner_s3)
    missing = list(FASTQS)[-1]
    runner_s3.delete_object(Bucket="ingest", Key=missing)

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then it stops with code 4, naming the object
    assert exit_code == 4
    assert missing in capsys.readouterr().err


def test_runner_missing_dragen_exits_2(runner_s3, tmp_path, monkeypatch, capsys):
    # Given no DRAGEN_BIN and no dragen on PATH
    manifest = _put_sample(runner_s3)
    monkeypatch.delenv("DRAGEN_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    scratch = tmp_path / "scratch"

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, scratch)

    # Then it stops with code 2 and a clear line, before downloading anything
    assert exit_code == 2
    assert "DRAGEN binary not found" in capsys.readouterr().err
    assert not scratch.exists()


def test_runner_unsupported_modality_exits_2(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a manifest routed to a modality the runner cannot run yet
    manifest = _put_sample(runner_s3, modality="rna-seq")

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then it stops with code 2, naming the modality, before downloading anything
    assert exit_code == 2
    assert "'rna-seq' is not supported" in capsys.readouterr().err
    assert not (tmp_path / "scratch").exists()


def test_runner_altered_manifest_exits_2(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a manifest edited after it was written (a size changed, its content hash not)
    manifest = _put_sample(runner_s3)
    data = json.loads(manifest.to_json())
    data["files"][0]["size"] += 1
    runner_s3.put_object(Bucket="results", Key=manifest.manifest_key, Body=json.dumps(data))

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then it refuses it with code 2 and one line, no traceback
    assert exit_code == 2
    error = capsys.readouterr().err
    assert "altered" in error
    assert "Traceback" not in error


def test_runner_missing_manifest_exits_2(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a manifest URI with nothing behind it
    uri = "s3://results/manifests/nope/manifest.json"

    # When the runner runs it
    exit_code = _run(uri, tmp_path / "scratch")

    # Then it stops with code 2, naming the URI
    assert exit_code == 2
    assert uri in capsys.readouterr().err


def test_runner_stages_reference_prefix_with_relative_paths(runner_s3, runner_dragen, tmp_path):
    # Given a reference prefix with a nested file, next to another reference sharing its name's start
    manifest = _put_sample(runner_s3, reference_uri="s3://refs/hg38")
    scratch = tmp_path / "scratch"

    # When the runner runs it, keeping scratch
    assert _run(manifest.manifest_uri, scratch, "--keep-scratch") == 0

    # Then the reference was staged under ref/ with its relative paths, and nothing of hg38-alt
    workdir = scratch / manifest.run_id / manifest.sample_id / manifest.version
    staged = sorted(p.relative_to(workdir / "ref").as_posix() for p in (workdir / "ref").rglob("*") if p.is_file())
    assert staged == ["anchored_rna/ref_index.bin", "hash_table.cfg"]
    assert (workdir / "ref" / "anchored_rna" / "ref_index.bin").read_bytes() == REFERENCE[
        "hg38/anchored_rna/ref_index.bin"
    ]
    # and the fastq list points at the local FASTQs
    csv_text = (workdir / "fastq_list.csv").read_text()
    assert csv_text == manifest.fastq_list_csv(uri_of=lambda f: str(workdir / "fastq" / Path(f.key).name))


def test_runner_uses_local_manifest_and_reference_in_place(runner_s3, runner_dragen, tmp_path):
    # Given a local reference directory and the manifest as a local file
    reference = tmp_path / "hg38"
    reference.mkdir()
    (reference / "hash_table.cfg").write_text("reference_name = hg38\n")
    manifest = _put_sample(runner_s3, reference_uri=str(reference))
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(manifest.to_json())
    scratch = tmp_path / "scratch"

    # When the runner runs it, keeping scratch
    exit_code = _run(str(manifest_file), scratch, "--keep-scratch")

    # Then DRAGEN read the reference where it is: nothing was copied to ref/
    assert exit_code == 0
    result = _result(runner_s3, manifest)
    assert result["command"][result["command"].index("--ref-dir") + 1] == str(reference)
    assert not (scratch / manifest.run_id / manifest.sample_id / manifest.version / "ref").exists()


def test_run_command_forwards_sigterm_to_engine():
    # Given an engine that makes Batch's stop signal (SIGTERM to the runner) arrive while it runs
    command = [
        sys.executable,
        "-c",
        "import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); time.sleep(30)",
    ]

    # When the runner runs it
    exit_code, started, finished, _ = job.run_command(command)

    # Then the signal reached the engine, which stopped at once, reported as 128 + SIGTERM
    assert exit_code == 128 + signal.SIGTERM
    assert (finished - started).total_seconds() < 10
