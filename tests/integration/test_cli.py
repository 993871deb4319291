"""The `seqlane` command as a user runs it: a fresh process, the embedded AWS, the real template, handlers, ASL,
runner and CPU engine. Nothing is faked."""

import json
import os
import subprocess
import sys

import pytest

from seqlane.demo.dataset import generate
from seqlane.runner.metrics import DUPLICATE_FREE_MAPPED_PCT, MAPPED_READS, TOTAL_INPUT_READS

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(tmp_path):
    """The user's environment, minus anything that could point at a real AWS account or another local stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEQLANE_", "DRAGEN_"))}
    env["SEQLANE_LOCAL_STATE"] = str(tmp_path / "state" / "local.json")
    return env


def seqlane(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "seqlane.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_demo_json_every_sample_succeeds_and_recalls_planted_variants(cli_env, tmp_path):
    # Given a fresh machine state (no background stack, no DRAGEN)
    # When the user runs the demo with a JSON summary
    result = seqlane(cli_env, "demo", "--json", "--workdir", tmp_path / "demo")

    # Then it exits 0 and stdout is one JSON summary
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_id"] == "241121_LH00123_0042_ADEMOXXXXX"
    assert summary["region"] == "eu-west-2"
    # And every sample ran on the CPU engine, succeeded, and found the planted variants with few false calls
    assert [s["status"] for s in summary["samples"]] == ["SUCCEEDED"] * 3
    for sample in summary["samples"]:
        assert sample["engine"] == "cpu"
        assert sample["error"] is None
        assert sample["concordance"]["recall"] >= 0.95, sample
        assert sample["concordance"]["precision"] >= 0.95, sample
        assert {TOTAL_INPUT_READS, MAPPED_READS, DUPLICATE_FREE_MAPPED_PCT} <= set(sample["metrics"])
        assert any(uri.endswith(".hard-filtered.vcf.gz") for uri in sample["outputs"])
        assert (tmp_path / "demo" / "outputs" / sample["sample_id"] / f"{sample['sample_id']}.bam").is_file()
    assert summary["concordance"]["recall"] >= 0.95
    # And one AnalysisSucceeded per sample reached the bus, despite duplicated upload events
    assert summary["events"] == ["AnalysisSucceeded"] * 3
    assert summary["dead_letters"] == 0


def test_cli_local_run_reports_incomplete_and_ignored_files_and_copies_outputs(cli_env, tmp_path):
    # Given an Illumina run folder with two samples, one of them missing its lane-2 R2, and a stray file
    dataset = generate(tmp_path / "data", seed=11, samples=("Tumour_A.1", "Normal-B"), genome_length=6000)
    dataset.fastq("Normal-B", 2, 2).unlink()
    (dataset.run_dir / "notes.txt").write_text("uploaded by hand\n")
    out = tmp_path / "out"

    # When the user runs it with its reference
    result = seqlane(
        cli_env, "local", "run", dataset.run_dir, "--reference", dataset.reference_fasta, "--out", out, "--json"
    )

    # Then the complete sample succeeded (exit 0: an incomplete sample is reported, not a failure)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    by_id = {s["sample_id"]: s for s in summary["samples"]}
    assert by_id["Tumour_A.1"]["status"] == "SUCCEEDED"
    assert (out / "Tumour_A.1" / "Tumour_A.1.hard-filtered.vcf.gz").is_file()
    # And the incomplete one says what is missing, and got no manifest
    assert by_id["Normal-B"]["status"] == "INCOMPLETE"
    assert "L002 R2" in by_id["Normal-B"]["error"]
    assert by_id["Normal-B"]["manifest_uri"] is None
    # And the stray file is reported with its reason
    ignored = {entry["key"]: entry["reason"] for entry in summary["ignored"]}
    assert f"{dataset.run_id}/notes.txt" in ignored
    assert sorted(summary["events"]) == ["AnalysisSucceeded", "FileIgnored"]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp: ["local", "run", tmp / "no-such-run"], "does not exist"),
        (lambda tmp: ["local", "run", tmp], "no Illumina-named FASTQs"),
        (
            lambda tmp: ["local", "run", tmp, "--reference", tmp / "missing.fa"],
            "cannot read reference",
        ),
    ],
    ids=["missing-folder", "no-fastqs", "unreadable-reference"],
)
def test_cli_local_run_refuses_bad_input_with_one_line(cli_env, tmp_path, make_args, message):
    # Given a bad run folder or reference (a folder with one FASTQ for the reference case)
    (tmp_path / "S1_S1_L001_R1_001.fastq.gz").write_bytes(b"")
    if message == "no Illumina-named FASTQs":
        (tmp_path / "S1_S1_L001_R1_001.fastq.gz").unlink()
        (tmp_path / "SampleSheet.csv").write_text("[Header]\n")

    # When the user runs it
    result = seqlane(cli_env, *make_args(tmp_path), timeout=60)

    # Then the exit status is 2 and stderr is one line saying what is wrong, and nothing started
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqlane: error:") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_cli_local_up_keeps_a_stack_that_runs_target_until_down(cli_env, tmp_path):
    # Given a background stack
    up = seqlane(cli_env, "local", "up", timeout=120)
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "state" / "local.json").read_text())
    try:
        assert state["endpoint"].startswith("http://127.0.0.1:")
        dataset = generate(tmp_path / "data", seed=3, samples=("S1",), lanes=(1,), genome_length=4000)

        # When two runs target it one after the other (the second is the same run again, found by AWS_ENDPOINT_URL)
        first = seqlane(cli_env, "local", "run", dataset.run_dir, "--reference", dataset.reference_fasta, "--local")
        by_endpoint = {**cli_env, "AWS_ENDPOINT_URL": state["endpoint"]}
        again = seqlane(by_endpoint, "local", "run", dataset.run_dir, "--json")

        # Then the first ran the sample, and the stack kept its state: the same sample version is not run twice
        assert first.returncode == 0, first.stderr
        assert "SUCCEEDED" in first.stdout
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        assert [s["status"] for s in summary["samples"]] == ["SUCCEEDED"]
        assert summary["events"] == []
    finally:
        # And `down` stops it and removes its state
        down = seqlane(cli_env, "local", "down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert not (tmp_path / "state" / "local.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(state["pid"], 0)


def test_cli_plan_json_lists_declared_samples_and_exits_zero(cli_env, tmp_path):
    # Given a demo run folder with one sample's lane-2 R2 missing
    dataset = generate(tmp_path / "data", seed=5, genome_length=4000)
    dataset.fastq("HG003-demo", 2, 2).unlink()

    # When it is planned
    result = seqlane(cli_env, "plan", dataset.run_dir, "--json", timeout=60)

    # Then stdout is the plan only: every sample of the sheet, the missing read named, nothing ignored
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    assert planned["run_id"] == dataset.run_id
    by_id = {s["sample_id"]: s for s in planned["samples"]}
    assert sorted(by_id) == sorted(dataset.sample_ids)
    assert by_id["HG003-demo"]["missing"] == ["L002 R2"] and not by_id["HG003-demo"]["complete"]
    assert all(by_id[s]["complete"] for s in ("HG002-demo", "NA12878-demo"))
    assert planned["ignored"] == []
