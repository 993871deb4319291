"""The CPU engine: minimap2 (mappy) + samtools/bcftools (pysam) behind DRAGEN's command line and output names.

`CpuEngine.command` gives the same arguments as `DragenEngine.command`, run as `python -m seqlane.runner.cpu`,
and the outputs carry DRAGEN's names, so the runner and everything downstream work whatever the engine:

    <prefix>.bam, <prefix>.bam.bai             coordinate-sorted, duplicate-marked (samtools markdup), read groups
    <prefix>.hard-filtered.vcf.gz (+ .tbi)     bcftools call -mv; FILTER is PASS or LowQual (QUAL < 20)
    <prefix>.mapping_metrics.csv                DRAGEN's CSV rows (MAPPING/ALIGNING SUMMARY / PER RG)
    <prefix>.time_metrics.csv                   RUN TIME rows, ending with Total runtime

The reference is a FASTA in --ref-dir (genome.fa, else its only *.fa / *.fasta); only primary alignments are
written (no secondary or supplementary records). Mates are paired strictly (same number of records, same names
modulo /1 /2 and the comment) and every FASTQ is read through the runner's checks (`seqlane.runner.fastq`), so a
bad stream fails the engine with one line naming the file. Exit codes: 0 success, 2 bad input, 1 a tool failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from seqlane.manifest import Manifest
from seqlane.runner.dragen import GERMLINE_WGS, EngineError, JobPaths, job_arguments
from seqlane.runner.fastq import InvalidInput, read_records

if TYPE_CHECKING:
    import mappy  # the cpu extra, imported where the engine runs

EXIT_TOOL_FAILED = 1
EXIT_BAD_INPUT = 2
MIN_QUAL = 20  # calls below it are kept with FILTER LowQual, as DRAGEN keeps its filtered calls
MAX_PROPER_INSERT = 1000
_SUPPORTED_MODALITIES = (GERMLINE_WGS,)
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


@dataclass(frozen=True, slots=True)
class CpuEngine:
    python: str = sys.executable
    name: str = "cpu"

    def command(self, manifest: Manifest, paths: JobPaths) -> list[str]:
        if manifest.route.modality not in _SUPPORTED_MODALITIES:
            supported = ", ".join(_SUPPORTED_MODALITIES)
            raise EngineError(f"modality {manifest.route.modality!r} is not supported (supported: {supported})")
        return [self.python, "-m", "seqlane.runner.cpu", *job_arguments(manifest, paths)]


class BadInput(Exception):
    """The inputs cannot be used: one line for stderr, exit 2."""


def find_reference_fasta(ref_dir: Path) -> Path:
    """genome.fa in ref_dir, else the single FASTA file there."""
    if not ref_dir.is_dir():
        raise BadInput(f"reference directory {ref_dir} does not exist")
    preferred = ref_dir / "genome.fa"
    if preferred.is_file():
        return preferred
    candidates = sorted(p for p in ref_dir.iterdir() if p.is_file() and p.suffix in _FASTA_SUFFIXES)
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise BadInput(
            f"need genome.fa or exactly one *.fa/*.fasta file in {ref_dir} for the CPU engine (found: {found})"
        )
    return candidates[0]


@dataclass(frozen=True, slots=True)
class ReadGroup:
    rgid: str
    sample: str
    library: str
    lane: str
    read1: Path
    read2: Path | None


def read_fastq_list(path: Path, sample_id: str) -> list[ReadGroup]:
    try:
        with path.open(newline="") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as err:
        raise BadInput(f"cannot read fastq list {path}: {err}") from err
    groups = []
    for row in rows:
        if row.get("RGSM") != sample_id:
            continue
        read1, read2 = row.get("Read1File") or "", row.get("Read2File") or ""
        for fastq in (read1, read2):
            if fastq and not Path(fastq).is_file():
                raise BadInput(f"FASTQ {fastq} of read group {row.get('RGID')} is not a local file")
        if not read1:
            raise BadInput(f"read group {row.get('RGID')} has no Read1File")
        groups.append(
            ReadGroup(
                rgid=row.get("RGID") or f"{sample_id}.{row.get('Lane')}",
                sample=sample_id,
                library=row.get("RGLB") or sample_id,
                lane=row.get("Lane") or "",
                read1=Path(read1),
                read2=Path(read2) if read2 else None,
            )
        )
    if not groups:
        raise BadInput(f"no rows for sample {sample_id!r} (RGSM) in fastq list {path}")
    return groups


@dataclass
class MappingCounts:
    total: int = 0
    mapped: int = 0
    with_mate: int = 0
    proper: int = 0
    mapped_r1: int = 0
    mapped_r2: int = 0
    by_rg: dict[str, list[int]] = field(default_factory=dict)  # rgid -> [total, mapped]


class Timer:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: list[tuple[str, float]] = []
        self._last = self.started

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append((name, now - self._last))
        self._last = now

    @property
    def total(self) -> float:
        return time.monotonic() - self.started


def _pairs(group: ReadGroup) -> Iterator[tuple[str, str, str, str | None, str | None]]:
    """(name, seq1, qual1, seq2, qual2) per read pair. Mates are paired strictly: both files hold the same number of
    records and each pair's names agree (modulo /1 and /2 and the Illumina comment); a file that is not whole,
    valid FASTQ raises InvalidInput (never a quiet early end)."""
    reads1 = read_records(group.read1)
    if group.read2 is None:
        for header, seq, qual in reads1:
            yield read_name(header), seq, qual, None, None
        return
    reads2 = read_records(group.read2)
    count = 0
    for first in reads1:
        second = next(reads2, None)
        if second is None:
            raise BadInput(f"{group.read2} ends after {count} reads but its mate file {group.read1} has more")
        name = read_name(first[0])
        if read_name(second[0]) != name:
            raise BadInput(
                f"read {count + 1} of {group.read1} ({first[0].split()[0]}) is paired with "
                f"{second[0].split()[0]} in {group.read2}: mate names differ"
            )
        count += 1
        yield name, first[1], first[2], second[1], second[2]
    if next(reads2, None) is not None:
        raise BadInput(f"{group.read1} ends after {count} reads but its mate file {group.read2} has more")


def read_name(header: str) -> str:
    """A read's name for pairing: the header's first word without a /1 or /2 suffix (Illumina's comment, after
    the space, differs between mates)."""
    words = header.split(maxsplit=1)
    name = words[0] if words else ""
    return name[:-2] if name.endswith(("/1", "/2")) else name


def _sam_record(name, flag, seq, qual, *, hit, mate, rgid, tlen) -> str:
    if qual is None:
        qual = "*"
    if hit is None:
        cigar, mapq, tags = "*", 0, f"RG:Z:{rgid}"
        rname, pos = (mate.ctg, mate.r_st + 1) if mate is not None else ("*", 0)
    else:
        length = len(seq)
        if hit.strand < 0:
            seq, qual = seq.translate(_COMPLEMENT)[::-1], qual[::-1]
            lead, trail = length - hit.q_en, hit.q_st
        else:
            lead, trail = hit.q_st, length - hit.q_en
        cigar = (f"{lead}S" if lead else "") + hit.cigar_str + (f"{trail}S" if trail else "")
        mapq, tags = hit.mapq, f"NM:i:{hit.NM}\tRG:Z:{rgid}"
        rname, pos = hit.ctg, hit.r_st + 1
    if mate is not None:
        rnext, pnext = ("=" if mate.ctg == rname else mate.ctg), mate.r_st + 1
    elif hit is not None and flag & 0x1:
        rnext, pnext = "=", pos  # an unmapped mate sits at this read's position
    else:
        rnext, pnext = "*", 0
    return f"{name}\t{flag}\t{rname}\t{pos}\t{mapq}\t{cigar}\t{rnext}\t{pnext}\t{tlen}\t{seq}\t{qual}\t{tags}\n"


def _pair_flags(hit1, hit2) -> tuple[int, int, int, bool]:
    """(flag1, flag2, tlen1, proper) for a mapped-or-not pair."""
    flag1, flag2 = 0x1 | 0x40, 0x1 | 0x80
    for hit, own, other in ((hit1, 0, 1), (hit2, 1, 0)):
        flags = [flag1, flag2]
        if hit is None:
            flags[own] |= 0x4
            flags[other] |= 0x8
        elif hit.strand < 0:
            flags[own] |= 0x10
            flags[other] |= 0x20
        flag1, flag2 = flags
    tlen, proper = 0, False
    if hit1 is not None and hit2 is not None and hit1.ctg == hit2.ctg:
        left, right = min(hit1.r_st, hit2.r_st), max(hit1.r_en, hit2.r_en)
        tlen = right - left if hit1.r_st <= hit2.r_st else left - right
        forward, reverse = (hit1, hit2) if hit1.strand > 0 else (hit2, hit1)
        proper = hit1.strand != hit2.strand and forward.r_st <= reverse.r_en and abs(tlen) <= MAX_PROPER_INSERT
        if proper:
            flag1, flag2 = flag1 | 0x2, flag2 | 0x2
    return flag1, flag2, tlen, proper


def _primary(hits: Iterator[mappy.Alignment]) -> tuple[mappy.Alignment | None, mappy.Alignment | None]:
    first = second = None
    for hit in hits:
        if not hit.is_primary:
            continue
        if hit.read_num == 2:
            second = second or hit
        else:
            first = first or hit
    return first, second


def map_reads(aligner, groups: Sequence[ReadGroup], sam_path: Path, header: str, counts: MappingCounts) -> None:
    """Write name-grouped SAM of every read's primary alignment (or unmapped record)."""
    with sam_path.open("w") as sam:
        sam.write(header)
        for group in groups:
            rg_counts = counts.by_rg.setdefault(group.rgid, [0, 0])
            lines = []
            for name, seq1, qual1, seq2, qual2 in _pairs(group):
                if seq2 is None:
                    hit1, _ = _primary(aligner.map(seq1))
                    flag = 0x10 if hit1 is not None and hit1.strand < 0 else 0
                    flag |= 0x4 if hit1 is None else 0
                    lines.append(_sam_record(name, flag, seq1, qual1, hit=hit1, mate=None, rgid=group.rgid, tlen=0))
                    mapped = int(hit1 is not None)
                    counts.total += 1
                    counts.mapped += mapped
                    counts.mapped_r1 += mapped
                    rg_counts[0] += 1
                    rg_counts[1] += mapped
                else:
                    hit1, hit2 = _primary(aligner.map(seq1, seq2))
                    flag1, flag2, tlen, proper = _pair_flags(hit1, hit2)
                    lines.append(_sam_record(name, flag1, seq1, qual1, hit=hit1, mate=hit2, rgid=group.rgid, tlen=tlen))
                    lines.append(
                        _sam_record(name, flag2, seq2, qual2, hit=hit2, mate=hit1, rgid=group.rgid, tlen=-tlen)
                    )
                    mapped1, mapped2 = int(hit1 is not None), int(hit2 is not None)
                    counts.total += 2
                    counts.with_mate += 2
                    counts.mapped += mapped1 + mapped2
                    counts.mapped_r1 += mapped1
                    counts.mapped_r2 += mapped2
                    counts.proper += 2 * proper
                    rg_counts[0] += 2
                    rg_counts[1] += mapped1 + mapped2
                if len(lines) >= 20_000:
                    sam.writelines(lines)
                    lines.clear()
            sam.writelines(lines)


