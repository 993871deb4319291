"""The CPU engine end to end on the demo dataset, through the command line the runner would run."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

from seqlane.demo.dataset import generate
from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.runner.cpu import (
    BadInput,
    CpuEngine,
    MappingCounts,
    find_reference_fasta,
    mapping_metrics_rows,
    read_name,
)
from seqlane.runner.dragen import EngineError, JobPaths

SAMPLE = "NA12878-demo"


def _manifest(modality: str = "germline-wgs") -> Manifest:
    return Manifest(
        run_id="241121_LH00123_0042_ADEMOXXXXX",
        sample_id=SAMPLE,
        ingest_bucket="ingest",
        results_bucket="results",
        route=Route(modality=modality, dragen_version="4.3", reference_uri="/ref", region="eu-west-2"),
        files=(FastqFile(key=f"run/{SAMPLE}_S1_L001_R1_001.fastq.gz", lane=1, read=1, size=1, etag="a"),),
    )


def _job(tmp: Path, ref_dir: Path, read1: Path, read2: Path) -> JobPaths:
    paths = JobPaths(ref_dir=ref_dir, fastq_list=tmp / "fastq_list.csv", output_dir=tmp / "output", tmp_dir=tmp / "tmp")
    paths.output_dir.mkdir(parents=True)
    paths.tmp_dir.mkdir()
    paths.fastq_list.write_text(
        "RGID,RGSM,RGLB,Lane,Read1File,Read2File\n"
        f"DEMO.{SAMPLE}.1,{SAMPLE},{SAMPLE},1,{read1},{read2}\n"
        f"DEMO.other.1,other,other,1,/nowhere/R1.fastq.gz,/nowhere/R2.fastq.gz\n"
    )
    return paths


def _run(paths: JobPaths) -> subprocess.CompletedProcess:
    command = CpuEngine().command(_manifest(), paths)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo"), samples=(SAMPLE,), lanes=(1,))


@pytest.fixture(scope="module")
def engine_run(demo, tmp_path_factory):
    paths = _job(
        tmp_path_factory.mktemp("job"), demo.reference_fasta.parent, demo.fastq(SAMPLE, 1, 1), demo.fastq(SAMPLE, 1, 2)
    )
    proc = _run(paths)
    assert proc.returncode == 0, proc.stderr
    return paths


def test_cpu_command_takes_dragens_arguments():
    paths = JobPaths(Path("/j/ref"), Path("/j/fastq_list.csv"), Path("/j/output"), Path("/j/tmp"))
    command = CpuEngine().command(_manifest(), paths)
    assert command[:3] == [sys.executable, "-m", "seqlane.runner.cpu"]
    assert command[3:] == [
        "--ref-dir", "/j/ref",
        "--fastq-list", "/j/fastq_list.csv",
        "--fastq-list-sample-id", SAMPLE,
        "--output-directory", "/j/output",
        "--output-file-prefix", SAMPLE,
        "--intermediate-results-dir", "/j/tmp",
    ]  # fmt: skip
    assert CpuEngine().name == "cpu"


def test_cpu_command_refuses_unsupported_modality():
    paths = JobPaths(Path("/r"), Path("/f"), Path("/o"), Path("/t"))
    with pytest.raises(EngineError, match="not supported"):
        CpuEngine().command(_manifest("somatic-wgs"), paths)


def test_cpu_bam_is_sorted_indexed_with_read_group(engine_run, demo):
    bam_path = engine_run.output_dir / f"{SAMPLE}.bam"
    assert Path(f"{bam_path}.bai").is_file()
    with pysam.AlignmentFile(str(bam_path)) as bam:
        assert bam.header["HD"]["SO"] == "coordinate"
        assert bam.header["RG"] == [
            {"ID": f"DEMO.{SAMPLE}.1", "SM": SAMPLE, "LB": SAMPLE, "PL": "ILLUMINA", "PU": f"DEMO.{SAMPLE}.1"}
        ]
        assert bam.check_index()
        records = list(bam.fetch(until_eof=True))
    assert len(records) == 2 * demo.read_pairs_per_lane
    mapped = [r for r in records if not r.is_unmapped]
    assert len(mapped) / len(records) > 0.95
    positions = [(r.reference_id, r.reference_start) for r in mapped]
    assert positions == sorted(positions)
    assert sum(r.is_read1 for r in records) == sum(r.is_read2 for r in records) == demo.read_pairs_per_lane
    assert all(r.get_tag("RG") == f"DEMO.{SAMPLE}.1" for r in records)
    proper = [r for r in mapped if r.is_proper_pair]
    assert len(proper) / len(mapped) > 0.95
    sample = proper[0]
    assert sample.mapping_quality > 0
    assert sample.cigarstring
    assert sample.next_reference_start >= 0
    assert abs(sample.template_length) > 100
    assert sample.is_reverse != sample.mate_is_reverse


def test_cpu_vcf_recalls_the_planted_variants(engine_run, demo):
    vcf_path = engine_run.output_dir / f"{SAMPLE}.hard-filtered.vcf.gz"
    assert Path(f"{vcf_path}.tbi").is_file()
    with pysam.VariantFile(str(demo.truth_vcf)) as truth_vcf:
        truth = {(r.pos, r.ref, r.alts[0]) for r in truth_vcf}
    with pysam.VariantFile(str(vcf_path)) as calls_vcf:
        assert list(calls_vcf.header.samples) == [SAMPLE]
        calls = {(r.pos, r.ref, r.alts[0]) for r in calls_vcf if list(r.filter) == ["PASS"]}
    snvs = {v for v in truth if len(v[1]) == len(v[2]) == 1}
    assert len(snvs & calls) / len(snvs) >= 0.9
    assert len(truth & calls) / len(calls) >= 0.9


def test_cpu_mapping_and_time_metrics_are_dragen_csv(engine_run, demo):
    with (engine_run.output_dir / f"{SAMPLE}.mapping_metrics.csv").open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows and all(len(row) in (4, 5) for row in rows)
    summary = {row[2]: row[3:] for row in rows if row[0] == "MAPPING/ALIGNING SUMMARY"}
    total = 2 * demo.read_pairs_per_lane
    assert summary["Total input reads"] == [str(total), "100.00"]
    assert int(summary["Mapped reads"][0]) / total > 0.95
    assert 0 <= int(summary["Number of duplicate marked reads"][0]) < total * 0.01
    assert float(summary["Number of unique & mapped reads (excl. duplicate marked reads)"][1]) > 95
    with (engine_run.output_dir / f"{SAMPLE}.time_metrics.csv").open(newline="") as stream:
        time_rows = list(csv.reader(stream))
    assert time_rows[-1][:3] == ["RUN TIME", "", "Total runtime"]
    assert len(time_rows[-1][3]) == len("00:00:01.234")
    assert float(time_rows[-1][4]) >= 0


def test_cpu_missing_reference_is_a_one_line_error(demo, tmp_path):
    empty_ref = tmp_path / "ref"
    empty_ref.mkdir()
    paths = _job(tmp_path, empty_ref, demo.fastq(SAMPLE, 1, 1), demo.fastq(SAMPLE, 1, 2))
    proc = _run(paths)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "genome.fa" in proc.stderr
    assert not list(paths.output_dir.iterdir())


def test_cpu_unreadable_reference_is_an_error(demo, tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "genome.fa").write_text("this is not a FASTA file\n")
    proc = _run(_job(tmp_path, ref, demo.fastq(SAMPLE, 1, 1), demo.fastq(SAMPLE, 1, 2)))
    assert proc.returncode == 2
    assert "could not be loaded" in proc.stderr


@pytest.mark.parametrize("fasta", [">chr1\n", ">chr1\nACGTACGTAC\n>chr2\n"], ids=["header-only", "one-record-empty"])
def test_cpu_reference_with_an_empty_sequence_is_a_one_line_error(demo, tmp_path, fasta):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "genome.fa").write_text(fasta)
    paths = _job(tmp_path, ref, demo.fastq(SAMPLE, 1, 1), demo.fastq(SAMPLE, 1, 2))
    proc = _run(paths)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "could not be loaded as a FASTA" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(paths.output_dir.iterdir())


def test_cpu_missing_fastq_is_an_error(demo, tmp_path):
    proc = _run(_job(tmp_path, demo.reference_fasta.parent, demo.fastq(SAMPLE, 1, 1), tmp_path / "gone.fastq.gz"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "gone.fastq.gz" in proc.stderr


def test_find_reference_fasta(tmp_path):
    (tmp_path / "hg.fasta").write_text(">c\nA\n")
    assert find_reference_fasta(tmp_path) == tmp_path / "hg.fasta"
    (tmp_path / "other.fa").write_text(">c\nA\n")
    with pytest.raises(BadInput, match="exactly one"):
        find_reference_fasta(tmp_path)
    (tmp_path / "genome.fa").write_text(">c\nA\n")
    assert find_reference_fasta(tmp_path) == tmp_path / "genome.fa"


def test_mapping_metrics_rows_percentages():
    counts = MappingCounts(total=200, mapped=190, with_mate=200, proper=180, mapped_r1=96, mapped_r2=94)
    counts.by_rg["rg1"] = [200, 190]
    rows = {row[2]: row[3:] for row in mapping_metrics_rows(counts, duplicates=10) if row[1] == ""}
    assert rows["Mapped reads"] == ["190", "95.00"]
    assert rows["Number of duplicate marked reads"] == ["10", "5.00"]
    assert rows["Number of unique & mapped reads (excl. duplicate marked reads)"] == ["180", "90.00"]


def _mates(tmp_path: Path, demo, edit) -> tuple[Path, Path]:
    """The demo's R1 as it is and its R2 with `edit` applied to the decompressed text."""
    read2 = tmp_path / f"{SAMPLE}_S1_L001_R2_001.fastq.gz"
    read2.write_bytes(gzip.compress(edit(gzip.decompress(demo.fastq(SAMPLE, 1, 2).read_bytes()))))
    return demo.fastq(SAMPLE, 1, 1), read2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda text: b"".join(text.splitlines(keepends=True)[:-4]), "ends after", id="R2_one_record_short"
        ),
        pytest.param(lambda text: text.replace(b"@", b"@other_", 1), "mate names differ", id="first_mate_names_differ"),
        pytest.param(lambda text: text[: len(text) // 2], "ends inside a record", id="R2_cut_mid_record"),
    ],
)
def test_cpu_engine_pairs_mates_strictly_and_fails_loudly(demo, tmp_path, edit, message):
    # Given an R2 that does not pair with its R1 record for record
    read1, read2 = _mates(tmp_path, demo, edit)

    # When the CPU engine runs on them
    proc = _run(_job(tmp_path, demo.reference_fasta.parent, read1, read2))

    # Then it fails with one line naming a file and what is wrong, never a quiet partial result
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert str(read2) in proc.stderr or str(read1) in proc.stderr


def test_cpu_engine_corrupt_gzip_fails_naming_the_file(demo, tmp_path):
    # Given an R2 whose gzip stream is cut short
    read2 = tmp_path / "cut_R2.fastq.gz"
    read2.write_bytes(demo.fastq(SAMPLE, 1, 2).read_bytes()[:-100])

    # When the CPU engine runs on it, Then it fails in one line naming the file
    proc = _run(_job(tmp_path, demo.reference_fasta.parent, demo.fastq(SAMPLE, 1, 1), read2))
    assert proc.returncode == 2
    assert proc.stderr == f"cpu engine: {read2}: truncated gzip stream" + proc.stderr.split("truncated gzip stream")[1]
    assert proc.stderr.count("\n") == 1


def test_read_name_ignores_mate_suffix_and_comment():
    # Illumina mates share the name before the comment, older ones differ only by /1 and /2
    assert read_name("A00123:8:H5:1:1101:1000:2000 1:N:0:ACGT") == read_name("A00123:8:H5:1:1101:1000:2000 2:N:0:ACGT")
    assert read_name("frag7/1") == read_name("frag7/2") == "frag7"
