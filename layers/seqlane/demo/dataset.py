"""A deterministic demo dataset: a random reference, planted truth variants and a simulated Illumina run.

`generate(out_dir)` writes, under out_dir:

    reference/genome.fa (+ .fai)           one contig "chrDemo" of random ACGT
    truth.vcf.gz (+ .tbi)                  planted SNVs and 1-3 bp indels, every sample 1/1
    run/<RUN_ID>/<sample>_S<n>_L00<lane>_R<1|2>_001.fastq.gz, SampleSheet.csv, CopyComplete.txt

The same arguments always give byte-identical files (seeded `random.Random`, gzip mtime 0, BGZF).
Run it as `python -m seqlane.demo.dataset OUT_DIR [--seed N]`.
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pysam

CONTIG = "chrDemo"
RUN_ID = "241121_LH00123_0042_ADEMOXXXXX"
DEFAULT_SAMPLES = ("NA12878-demo", "HG002-demo", "HG003-demo")
READ_LENGTH = 100
FRAGMENT_MEAN, FRAGMENT_SD = 300, 30
ERROR_RATE = 0.001
QUALITY = "F"  # Q37, the binned top quality of NovaSeq X reads
COVERAGE = 30  # per sample, across its lanes
N_SNVS, N_INDELS = 30, 6
MIN_VARIANT_SPACING = 300
END_MARGIN = 500  # no variant this close to either contig end (coverage falls off there)
_BASES = "ACGT"
_MAX_SHIFT = 12  # how far a deletion may move right to become left-normalised
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
_INDEXES = ("ATTACTCGAT", "TCCGGAGAGA", "CGCTCATTGT", "GAGATTCCGC", "ATTCAGAAGG", "GAATTCGTTA")


@dataclass(frozen=True, slots=True)
class Variant:
    pos: int  # 1-based, VCF convention (indels include the anchor base)
    ref: str
    alt: str


@dataclass(frozen=True, slots=True)
class DemoDataset:
    root: Path
    reference_fasta: Path
    truth_vcf: Path
    run_dir: Path
    run_id: str
    sample_ids: tuple[str, ...]
    variants: tuple[Variant, ...]
    read_pairs_per_lane: int

    def fastq(self, sample_id: str, lane: int, read: int) -> Path:
        number = self.sample_ids.index(sample_id) + 1
        return self.run_dir / fastq_name(sample_id, number, lane, read)


def fastq_name(sample_id: str, number: int, lane: int, read: int) -> str:
    return f"{sample_id}_S{number}_L{lane:03d}_R{read}_001.fastq.gz"


def default_read_pairs_per_lane(genome_length: int, lanes: int, coverage: float = COVERAGE) -> int:
    return math.ceil(coverage * genome_length / (2 * READ_LENGTH * lanes))


def generate(
    out_dir: Path | str,
    seed: int = 7,
    *,
    samples: Sequence[str] = DEFAULT_SAMPLES,
    lanes: Sequence[int] = (1, 2),
    genome_length: int = 30_000,
    read_pairs_per_lane: int | None = None,
) -> DemoDataset:
    """Write the dataset under out_dir (created if needed) and return where everything is."""
    if genome_length < 2 * END_MARGIN + FRAGMENT_MEAN:
        raise ValueError(f"genome_length {genome_length} is too short for a demo genome")
    samples, lanes = tuple(samples), tuple(lanes)
    if not samples or not lanes:
        raise ValueError("the demo needs at least one sample and one lane")
    if read_pairs_per_lane is None:
        read_pairs_per_lane = default_read_pairs_per_lane(genome_length, len(lanes))
    root = Path(out_dir)
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not security

    genome = "".join(rng.choice(_BASES) for _ in range(genome_length))
    reference = root / "reference" / "genome.fa"
    reference.parent.mkdir(parents=True, exist_ok=True)
    lines = [genome[i : i + 60] for i in range(0, genome_length, 60)]
    reference.write_text(f">{CONTIG}\n" + "\n".join(lines) + "\n")
    pysam.faidx(str(reference))

    variants = plant_variants(genome, rng)
    truth = write_truth_vcf(root / "truth.vcf.gz", variants, genome_length, samples)
    haplotype = apply_variants(genome, variants)

    run_dir = root / "run" / RUN_ID
    run_dir.mkdir(parents=True, exist_ok=True)
    for number, sample in enumerate(samples, start=1):
        for lane in lanes:
            # str seeds are hashed with SHA-512: stable across runs and Python versions
            pair_rng = random.Random(f"{seed}:{sample}:{lane}")  # noqa: S311
            write_read_pairs(
                run_dir / fastq_name(sample, number, lane, 1),
                run_dir / fastq_name(sample, number, lane, 2),
                haplotype,
                pair_rng,
                read_pairs_per_lane,
                read_name_prefix=f"{sample}:{lane}",
            )
    write_sample_sheet(run_dir / "SampleSheet.csv", samples, lanes)
    (run_dir / "CopyComplete.txt").write_bytes(b"")
    return DemoDataset(
        root=root,
        reference_fasta=reference,
        truth_vcf=truth,
        run_dir=run_dir,
        run_id=RUN_ID,
        sample_ids=samples,
        variants=variants,
        read_pairs_per_lane=read_pairs_per_lane,
    )


_VARIANT_SPACING = MIN_VARIANT_SPACING + _MAX_SHIFT + 3


def _room_for_variants(genome_length: int) -> int:
    """Random placement jams well before the densest packing: at most half of it."""
    room = (genome_length - 2 * END_MARGIN) // (2 * _VARIANT_SPACING)
    if room < 1:
        raise ValueError(f"a {genome_length} bp genome has no room for a planted variant")
    return room


def _spaced_positions(genome_length: int, total: int, rng: random.Random) -> list[int]:
    positions: list[int] = []  # 0-based
    for _ in range(1000 * total):
        candidate = rng.randrange(END_MARGIN, genome_length - END_MARGIN)
        if all(abs(candidate - p) >= _VARIANT_SPACING for p in positions):
            positions.append(candidate)
            if len(positions) == total:
                return positions
    raise RuntimeError(f"could not place {total} variants {_VARIANT_SPACING} bp apart")


def plant_variants(genome: str, rng: random.Random) -> tuple[Variant, ...]:
    """N_SNVS SNVs and N_INDELS indels (fewer, in proportion, on a genome too short for them), spaced apart, each
    left-normalised (not shiftable) so callers agree."""
    total = min(N_SNVS + N_INDELS, _room_for_variants(len(genome)))
    positions = _spaced_positions(len(genome), total, rng)
    indel_slots = set(rng.sample(range(len(positions)), round(total * N_INDELS / (N_SNVS + N_INDELS))))
    variants = []
    for slot, pos in enumerate(positions):
        base = genome[pos]
        if slot not in indel_slots:
            variants.append(Variant(pos + 1, base, rng.choice([b for b in _BASES if b != base])))
            continue
        size = rng.randint(1, 3)
        if rng.random() < 0.5:  # deletion of genome[start+1 : start+1+size]; not left-shiftable if the ends differ
            start = pos
            for _ in range(_MAX_SHIFT):  # almost always 0-2 steps in random sequence
                if genome[start] != genome[start + size]:
                    break
                start += 1
            else:
                size = 1
                while genome[start] == genome[start + size]:
                    start += 1
            variants.append(Variant(start + 1, genome[start : start + 1 + size], genome[start]))
        else:  # insertion after genome[pos]; not left-shiftable if its last base differs from the anchor
            inserted = "".join(rng.choice(_BASES) for _ in range(size - 1))
            inserted += rng.choice([b for b in _BASES if b != genome[pos]])
            variants.append(Variant(pos + 1, genome[pos], genome[pos] + inserted))
    return tuple(sorted(variants, key=lambda v: v.pos))


def apply_variants(genome: str, variants: Sequence[Variant]) -> str:
    pieces, cursor = [], 0
    for variant in sorted(variants, key=lambda v: v.pos):
        start = variant.pos - 1
        assert genome[start : start + len(variant.ref)] == variant.ref, variant
        pieces += [genome[cursor:start], variant.alt]
        cursor = start + len(variant.ref)
    pieces.append(genome[cursor:])
    return "".join(pieces)


def write_truth_vcf(path: Path, variants: Sequence[Variant], genome_length: int, samples: Sequence[str]) -> Path:
    header = [
        "##fileformat=VCFv4.2",
        "##source=seqlane.demo.dataset",
        f"##contig=<ID={CONTIG},length={genome_length}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    body = [
        "\t".join([CONTIG, str(v.pos), ".", v.ref, v.alt, ".", "PASS", ".", "GT", *(["1/1"] * len(samples))])
        for v in variants
    ]
    plain = path.with_suffix("")  # truth.vcf
    plain.write_text("\n".join(header + body) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


def write_read_pairs(
    read1: Path,
    read2: Path,
    haplotype: str,
    rng: random.Random,
    pairs: int,
    *,
    read_name_prefix: str,
) -> None:
    """Paired 2x100 reads from uniform fragment positions, either strand first, ERROR_RATE substitutions."""
    reverse = haplotype.translate(_COMPLEMENT)[::-1]
    length = len(haplotype)
    quality = QUALITY * READ_LENGTH
    records1, records2 = [], []
    for n in range(1, pairs + 1):
        fragment = max(READ_LENGTH, min(round(rng.gauss(FRAGMENT_MEAN, FRAGMENT_SD)), length))
        start = rng.randrange(0, length - fragment + 1)
        end = start + fragment
        forward_read = haplotype[start : start + READ_LENGTH]
        reverse_read = reverse[length - end : length - end + READ_LENGTH]
        first, second = (forward_read, reverse_read) if rng.random() < 0.5 else (reverse_read, forward_read)
        name = f"@{read_name_prefix}:{n}"
        records1.append(f"{name}\n{_with_errors(first, rng)}\n+\n{quality}\n")
        records2.append(f"{name}\n{_with_errors(second, rng)}\n+\n{quality}\n")
    _write_gzip(read1, "".join(records1))
    _write_gzip(read2, "".join(records2))


def _with_errors(read: str, rng: random.Random) -> str:
    """Substitute each base with probability ERROR_RATE (geometric gaps: one draw per error, not per base)."""
    bases = None
    position = -1
    log_keep = math.log1p(-ERROR_RATE)
    while True:
        position += 1 + int(math.log(1.0 - rng.random()) / log_keep)
        if position >= len(read):
            break
        bases = bases or list(read)
        bases[position] = rng.choice([b for b in _BASES if b != bases[position]])
    return "".join(bases) if bases else read


def _write_gzip(path: Path, text: str) -> None:
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as out:
        out.write(text.encode())


def write_sample_sheet(path: Path, samples: Sequence[str], lanes: Sequence[int]) -> None:
    lines = [
        "[Header]",
        "FileFormatVersion,2",
        f"RunName,{RUN_ID}",
        "InstrumentPlatform,NovaSeqXSeries",
        "InstrumentType,NovaSeqXPlus",
        "",
        "[Reads]",
        f"Read1Cycles,{READ_LENGTH}",
        f"Read2Cycles,{READ_LENGTH}",
        "Index1Cycles,10",
        "Index2Cycles,10",
        "",
        "[BCLConvert_Settings]",
        "SoftwareVersion,4.2.7",
        "FastqCompressionFormat,gzip",
        "",
        "[BCLConvert_Data]",
        "Sample_ID,Lane,Index,Index2",
    ]
    for number, sample in enumerate(samples):
        index = _INDEXES[number % len(_INDEXES)]
        index2 = _INDEXES[(number + 3) % len(_INDEXES)]
        lines += [f"{sample},{lane},{index},{index2}" for lane in lanes]
    path.write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlane.demo.dataset", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--read-pairs-per-lane", type=int, default=None)
    args = parser.parse_args(argv)
    dataset = generate(args.out_dir, seed=args.seed, read_pairs_per_lane=args.read_pairs_per_lane)
    print(f"demo run {dataset.run_id}: {len(dataset.sample_ids)} samples in {dataset.run_dir}")
    print(f"reference {dataset.reference_fasta}, truth {dataset.truth_vcf} ({len(dataset.variants)} variants)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