def sam_header(aligner, groups: Sequence[ReadGroup], argv: Sequence[str]) -> str:
    import mappy

    lines = ["@HD\tVN:1.6\tSO:unsorted"]
    for name in aligner.seq_names:
        lines.append(f"@SQ\tSN:{name}\tLN:{len(aligner.seq(name))}")
    for group in groups:
        lines.append(f"@RG\tID:{group.rgid}\tSM:{group.sample}\tLB:{group.library}\tPL:ILLUMINA\tPU:{group.rgid}")
    command_line = " ".join(argv).replace("\t", " ")
    lines.append(f"@PG\tID:seqlane-cpu\tPN:minimap2 (mappy)\tVN:{mappy.__version__}\tCL:{command_line}")
    return "\n".join(lines) + "\n"


def _index_reference(fasta: Path, tmp_dir: Path) -> Path:
    """A FASTA with a .fai next to it: the original if indexed, else a symlink indexed in tmp (ref may be read-only)."""
    import pysam

    if Path(f"{fasta}.fai").is_file():
        return fasta
    linked = tmp_dir / fasta.name
    if not linked.exists():
        linked.symlink_to(fasta.resolve())
    pysam.faidx(str(linked))
    return linked


def duplicate_count(bam: Path) -> int:
    import pysam

    stats = json.loads(cast(str, pysam.flagstat("-O", "json", str(bam))))  # a list only with split_lines=True
    return int(stats["QC-passed reads"]["primary duplicates"])


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}" if whole else "0.00"


