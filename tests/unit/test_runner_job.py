"""The job runner end to end on moto S3, with a fake `dragen` that checks its arguments like DRAGEN would."""

from __future__ import annotations

import errno
import gzip
import hashlib
import itertools
import json
import signal
import socket
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from seqlane.demo.dataset import generate
from seqlane.manifest import RESULT_FILE_NAME, FastqFile, Manifest, Route
from seqlane.runner import job, verify
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


# ---- reads accounted for: every input verified while it is staged, and reconciled with the engine's count

R1_L1, R2_L1 = list(FASTQS)[:2]


def _bodies(**replace: bytes) -> dict[str, bytes]:
    """The sample's gzipped FASTQs, with some replaced (by "r1_l1" / "r2_l1")."""
    bodies = {key: _gz(text) for key, (_, _, text) in FASTQS.items()}
    for name, body in replace.items():
        bodies[{"r1_l1": R1_L1, "r2_l1": R2_L1}[name]] = body
    return bodies


def _reads(count: int, mate: int) -> bytes:
    return b"".join(f"@r{i}/{mate}\nACGT\n+\nIIII\n".encode() for i in range(count))


def _bad_crc(gz: bytes) -> bytes:
    """The same gzip with one byte of its CRC-32 trailer flipped."""
    return gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:]


def _fails(runner_s3, manifest, scratch, capsys, code: int, *, job_id="local", attempt=1) -> tuple[str, dict]:
    """Run; assert the exit code and one line on stderr; return that line (without the prefix) and the result."""
    assert _run(manifest.manifest_uri, scratch) == code
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert error.startswith("seqlane-runner: error: ")
    assert "Traceback" not in error
    line = error.removeprefix("seqlane-runner: error: ").rstrip("\n")
    result = _result(runner_s3, manifest, job_id, attempt)
    assert (result["status"], result["error"], result["runner_exit_code"]) == ("FAILED", line, code)
    return line, result


def test_runner_truncated_mate_file_exits_5_naming_counts_and_files(runner_s3, runner_dragen, tmp_path, capsys):
    # Given lane 1's R2 holds fewer reads than its R1 (a mate file cut at a record boundary)
    manifest = _put_sample(runner_s3, bodies=_bodies(r1_l1=_gz(_reads(900, 1)), r2_l1=_gz(_reads(676, 2))))

    # When the runner runs it
    line, result = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_INPUT_INVALID)

    # Then one line names the sample, the lane, both counts and both files, and the engine never ran
    assert line == (f"{SAMPLE} L001: R1 has 900 reads, R2 has 676 (s3://ingest/{R1_L1}, s3://ingest/{R2_L1})")
    assert result["exit_code"] is None
    assert {i["key"]: i["reads"] for i in result["inputs"]}[R2_L1] == 676


def test_runner_checks_large_files_in_worker_processes(runner_s3, runner_dragen, tmp_path, capsys, monkeypatch):
    # Given every file counts as large enough for a worker process, and lane 1's R2 one read short
    monkeypatch.setattr(verify, "MIN_PROCESS_BYTES", 0)
    monkeypatch.setattr(job, "_verifier_processes", lambda files: 2)
    manifest = _put_sample(runner_s3, bodies=_bodies(r1_l1=_gz(_reads(5, 1)), r2_l1=_gz(_reads(4, 2))))

    # When the runner runs it, Then the counts came from the workers and the mates are refused as in place
    line, result = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_INPUT_INVALID)
    assert line.startswith(f"{SAMPLE} L001: R1 has 5 reads, R2 has 4")
    assert [i["reads"] for i in result["inputs"]] == [5, 4, 1, 1]


