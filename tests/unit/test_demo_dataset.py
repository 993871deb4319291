"""The demo dataset: deterministic bytes, Illumina names, a truth set that matches the reference."""

from __future__ import annotations

import gzip
import hashlib
import itertools
from pathlib import Path

import pysam
import pytest

from seqlane.demo.dataset import (
    CONTIG,
    MIN_VARIANT_SPACING,
    N_INDELS,
    N_SNVS,
    RUN_ID,
    apply_variants,
    generate,
)
from seqlane.naming import parse_fastq_name


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo") / "out")


def test_demo_same_seed_gives_byte_identical_files(demo, tmp_path):
    again = generate(tmp_path / "again")
    assert _digests(again.root) == _digests(demo.root)
    assert len(_digests(demo.root)) == 2 + 2 + 3 * 2 * 2 + 2  # fa+fai, vcf+tbi, FASTQs, sheet+marker


def test_demo_other_seed_gives_other_data(demo, tmp_path):
    other = generate(tmp_path / "other", seed=8, samples=demo.sample_ids[:1], lanes=(1,), read_pairs_per_lane=10)
    assert other.reference_fasta.read_bytes() != demo.reference_fasta.read_bytes()


def test_demo_layout_and_names(demo):
    assert demo.run_id == RUN_ID
    assert demo.run_dir == demo.root / "run" / RUN_ID
    assert (demo.run_dir / "CopyComplete.txt").read_bytes() == b""
    fastqs = sorted(p.name for p in demo.run_dir.glob("*.fastq.gz"))
    assert len(fastqs) == 12
    parsed = [parse_fastq_name(name) for name in fastqs]
    assert {(p.sample_id, p.sample_number) for p in parsed} == {
        ("NA12878-demo", 1),
        ("HG002-demo", 2),
        ("HG003-demo", 3),
    }
    assert {(p.lane, p.read_number) for p in parsed} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    sheet = (demo.run_dir / "SampleSheet.csv").read_text().splitlines()
    assert sheet[:2] == ["[Header]", "FileFormatVersion,2"]
    data = sheet[sheet.index("[BCLConvert_Data]") + 1 :]
    assert data[0] == "Sample_ID,Lane,Index,Index2"
    assert [row.split(",")[:2] for row in data[1:]] == [[s, str(lane)] for s in demo.sample_ids for lane in (1, 2)]


def test_demo_reference_and_truth_agree(demo):
    fasta = pysam.FastaFile(str(demo.reference_fasta))
    assert list(fasta.references) == [CONTIG]
    assert list(fasta.lengths) == [30_000]
    genome = fasta.fetch(CONTIG)
    assert set(genome) == set("ACGT")

    with pysam.VariantFile(str(demo.truth_vcf)) as vcf:
        assert list(vcf.header.samples) == list(demo.sample_ids)
        records = list(vcf.fetch(CONTIG))  # fetch needs the .tbi
    assert [(r.pos, r.ref, r.alts[0]) for r in records] == [(v.pos, v.ref, v.alt) for v in demo.variants]
    snvs = [r for r in records if len(r.ref) == len(r.alts[0]) == 1]
    indels = [r for r in records if r not in snvs]
    assert (len(snvs), len(indels)) == (N_SNVS, N_INDELS)
    for record in records:
        assert genome[record.pos - 1 : record.pos - 1 + len(record.ref)] == record.ref
        assert record.ref != record.alts[0]
        assert all(record.samples[s]["GT"] == (1, 1) for s in demo.sample_ids)
        assert 300 <= record.pos <= len(genome) - 300
    for record in indels:
        assert record.ref[0] == record.alts[0][0]
        assert 1 <= abs(len(record.ref) - len(record.alts[0])) <= 3
    positions = [r.pos for r in records]
    assert min(b - a for a, b in itertools.pairwise(positions)) >= MIN_VARIANT_SPACING


def test_demo_reads_come_from_the_haplotype(demo):
    genome = pysam.FastaFile(str(demo.reference_fasta)).fetch(CONTIG)
    haplotype = apply_variants(genome, demo.variants)
    with gzip.open(demo.fastq("HG002-demo", 2, 1), "rt") as stream:
        lines = stream.read().splitlines()
    assert len(lines) == 4 * demo.read_pairs_per_lane
    names, seqs, quals = lines[0::4], lines[1::4], lines[3::4]
    assert names[:2] == ["@HG002-demo:2:1", "@HG002-demo:2:2"]
    assert all(len(s) == 100 and set(s) <= set("ACGT") for s in seqs)
    assert all(q == "F" * 100 for q in quals)
    reverse = haplotype.translate(str.maketrans("ACGT", "TGCA"))[::-1]
    exact = sum(s in haplotype or s in reverse for s in seqs[:300])
    assert exact >= 0.8 * 300  # 0.1% errors: ~90% of reads are exact copies


def test_demo_is_small_with_about_30x_per_sample(demo):
    total = sum(p.stat().st_size for p in demo.root.rglob("*") if p.is_file())
    assert total < 5_000_000
    assert demo.read_pairs_per_lane * 2 * 2 * 100 / 30_000 == pytest.approx(30, abs=1)


def test_dataset_plants_fewer_variants_on_a_short_genome(tmp_path):
    # Given a genome too short for the full set of planted variants
    # When the dataset is generated
    dataset = generate(tmp_path, seed=3, samples=("S1",), lanes=(1,), genome_length=4000)

    # Then it finishes with fewer variants, still spaced apart, instead of searching forever
    assert 1 <= len(dataset.variants) < 36
    positions = [v.pos for v in dataset.variants]
    assert all(b - a >= 300 for a, b in itertools.pairwise(positions))