def mapping_metrics_rows(counts: MappingCounts, duplicates: int) -> list[list[str]]:
    summary = "MAPPING/ALIGNING SUMMARY"
    total = counts.total
    unique_mapped = counts.mapped - duplicates  # duplicates are only ever marked on mapped reads
    rows = [
        [summary, "", "Total input reads", str(total), _percent(total, total)],
        [summary, "", "Number of duplicate marked reads", str(duplicates), _percent(duplicates, total)],
        [summary, "", "Number of duplicate marked and mate reads removed", "NA"],
        [summary, "", "Number of unique reads (excl. duplicate marked reads)", str(total - duplicates),
         _percent(total - duplicates, total)],
        [summary, "", "Reads with mate sequenced", str(counts.with_mate), _percent(counts.with_mate, total)],
        [summary, "", "Reads without mate sequenced", str(total - counts.with_mate),
         _percent(total - counts.with_mate, total)],
        [summary, "", "Mapped reads", str(counts.mapped), _percent(counts.mapped, total)],
        [summary, "", "Mapped reads R1", str(counts.mapped_r1), _percent(counts.mapped_r1, total)],
        [summary, "", "Mapped reads R2", str(counts.mapped_r2), _percent(counts.mapped_r2, total)],
        [summary, "", "Number of unique & mapped reads (excl. duplicate marked reads)", str(unique_mapped),
         _percent(unique_mapped, total)],
        [summary, "", "Unmapped reads", str(total - counts.mapped), _percent(total - counts.mapped, total)],
        [summary, "", "Properly paired reads", str(counts.proper), _percent(counts.proper, total)],
    ]  # fmt: skip
    for rgid, (rg_total, rg_mapped) in counts.by_rg.items():
        per_rg = "MAPPING/ALIGNING PER RG"
        rows.append([per_rg, rgid, "Total reads in RG", str(rg_total), _percent(rg_total, total)])
        rows.append([per_rg, rgid, "Mapped reads", str(rg_mapped), _percent(rg_mapped, rg_total)])
    return rows


