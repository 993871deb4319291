"""Called variants against the demo's truth VCF: exact allele matches, PASS calls only, multi-allelics split."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest

from seqlane.demo.dataset import CONTIG, Variant, write_truth_vcf
from seqlane.demo.truth import Concordance, compare

LENGTH = 10_000
TRUTH = (Variant(1000, "A", "G"), Variant(2000, "C", "T"), Variant(3000, "TAA", "T"), Variant(4000, "G", "GCA"))


def _truth(tmp_path: Path, variants=TRUTH) -> Path:
    return write_truth_vcf(tmp_path / "truth.vcf.gz", variants, LENGTH, ["S1"])


def _called(tmp_path: Path, records: list[tuple[int, str, str, str]], *, name: str = "called.vcf.gz") -> Path:
    """A bgzipped VCF like the CPU engine's: (pos, ref, alts, filter) per record."""
    header = [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FILTER=<ID=LowQual,Description="QUAL < 20">',
        f"##contig=<ID={CONTIG},length={LENGTH}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "S1"]),
    ]
    body = [
        "\t".join([CONTIG, str(pos), ".", ref, alts, "50", flt, ".", "GT", "0/1"]) for pos, ref, alts, flt in records
    ]
    plain = tmp_path / name.removesuffix(".gz")
    plain.write_text("\n".join(header + body) + "\n")
    path = tmp_path / name
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    return path


def test_truth_exact_match_is_perfect(tmp_path):
    # Given calls that are exactly the truth (all PASS, genotypes differing)
    called = _called(tmp_path, [(v.pos, v.ref, v.alt, "PASS") for v in TRUTH])

    # When they are compared
    result = compare(_truth(tmp_path), called)

    # Then every planted variant is found and nothing else is called
    assert result == Concordance(true_positives=4, false_positives=0, false_negatives=0)
    assert result.recall == result.precision == 1.0


def test_truth_the_truth_file_matches_itself(tmp_path):
    # Given the truth VCF as written by the demo dataset
    truth = _truth(tmp_path)

    # When / Then it agrees with itself
    assert compare(truth, truth).as_dict() == {
        "true_positives": 4,
        "false_positives": 0,
        "false_negatives": 0,
        "recall": 1.0,
        "precision": 1.0,
    }


def test_truth_missed_extra_and_filtered_calls(tmp_path):
    # Given calls missing one truth SNV, with one extra PASS call, one LowQual call, and a wrong allele at a truth site
    called = _called(
        tmp_path,
        [
            (1000, "A", "G", "PASS"),
            (2000, "C", "A", "PASS"),  # the truth site 2000 C>T, but the wrong allele
            (3000, "TAA", "T", "."),  # no filter counts as a call
            (4000, "G", "GCA", "PASS"),
            (5000, "C", "A", "PASS"),  # extra
            (6000, "G", "T", "LowQual"),  # filtered: not a call
        ],
    )

    # When they are compared
    result = compare(_truth(tmp_path), called)

    # Then 3 found, 1 missed (2000 C>T: a wrong allele does not match), 2 false positives (2000 C>A and
    # 5000 C>A); the LowQual record is not counted
    assert result == Concordance(true_positives=3, false_positives=2, false_negatives=1)
    assert result.recall == 0.75
    assert result.precision == 0.6
    assert result.as_dict() == {
        "true_positives": 3,
        "false_positives": 2,
        "false_negatives": 1,
        "recall": 0.75,
        "precision": 0.6,
    }


def test_truth_filtered_call_of_a_true_variant_is_a_miss(tmp_path):
    # Given a truth variant called only with FILTER LowQual
    called = _called(tmp_path, [(1000, "A", "G", "LowQual")])

    # When they are compared
    result = compare(_truth(tmp_path, TRUTH[:1]), called)

    # Then it is a false negative, and with nothing called precision is defined as 1
    assert result == Concordance(true_positives=0, false_positives=0, false_negatives=1)
    assert (result.recall, result.precision) == (0.0, 1.0)


def test_truth_multiallelic_calls_are_split_per_allele(tmp_path):
    # Given truth C>T at 2000 and a deletion TAA>T at 3000, called as multi-allelic records
    called = _called(
        tmp_path,
        [
            (2000, "C", "T,G", "PASS"),  # T is true, G is not
            (3000, "TAA", "TA,T", "PASS"),  # T is true, TA (minimal TA>T) is not
        ],
    )

    # When they are compared
    result = compare(_truth(tmp_path, TRUTH[1:3]), called)

    # Then each ALT allele is judged on its own
    assert result == Concordance(true_positives=2, false_positives=2, false_negatives=0)
    assert result.as_dict()["precision"] == 0.5


def test_truth_split_allele_is_trimmed_to_minimal_form(tmp_path):
    # Given truth deletion TA>T at 3000 and a multi-allelic call TAA>TA,T at the same position
    truth = _truth(tmp_path, [Variant(3000, "TA", "T")])
    called = _called(tmp_path, [(3000, "TAA", "TA,T", "PASS")])

    # When they are compared
    result = compare(truth, called)

    # Then TAA>TA, trimmed of its shared trailing A, matches the truth and TAA>T is extra
    assert result == Concordance(true_positives=1, false_positives=1, false_negatives=0)


def test_truth_empty_truth_and_no_calls(tmp_path):
    # Given an empty truth set and an empty call set
    truth = _truth(tmp_path, [])
    called = _called(tmp_path, [])

    # When they are compared
    result = compare(truth, called)

    # Then recall and precision are both defined as 1
    assert result == Concordance(0, 0, 0)
    assert (result.recall, result.precision) == (1.0, 1.0)


def test_truth_rounds_to_four_decimals(tmp_path):
    # Given 1 of 3 truth variants found
    called = _called(tmp_path, [(1000, "A", "G", "PASS")])

    # When compared
    result = compare(_truth(tmp_path, TRUTH[:3]), called)

    # Then the dict rounds, the property does not
    assert result.as_dict()["recall"] == 0.3333
    assert result.recall == pytest.approx(1 / 3)


@pytest.mark.parametrize("which", ["truth", "called"])
@pytest.mark.parametrize("problem", ["missing", "not-a-vcf"])
def test_truth_unreadable_file_is_a_value_error(tmp_path, which, problem):
    # Given one of the two files missing or not a VCF
    truth, called = _truth(tmp_path), _called(tmp_path, [(1000, "A", "G", "PASS")])
    bad = tmp_path / f"bad-{which}.vcf.gz"
    if problem == "not-a-vcf":
        bad.write_text("this is not a VCF\n")
    files = {"truth": truth, "called": called} | {which: bad}

    # When / Then comparing raises ValueError naming the file
    with pytest.raises(ValueError, match=rf"cannot read VCF {bad}"):
        compare(files["truth"], files["called"])