def test_check_mates_names_the_segment_of_split_fastqs():
    # Given a sample whose lane 1 is split in two segments, the second one's R2 short
    files = [FastqFile(key=f"s_L001_R{r}_00{g}.fastq.gz", lane=1, read=r, size=1, etag="e", segment=g)
             for g in (1, 2) for r in (1, 2)]  # fmt: skip
    manifest = Manifest("RUN", "HG002", "ingest", "results", Route("germline-wgs", "4.3.6", "s3://r/x", REGION),
                        tuple(files))  # fmt: skip
    reads = {f.key: 10 for f in files} | {"s_L001_R2_002.fastq.gz": 9}

    # Then the error names the segment
    with pytest.raises(job.RunnerError, match="HG002 L001 segment 002: R1 has 10 reads, R2 has 9"):
        job.check_mates(manifest, reads)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            _bad_crc(_gz(_reads(3, 1))),
            "corrupt gzip stream",
            id="bad_gzip_crc",
        ),
        pytest.param(_gz(_reads(30, 1))[:-12], "truncated gzip stream", id="truncated_gzip"),
        pytest.param(b"", "empty file (0 bytes)", id="zero_byte_lane"),
        pytest.param(_gz(b"Sample,Lane\nNA12878,1\n"), "header does not start with '@'", id="gzipped_text_not_fastq"),
        pytest.param(
            _gz(b"@r0/1\nACGT\n+\nIII\n"),
            "quality has 3 characters but the sequence has 4",
            id="quality_length_mismatch",
        ),
        pytest.param(_gz(b""), "holds no reads", id="gzip_with_zero_reads"),
    ],
)
def test_runner_invalid_input_exits_5_naming_the_file(runner_s3, runner_dragen, tmp_path, capsys, body, reason):
    # Given lane 1's R1 is not a whole, valid FASTQ
    manifest = _put_sample(runner_s3, bodies=_bodies(r1_l1=body))

    # When the runner runs it
    line, result = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_INPUT_INVALID)

    # Then one line names the file and what is wrong, the engine did not run and nothing else was written
    assert f"s3://ingest/{R1_L1}" in line
    assert reason in line
    assert result["exit_code"] is None
    assert result["outputs"] == []
    assert _keys(runner_s3, "results", "results/") == [manifest.result_uri("local", 1).removeprefix("s3://results/")]


def test_runner_file_replaced_after_manifest_same_size_exits_4(runner_s3, runner_dragen, tmp_path, capsys):
    # Given lane 1's R1 replaced after the manifest by other reads of exactly the same size
    manifest = _put_sample(runner_s3)
    original = _gz(FASTQS[R1_L1][2])
    candidates = (_gz(f"@r1/1\n{''.join(bases)}\n+\nIIII\n".encode()) for bases in itertools.product("ACGT", repeat=4))
    replacement = next(c for c in candidates if len(c) == len(original) and c != original)
    runner_s3.put_object(Bucket="ingest", Key=R1_L1, Body=replacement)

    # When the runner runs it
    line, _ = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_INPUT_CHANGED)

    # Then it is refused by its ETag, naming the file
    assert f"s3://ingest/{R1_L1} changed since the manifest was written" in line
    assert "ETag" in line


def test_runner_ora_inputs_checked_by_etag_only(runner_s3, runner_dragen, tmp_path, monkeypatch):
    # Given a sample delivered as ORA (which only DRAGEN decodes), and DRAGEN reporting 1234 input reads
    bodies = {key.replace(".fastq.gz", ".fastq.ora"): b"ORA\x00" + text for key, (_, _, text) in FASTQS.items()}
    manifest = _put_sample(runner_s3, bodies=bodies)
    monkeypatch.setenv("FAKE_DRAGEN_TOTAL_READS", "1234")

    # When the runner runs it
    assert _run(manifest.manifest_uri, tmp_path / "scratch") == 0

    # Then the inputs were staged by ETag without counting, and the engine's count is recorded as such
    result = _result(runner_s3, manifest)
    assert result["status"] == "SUCCEEDED"
    assert [i["reads"] for i in result["inputs"]] == [None] * 4
    assert result["reconciliation"] == {
        "staged_reads": None,
        "engine_reads": 1234,
        "ok": True,
        "detail": "engine count only: engine reports 1234 reads",
    }


def test_runner_ora_replaced_after_manifest_exits_4(runner_s3, runner_dragen, tmp_path, capsys):
    # Given an ORA input replaced after the manifest
    bodies = {key.replace(".fastq.gz", ".fastq.ora"): b"ORA\x00" + text for key, (_, _, text) in FASTQS.items()}
    manifest = _put_sample(runner_s3, bodies=bodies)
    key = next(iter(bodies))
    runner_s3.put_object(Bucket="ingest", Key=key, Body=b"ORA\x01" + FASTQS[R1_L1][2])

    # Then its ETag refuses it
    line, _ = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_INPUT_CHANGED)
    assert key in line