def _clock(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def time_metrics_rows(timer: Timer) -> list[list[str]]:
    rows = [["RUN TIME", "", f"Time {name}", _clock(seconds), f"{seconds:.2f}"] for name, seconds in timer.steps]
    total = timer.total
    rows.append(["RUN TIME", "", "Total runtime", _clock(total), f"{total:.2f}"])
    return rows


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerows(rows)


def run(args: argparse.Namespace, argv: Sequence[str]) -> None:
    import mappy
    import pysam
    import pysam.bcftools

    timer = Timer()
    out_dir, tmp_dir, prefix = Path(args.output_directory), Path(args.intermediate_results_dir), args.output_file_prefix
    groups = read_fastq_list(Path(args.fastq_list), args.fastq_list_sample_id)
    fasta = find_reference_fasta(Path(args.ref_dir))
    if not os.access(fasta, os.R_OK):
        raise BadInput(f"reference {fasta} is not readable")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    threads = str(max(1, min(4, os.cpu_count() or 1)))

    aligner = mappy.Aligner(str(fasta), preset="sr")
    if not aligner or not aligner.seq_names:
        raise BadInput(f"reference {fasta} could not be loaded as a FASTA (no sequences indexed)")
    empty = [name for name in aligner.seq_names if not aligner.seq(name, 0, 1)]  # a header with no sequence lines
    if empty:
        raise BadInput(f"reference {fasta} could not be loaded as a FASTA (empty sequence: {', '.join(empty[:5])})")
    timer.step("loading reference")

    counts = MappingCounts()
    sam = tmp_dir / f"{prefix}.unsorted.sam"
    map_reads(aligner, groups, sam, sam_header(aligner, groups, argv), counts)
    timer.step("aligning reads")

    fixed, sorted_bam, bam = (
        tmp_dir / f"{prefix}.fixmate.bam",
        tmp_dir / f"{prefix}.sorted.bam",
        out_dir / f"{prefix}.bam",
    )
    pysam.fixmate("-m", "-u", str(sam), str(fixed))
    pysam.sort("-@", threads, "-u", "-T", str(tmp_dir / f"{prefix}.sort"), "-o", str(sorted_bam), str(fixed))
    timer.step("sorting")
    pysam.markdup("-@", threads, "--no-PG", str(sorted_bam), str(bam))
    pysam.index("-@", threads, str(bam))
    duplicates = duplicate_count(bam)
    timer.step("duplicate marking")
    for path in (sam, fixed, sorted_bam):
        path.unlink()

    indexed_fasta = _index_reference(fasta, tmp_dir)
    pileup, calls = tmp_dir / f"{prefix}.pileup.bcf", tmp_dir / f"{prefix}.calls.bcf"
    normed = tmp_dir / f"{prefix}.normed.bcf"
    vcf = out_dir / f"{prefix}.hard-filtered.vcf.gz"
    pysam.bcftools.mpileup(
        "-f", str(indexed_fasta), "-a", "FORMAT/AD,FORMAT/DP", "-Ou", "-o", str(pileup), str(bam), catch_stdout=False
    )
    pysam.bcftools.call("-mv", "-Ou", "-o", str(calls), str(pileup), catch_stdout=False)
    # mpileup writes some indels with extra context (TAA>TA): norm makes them minimal and left-aligned.
    pysam.bcftools.norm("-f", str(indexed_fasta), "-Ou", "-o", str(normed), str(calls), catch_stdout=False)
    pysam.bcftools.filter(
        "-s", "LowQual", "-e", f"QUAL<{MIN_QUAL}", "-Oz", "-o", str(vcf), str(normed), catch_stdout=False
    )
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    for path in (pileup, calls, normed):
        path.unlink()
    timer.step("variant calling")

    _write_csv(out_dir / f"{prefix}.mapping_metrics.csv", mapping_metrics_rows(counts, duplicates))
    _write_csv(out_dir / f"{prefix}.time_metrics.csv", time_metrics_rows(timer))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seqlane.runner.cpu", description="The seqlane CPU engine.")
    for name in (
        "--ref-dir",
        "--fastq-list",
        "--fastq-list-sample-id",
        "--output-directory",
        "--output-file-prefix",
        "--intermediate-results-dir",
    ):
        parser.add_argument(name, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from pysam.utils import SamtoolsError

    try:
        run(args, ["seqlane.runner.cpu", *argv])
    except (BadInput, InvalidInput) as err:
        print(f"cpu engine: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (SamtoolsError, OSError, ValueError, RuntimeError) as err:  # a tool failed: one line, no traceback
        message = " ".join(str(err).split())[:500]
        print(f"cpu engine: {type(err).__name__}: {message}", file=sys.stderr)
        return EXIT_TOOL_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
