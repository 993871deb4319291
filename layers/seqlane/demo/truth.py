"""Compare a sample's called variants with the demo's truth VCF: how many planted variants were found.

Each record is split into one (CHROM, POS, REF, ALT) per ALT allele, trimmed to its minimal representation (a split
multi-allelic REF=TAA ALT=TA,T gives TA>T and TAA>T), and matched exactly; genotypes are ignored. Every truth record
counts; a called record counts only if its FILTER is PASS or missing, as DRAGEN's filtered calls are not calls.
Symbolic and spanning-deletion alleles (`<DEL>`, `*`) name no sequence to match and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pysam

_SEQUENCE = re.compile(r"[ACGTN]+")

Allele = tuple[str, int, str, str]  # (chrom, pos, ref, alt), pos 1-based


@dataclass(frozen=True, slots=True)
class Concordance:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def recall(self) -> float:
        """Found / planted; 1.0 when nothing was planted (nothing was missed)."""
        truth = self.true_positives + self.false_negatives
        return self.true_positives / truth if truth else 1.0

    @property
    def precision(self) -> float:
        """Right / called; 1.0 when nothing was called (nothing was wrong)."""
        called = self.true_positives + self.false_positives
        return self.true_positives / called if called else 1.0

    def as_dict(self) -> dict[str, int | float]:
        return {
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
        }


def compare(truth_vcf: Path, called_vcf: Path) -> Concordance:
    """Concordance of called_vcf's PASS alleles with every allele of truth_vcf."""
    truth = read_alleles(truth_vcf, passing_only=False)
    called = read_alleles(called_vcf, passing_only=True)
    return Concordance(
        true_positives=len(truth & called),
        false_positives=len(called - truth),
        false_negatives=len(truth - called),
    )


def read_alleles(vcf: Path, *, passing_only: bool) -> set[Allele]:
    """The VCF's alleles, split and trimmed; ValueError if it cannot be read as a VCF/BCF."""
    alleles: set[Allele] = set()
    verbosity = pysam.set_verbosity(0)  # htslib's header and index warnings would land in the user's terminal
    try:
        with pysam.VariantFile(str(vcf)) as variants:
            for record in variants:
                if passing_only and not _passes(record):
                    continue
                for alt in record.alts or ():
                    allele = _minimal(record.chrom, record.pos, record.ref, alt)
                    if allele is not None:
                        alleles.add(allele)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read VCF {vcf}: {err}") from err
    finally:
        pysam.set_verbosity(verbosity)
    return alleles


def _passes(record: pysam.VariantRecord) -> bool:
    filters = list(record.filter.keys())
    return not filters or filters == ["PASS"]


def _minimal(chrom: str, pos: int, ref: str | None, alt: str) -> Allele | None:
    """The allele with shared trailing, then leading, bases trimmed (keeping one); None if not a sequence."""
    ref, alt = (ref or "").upper(), alt.upper()
    if not _SEQUENCE.fullmatch(ref) or not _SEQUENCE.fullmatch(alt) or ref == alt:
        return None
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return chrom, pos, ref, alt