@pytest.mark.parametrize(
    ("reported", "detail"),
    [
        ("3", "staged 4 reads, engine reports 3"),
        ("NA", "staged 4 reads, engine metrics report no Total input reads"),
        ("1,2,3,4", "staged 4 reads, engine metrics unreadable"),
    ],
)
def test_runner_engine_count_not_reconciling_exits_9(
    runner_s3, runner_dragen, tmp_path, capsys, monkeypatch, reported, detail
):
    # Given DRAGEN succeeds but reports another Total input reads than was staged (or none, or unreadable metrics)
    manifest = _put_sample(runner_s3)
    monkeypatch.setenv("FAKE_DRAGEN_TOTAL_READS", reported)

    # When the runner runs it
    line, result = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_NOT_RECONCILED)

    # Then the analysis fails with both counts, its outputs still uploaded for diagnosis
    assert line.startswith(f"engine read count does not reconcile: {detail}")
    assert result["exit_code"] == 0
    assert result["reconciliation"]["ok"] is False
    assert result["reconciliation"]["staged_reads"] == 4
    assert [o["path"] for o in result["outputs"]] == EXPECTED_OUTPUTS


def test_runner_disk_full_while_staging_exits_7(runner_s3, runner_dragen, tmp_path, capsys, monkeypatch):
    # Given a scratch disk that fills up on the first write
    manifest = _put_sample(runner_s3)

    class FullDisk:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(job, "staging_file", lambda path: FullDisk())

    # When the runner runs it
    line, result = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_DISK_FULL)

    # Then it is its own failure (not the engine's), naming the file being staged
    assert line.startswith("disk full while staging s3://ingest/")
    assert "No space left on device" in line
    assert result["exit_code"] is None


def test_runner_unwritable_scratch_exits_6(runner_s3, runner_dragen, tmp_path, capsys):
    # Given a scratch path that cannot be a directory (a file stands where it would be)
    manifest = _put_sample(runner_s3)
    (tmp_path / "occupied").write_text("not a directory")

    # When the runner runs it
    line, _ = _fails(runner_s3, manifest, tmp_path / "occupied" / "scratch", capsys, job.EXIT_SCRATCH_UNWRITABLE)

    # Then one line says scratch is not writable, naming it
    assert line.startswith(f"scratch {tmp_path / 'occupied' / 'scratch'}")
    assert "not writable" in line


def test_runner_s3_unreachable_exits_8(runner_s3, runner_dragen, tmp_path, capsys, monkeypatch):
    # Given a local manifest and reference, and an S3 endpoint that refuses connections
    reference = tmp_path / "hg38"
    reference.mkdir()
    (reference / "hash_table.cfg").write_text("reference_name = hg38\n")
    manifest = _put_sample(runner_s3, reference_uri=str(reference))
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(manifest.to_json())
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")

    # When the runner runs it
    exit_code = _run(str(manifest_file), tmp_path / "scratch")

    # Then it fails with its own code and one line naming S3 and the object
    assert exit_code == job.EXIT_S3_UNREACHABLE
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("seqlane-runner: error: S3 unreachable for s3://ingest/")


def test_runner_output_already_written_exits_10_and_overwrites_nothing(runner_s3, runner_dragen, tmp_path, capsys):
    # Given another attempt already wrote the BAM at this attempt's prefix
    manifest = _put_sample(runner_s3)
    bam_key = manifest.attempt_uri("local", 1).removeprefix("s3://results/") + f"{SAMPLE}.bam"
    runner_s3.put_object(Bucket="results", Key=bam_key, Body=b"the other attempt's BAM")

    # When the runner runs it
    line, _ = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_OUTPUT_EXISTS)

    # Then it refuses to overwrite it
    assert line == f"s3://results/{bam_key} already exists: written by another attempt, not overwritten"
    assert runner_s3.get_object(Bucket="results", Key=bam_key)["Body"].read() == b"the other attempt's BAM"


