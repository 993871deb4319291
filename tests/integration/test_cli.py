"""The `seqlane` command as a user runs it: a fresh process, the embedded AWS, the real template, handlers, ASL,
runner and CPU engine. Nothing is faked."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import ANY

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


# ---- local tooling that cannot hurt the machine
def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, arguments), from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            arguments = Path(f"/proc/{entry}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        table[int(entry)] = (int(stat.rpartition(")")[2].split()[1]), [a.decode(errors="replace") for a in arguments])
    return table


def _descendants_running(ancestor: int, marker: str) -> list[int]:
    """Processes descended from `ancestor` with `marker` in their arguments (e.g. `seqlane.runner`)."""
    table = _processes()

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = table.get(pid, (0, []))[0]
            if pid == ancestor:
                return True
        return False

    return [pid for pid, (_, arguments) in table.items() if any(marker in a for a in arguments) and descends(pid)]


def _processes_with_scratch_under(root: Path) -> list[int]:
    """Every live process (a job runner or what it started) whose job scratch lies under `root`, whoever its
    parent is now."""
    found = []
    for pid in _processes():
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(item.startswith(f"SEQLANE_SCRATCH={root}".encode()) for item in environment):
            found.append(pid)
    return found


def _host_processes_for(state: Path) -> list[int]:
    return [
        pid
        for pid, (_, arguments) in _processes().items()
        if "seqlane.local.host" in arguments and str(state) in arguments
    ]


@pytest.fixture
def unrelated_process():
    """A real process that has nothing to do with seqlane (`sleep 60`)."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_cli_local_down_with_a_stale_pid_never_kills_that_process(cli_env, tmp_path, unrelated_process):
    # Given a state file (as a host killed with -9 would leave) whose PID now belongs to an unrelated `sleep 60`
    state = tmp_path / "state" / "local.json"
    state.parent.mkdir(parents=True)
    stale = {"endpoint": "http://127.0.0.1:1", "region": "eu-west-2", "pid": unrelated_process.pid}
    state.write_text(json.dumps(stale))

    # When the user runs `down`
    down = seqlane(cli_env, "local", "down", timeout=60)

    # Then it succeeds, reporting the stale state file it removed, and the unrelated process still runs
    assert down.returncode == 0, down.stderr
    assert "stale state file" in down.stdout and f"pid {unrelated_process.pid}" in down.stdout, down.stdout
    assert not state.exists()
    assert unrelated_process.poll() is None


def test_cli_local_up_on_a_busy_port_fails_with_one_line_and_leaves_nothing(cli_env, tmp_path):
    # Given a port on 127.0.0.1 something listens on
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        # When the user starts a stack on it
        up = seqlane(cli_env, "local", "up", "--port", port, timeout=60)

    # Then it fails at once with one line naming the port, and leaves no process and no state file
    assert up.returncode == 1
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqlane: error:") and f"port {port}" in lines[0], up.stderr
    state = tmp_path / "state" / "local.json"
    assert not state.exists()
    assert _host_processes_for(state) == []