def test_runner_result_file_already_written_exits_10(runner_s3, runner_dragen, tmp_path, capsys):
    # Given this job attempt's result file already exists (the same attempt run twice)
    manifest = _put_sample(runner_s3)
    key = manifest.result_uri("local", 1).removeprefix("s3://results/")
    runner_s3.put_object(Bucket="results", Key=key, Body=b'{"status": "SUCCEEDED"}')

    # When the runner runs it
    exit_code = _run(manifest.manifest_uri, tmp_path / "scratch")

    # Then it fails with one line and the existing result file is untouched
    assert exit_code == job.EXIT_OUTPUT_EXISTS
    error = capsys.readouterr().err
    assert error == f"seqlane-runner: error: s3://results/{key} already exists: written by another attempt, " \
        "not overwritten\n"  # fmt: skip
    assert runner_s3.get_object(Bucket="results", Key=key)["Body"].read() == b'{"status": "SUCCEEDED"}'


def test_runner_unexpected_exception_is_one_line_exit_70(runner_s3, runner_dragen, tmp_path, capsys, monkeypatch):
    # Given a bug that raises inside the job
    manifest = _put_sample(runner_s3)

    def broken(*_args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(job, "check_mates", broken)

    # When the runner runs it
    line, _ = _fails(runner_s3, manifest, tmp_path / "scratch", capsys, job.EXIT_UNEXPECTED)

    # Then it is one line with the type and message, not a traceback
    assert line == "unexpected RuntimeError: boom second line"


def test_runner_writes_under_batch_job_id_and_attempt(runner_s3, runner_dragen, tmp_path, monkeypatch):
    # Given the job runs as AWS Batch's attempt 3 of job abc-123
    manifest = _put_sample(runner_s3)
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "abc-123")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "3")

    # When the runner runs it
    assert _run(manifest.manifest_uri, tmp_path / "scratch") == 0

    # Then everything is under that attempt's own prefix, and the result file says which attempt it is
    prefix = f"results/{manifest.run_id}/{SAMPLE}/{manifest.version}/abc-123/3/"
    assert all(key.startswith(prefix) for key in _keys(runner_s3, "results", "results/"))
    result = _result(runner_s3, manifest, "abc-123", 3)
    assert (result["job_id"], result["attempt"]) == ("abc-123", 3)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_BATCH_JOB_ATTEMPT", "0"), ("AWS_BATCH_JOB_ATTEMPT", "two"), ("AWS_BATCH_JOB_ID", "../x")],
)
def test_runner_invalid_batch_attempt_is_usage_error(runner_s3, tmp_path, capsys, monkeypatch, variable, value):
    # Given an attempt or job id that cannot name an output folder
    manifest = _put_sample(runner_s3)
    monkeypatch.setenv(variable, value)

    # When the runner runs it, Then it is a usage error in one line naming the variable
    assert _run(manifest.manifest_uri, tmp_path / "scratch") == job.EXIT_USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert variable in error


def test_runner_help_documents_every_exit_code(capsys):
    # When the runner's help is printed, Then it lists every exit code of its own
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for code, meaning in job.EXIT_CODES.items():
        assert f"{code} {meaning}" in text


def test_runner_cpu_engine_count_reconciles_with_staging(runner_s3, tmp_path):
    # Given a demo sample (two lanes of real reads) on S3 and the CPU engine
    demo = generate(tmp_path / "demo", samples=("HG002",), lanes=(1, 2), read_pairs_per_lane=300)
    files = []
    for lane in (1, 2):
        for read in (1, 2):
            path = demo.fastq("HG002", lane, read)
            key = f"240101_RUN/{path.name}"
            etag = runner_s3.put_object(Bucket="ingest", Key=key, Body=path.read_bytes())["ETag"]
            files.append(FastqFile(key=key, lane=lane, read=read, size=path.stat().st_size, etag=etag.strip('"')))
    route = Route("germline-wgs", "4.3.6", str(demo.reference_fasta.parent), REGION)
    manifest = Manifest("240101_RUN", "HG002", "ingest", "results", route, tuple(files))
    runner_s3.put_object(Bucket="results", Key=manifest.manifest_key, Body=manifest.to_json())

    # When the runner runs it with the CPU engine
    assert _run(manifest.manifest_uri, tmp_path / "scratch", "--engine", "cpu") == 0

    # Then the engine's Total input reads is what staging counted: 2 lanes x 300 pairs x 2 mates
    result = _result(runner_s3, manifest)
    assert result["reconciliation"] == {
        "staged_reads": 1200,
        "engine_reads": 1200,
        "ok": True,
        "detail": "staged 1200 reads, engine reports 1200",
    }
    assert [i["reads"] for i in result["inputs"]] == [300] * 4