def test_cli_local_up_in_another_region_than_the_running_stack_refuses(cli_env, tmp_path):
    # Given a background stack in eu-west-2
    state = tmp_path / "state" / "local.json"
    up = seqlane(cli_env, "local", "up", timeout=120)
    assert up.returncode == 0, up.stderr
    running = json.loads(state.read_text())
    try:
        # When the user asks for one in us-east-1, then again in eu-west-2
        other = seqlane(cli_env, "local", "up", "--region", "us-east-1", timeout=60)
        same = seqlane(cli_env, "local", "up", "--region", "eu-west-2", timeout=60)

        # Then the first fails with one line naming both regions, the second says it already runs
        assert other.returncode == 1
        lines = other.stderr.strip().splitlines()
        assert len(lines) == 1 and "eu-west-2" in lines[0] and "us-east-1" in lines[0], other.stderr
        assert same.returncode == 0, same.stderr
        assert "already running" in same.stdout
        # And the running stack is untouched: same process, same state
        assert json.loads(state.read_text()) == running
        assert _host_processes_for(state) == [running["pid"]]
    finally:
        down = seqlane(cli_env, "local", "down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert _host_processes_for(state) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_local_run_interrupted_stops_its_runners_and_removes_scratch(cli_env, tmp_path, fake_dragen, signum):
    # Given a run whose jobs take 5 minutes (a DRAGEN that sleeps), with the command's temporary files in our folder
    dataset = generate(tmp_path / "data", seed=13, samples=("S1", "S2"), lanes=(1,), genome_length=4000)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    path = f"{fake_dragen.parent}{os.pathsep}{cli_env.get('PATH', '')}"  # `dragen` on PATH: the local executor's pick
    env = {**cli_env, "TMPDIR": str(temporary), "PATH": path, "FAKE_DRAGEN_SECONDS": "300"}
    command = ["local", "run", str(dataset.run_dir), "--reference", str(dataset.reference_fasta), "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "seqlane.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # When DRAGEN runs under a job runner, the command gets the signal
        deadline = time.monotonic() + 240
        engines: list[int] = []
        while not engines and process.poll() is None and time.monotonic() < deadline:
            engines = _descendants_running(process.pid, "dragen.py")
            time.sleep(0.05)
        assert engines, f"no DRAGEN seen (exit {process.poll()}): {process.communicate() if process.poll() else ''}"
        runners = _descendants_running(process.pid, "seqlane.runner")
        signalled = time.monotonic()
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=90)
        stopped_after = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Then it exits 128 + the signal number with one line, long before the jobs would have ended, with no summary
    assert process.returncode == 128 + signum, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {signal.Signals(signum).name}" in lines[0], stderr
    assert stdout == ""
    assert stopped_after < 60
    # And no runner or engine it started is left, not even reparented, and its scratch folder is gone
    assert runners
    assert [pid for pid in runners + engines if Path(f"/proc/{pid}").exists()] == []
    assert _processes_with_scratch_under(temporary) == []
    assert list(temporary.iterdir()) == []


def test_cli_local_run_keeps_url_special_characters_in_run_folder_and_file_names(cli_env, tmp_path):
    # Given a run folder named with a space, "+", "%" and "é", holding a sidecar with "&", "=", "?", "#" and "+%20"
    dataset = generate(tmp_path / "data", seed=17, samples=("S1",), lanes=(1,), genome_length=4000)
    run_dir = dataset.run_dir.rename(dataset.run_dir.with_name("241121 run+1% é"))
    (run_dir / "notes & QC=1?#2 é+%20.txt").write_text("by hand\n")

    # When the user runs it (uploads shuffled, some events delivered twice)
    result = seqlane(cli_env, "local", "run", run_dir, "--reference", dataset.reference_fasta, "--json", "--seed", 3)

    # Then the run id, the sample's manifest and the ignored sidecar keep their names exactly
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_id"] == "241121 run+1% é"
    [sample] = summary["samples"]
    assert sample["status"] == "SUCCEEDED", sample
    assert "/manifests/241121 run+1% é/S1/" in sample["manifest_uri"]
    assert summary["ignored"] == [{"key": "241121 run+1% é/notes & QC=1?#2 é+%20.txt", "reason": ANY}]


def _truncate_mate(path: Path, keep_reads: int) -> None:
    """Rewrite a gzipped FASTQ with only its first `keep_reads` records (a mate file cut short)."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    path.write_bytes(gzip.compress("".join(lines[: 4 * keep_reads]).encode(), mtime=0))


def _break_crc(path: Path) -> None:
    """Flip a bit of the gzip trailer's CRC32: every byte inflates, the check at the end fails."""
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x01
    path.write_bytes(bytes(data))


def test_cli_local_run_fails_each_faulty_sample_naming_its_file_and_exits_one(cli_env, tmp_path):
    # Given a run folder of five samples on one lane: one good, and one per fault (R2 cut short, a bad gzip CRC, a
    # zero-byte R1, and two files claiming one slot under two S-numbers)
    samples = ("Good", "Truncated", "Corrupt", "Empty", "Clash")
    dataset = generate(tmp_path / "data", seed=19, samples=samples, lanes=(1,), genome_length=4000)
    _truncate_mate(dataset.fastq("Truncated", 1, 2), keep_reads=dataset.read_pairs_per_lane - 7)
    _break_crc(dataset.fastq("Corrupt", 1, 1))
    dataset.fastq("Empty", 1, 1).write_bytes(b"")
    second_claim = dataset.run_dir / "Clash_S9_L001_R1_001.fastq.gz"
    second_claim.write_bytes(dataset.fastq("Clash", 1, 1).read_bytes())

    def key(path: Path) -> str:
        return f"{dataset.run_id}/{path.name}"

    # When the user runs it
    result = seqlane(cli_env, "local", "run", dataset.run_dir, "--reference", dataset.reference_fasta, "--json")

    # Then it exits 1, and every faulty sample ended FAILED or CONFLICT with a cause that names its file
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    by_id = {s["sample_id"]: s for s in summary["samples"]}
    assert by_id["Good"]["status"] == "SUCCEEDED", by_id["Good"]
    expected = {
        "Truncated": ("FAILED", [key(dataset.fastq("Truncated", 1, 2)), "R2 has"]),
        "Corrupt": ("FAILED", [key(dataset.fastq("Corrupt", 1, 1))]),
        "Empty": ("FAILED", [key(dataset.fastq("Empty", 1, 1)), "empty file"]),
        "Clash": ("CONFLICT", [key(dataset.fastq("Clash", 1, 1)), key(second_claim)]),
    }
    for sample_id, (status, named) in expected.items():
        sample = by_id[sample_id]
        assert sample["status"] == status, sample
        assert all(text in sample["error"] for text in named), sample
    # And every uploaded file is accounted for (in a manifest, ignored, or in conflict), and nothing was re-analysed
    assert summary["accounting"]["balanced"] is True, summary["accounting"]
    # (the sheet declares Clash on lane 1: it may start before the second claim arrives; then only the two claims of
    # the slot are in conflict, its R2 stays in its manifest, else all three of its files are held)
    started = by_id["Clash"]["manifest_uri"] is not None
    assert summary["accounting"]["in_conflict"] == (2 if started else 3), (summary["accounting"], by_id["Clash"])
    assert summary["rerun"] == []


def test_cli_local_run_again_reanalyses_the_failed_sample_and_runs_the_fixed_file_as_a_new_version(cli_env, tmp_path):
    # Given a background stack, and a run whose reference has no sequence (the engine fails) and whose sample
    # "Cut" has an R2 cut short
    up = seqlane(cli_env, "local", "up", timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        dataset = generate(tmp_path / "data", seed=23, samples=("Ref", "Cut"), lanes=(1,), genome_length=4000)
        cut = dataset.fastq("Cut", 1, 2)
        whole = cut.read_bytes()
        _truncate_mate(cut, keep_reads=dataset.read_pairs_per_lane - 3)
        empty_reference = tmp_path / "empty.fa"
        empty_reference.write_text(">chr1\n")
        first = seqlane(cli_env, "local", "run", dataset.run_dir, "--reference", empty_reference, "--local", "--json")
        assert first.returncode == 1, first.stderr
        failed = {s["sample_id"]: s for s in json.loads(first.stdout)["samples"]}
        assert failed["Ref"]["status"] == failed["Cut"]["status"] == "FAILED", failed
        assert "R2 has" in failed["Cut"]["error"]

        # When the reference is fixed, the cut file is uploaded whole, and the same folder is run again
        cut.write_bytes(whole)
        again = seqlane(
            cli_env, "local", "run", dataset.run_dir, "--reference", dataset.reference_fasta, "--local", "--json"
        )
        tables = seqlane(cli_env, "local", "run", dataset.run_dir, "--local")
    finally:
        down = seqlane(cli_env, "local", "down", timeout=90)
    assert down.returncode == 0, down.stderr

    # Then both samples succeeded: the unchanged one re-analysed as attempt 2, the fixed one as its new version
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert [(s["sample_id"], s["status"]) for s in summary["samples"]] == [("Cut", "SUCCEEDED"), ("Ref", "SUCCEEDED")]
    [rerun] = summary["rerun"]
    assert (rerun["sample_id"], rerun["attempt"], rerun["previous_status"]) == ("Ref", 2, "FAILED")
    assert rerun["previous_reason"] and rerun["previous_reason"] in failed["Ref"]["error"]
    assert failed["Cut"]["manifest_uri"] != summary["samples"][0]["manifest_uri"]
    assert summary["accounting"]["balanced"] is True
    # And a third run finds nothing failed: it re-analyses nothing, and says where every file went
    assert tables.returncode == 0, tables.stderr
    assert "Re-analysed" not in tables.stdout
    assert "Accounted for: 4 uploaded = 4 in manifests + 0 ignored + 0 in conflict" in tables.stdout
