"""DRAGEN metrics CSVs (and the CPU engine's copies of them) read into one flat dict of numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from seqlane.runner.cpu import MappingCounts, Timer, mapping_metrics_rows, time_metrics_rows
from seqlane.runner.metrics import (
    DUPLICATE_FREE_MAPPED_PCT,
    MAPPED_READS,
    TOTAL_INPUT_READS,
    MetricsError,
    metric_key,
    summary_metrics,
)

PREFIX = "NA12878-demo"


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as stream:
        csv.writer(stream, lineterminator="\n").writerows(rows)


def test_metrics_cpu_engine_output_has_headline_numbers(tmp_path):
    # Given the CSVs the CPU engine writes for 2000 paired reads, 1990 mapped, 40 marked duplicate
    counts = MappingCounts(
        total=2000, mapped=1990, with_mate=2000, proper=1960, mapped_r1=996, mapped_r2=994, by_rg={"RG1": [2000, 1990]}
    )
    _write_rows(tmp_path / f"{PREFIX}.mapping_metrics.csv", mapping_metrics_rows(counts, duplicates=40))
    timer = Timer()
    timer.started -= 62.5  # the run began 62.5 s ago; one of its steps took 61.5 s
    timer.steps = [("aligning reads", 61.5)]
    _write_rows(tmp_path / f"{PREFIX}.time_metrics.csv", time_metrics_rows(timer))

    # When the output directory's metrics are read
    metrics = summary_metrics(tmp_path)

    # Then the headline metrics are there, counts as ints and percentages as floats
    assert metrics[TOTAL_INPUT_READS] == 2000
    assert metrics[MAPPED_READS] == 1990
    assert metrics["mapped_reads_pct"] == 99.5
    assert metrics[DUPLICATE_FREE_MAPPED_PCT] == 97.5  # (1990 - 40) / 2000
    assert metrics["number_of_unique_mapped_reads_excl_duplicate_marked_reads"] == 1950
    assert metrics["number_of_duplicate_marked_reads"] == 40
    assert metrics["mapped_reads_r2"] == 994
    assert all(isinstance(metrics[key], int) for key in (TOTAL_INPUT_READS, MAPPED_READS))
    assert all(isinstance(value, float) for key, value in metrics.items() if key.endswith("_pct"))
    # and the NA row is skipped, and no per read group row leaks in
    assert "number_of_duplicate_marked_and_mate_reads_removed" not in metrics
    assert "total_reads_in_rg" not in metrics
    # and the run time is the total runtime row, in seconds (not a step's)
    assert metrics["total_runtime_seconds"] == pytest.approx(62.5, abs=1)


def test_metrics_dragen_csv_keeps_summary_only_and_skips_na(tmp_path):
    # Given a DRAGEN-like mapping_metrics.csv with per read group rows, NA and text values, and its time metrics
    (tmp_path / "S1.mapping_metrics.csv").write_text(
        "MAPPING/ALIGNING SUMMARY,,Total input reads,2000,\n"
        "MAPPING/ALIGNING SUMMARY,,Mapped reads,1990,99.50\n"
        "MAPPING/ALIGNING SUMMARY,,Number of duplicate marked and mate reads removed,NA\n"
        "MAPPING/ALIGNING SUMMARY,,Reads with MAPQ [40:inf),1900,95.00\n"
        "MAPPING/ALIGNING SUMMARY,,Insert length: mean,383.00\n"
        "MAPPING/ALIGNING SUMMARY,,Bases in target bed [% of genome],NA\n"
        "MAPPING/ALIGNING SUMMARY,,Provided sex chromosome ploidy,XX\n"
        "\n"
        "MAPPING/ALIGNING PER RG,RG1,Total reads in RG,1000,50.00\n"
        "MAPPING/ALIGNING PER RG,RG1,Mapped reads,12,1.20\n"
    )
    (tmp_path / "S1.time_metrics.csv").write_text(
        "RUN TIME,,Time loading reference,00:00:10.000,10.00\nRUN TIME,,Total runtime,00:01:02.345,62.35\n"
    )
    (tmp_path / "S1.vc_metrics.csv").write_text("VARIANT CALLER SUMMARY,,Number of samples,1\n")

    # When they are read
    metrics = summary_metrics(tmp_path)

    # Then only summary numbers are kept, an empty percentage is not a metric, and the runtime is DRAGEN's seconds
    assert metrics == {
        "total_input_reads": 2000,
        "mapped_reads": 1990,
        "mapped_reads_pct": 99.5,
        "reads_with_mapq_40_inf": 1900,
        "reads_with_mapq_40_inf_pct": 95.0,
        "insert_length_mean": 383.0,
        "total_runtime_seconds": 62.35,
    }


def test_metrics_runtime_from_clock_when_no_seconds_column(tmp_path):
    # Given a time_metrics.csv whose Total runtime has only the hh:mm:ss.sss value
    (tmp_path / "S1.mapping_metrics.csv").write_text("MAPPING/ALIGNING SUMMARY,,Total input reads,10,100.00\n")
    (tmp_path / "S1.time_metrics.csv").write_text("RUN TIME,,Total runtime,01:01:02.500\n")

    # When the metrics are read
    metrics = summary_metrics(tmp_path)

    # Then the clock is turned into seconds
    assert metrics["total_runtime_seconds"] == pytest.approx(3662.5)


def test_metrics_missing_file_gives_empty_dict(tmp_path):
    # Given an output directory with only a time_metrics.csv, a mapping_metrics.csv one level down, and no directory
    (tmp_path / "S1.time_metrics.csv").write_text("RUN TIME,,Total runtime,00:00:01.000,1.00\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "S1.mapping_metrics.csv").write_text("MAPPING/ALIGNING SUMMARY,,Total input reads,10,\n")

    # When / Then there are no metrics
    assert summary_metrics(tmp_path) == {}
    assert summary_metrics(tmp_path / "absent") == {}


def test_metrics_malformed_row_names_file_and_line(tmp_path):
    # Given a mapping_metrics.csv whose third line has only three fields
    path = tmp_path / "S1.mapping_metrics.csv"
    path.write_text(
        "MAPPING/ALIGNING SUMMARY,,Total input reads,2000,100.00\n"
        "MAPPING/ALIGNING SUMMARY,,Mapped reads,1990,99.50\n"
        "MAPPING/ALIGNING SUMMARY,,Unmapped reads\n"
    )

    # When / Then reading it fails naming the file and the line
    with pytest.raises(MetricsError, match=rf"{path}:3: expected SECTION") as raised:
        summary_metrics(tmp_path)
    assert isinstance(raised.value, ValueError)


def test_metrics_malformed_time_metrics_row_is_an_error(tmp_path):
    # Given good mapping metrics but a time_metrics.csv with six fields on line 1
    (tmp_path / "S1.mapping_metrics.csv").write_text("MAPPING/ALIGNING SUMMARY,,Total input reads,10,100.00\n")
    (tmp_path / "S1.time_metrics.csv").write_text("RUN TIME,,Total runtime,00:00:01.000,1.00,extra\n")

    # When / Then reading fails naming the time metrics file
    with pytest.raises(MetricsError, match=r"S1\.time_metrics\.csv:1:"):
        summary_metrics(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00binary\x00", b'MAPPING/ALIGNING SUMMARY,,"Total input reads,10\n'],
    ids=["not-utf8", "unclosed-quote"],
)
def test_metrics_unreadable_content_is_a_metrics_error(tmp_path, content):
    # Given a mapping_metrics.csv that is not text CSV
    (tmp_path / "S1.mapping_metrics.csv").write_bytes(content)

    # When / Then reading raises MetricsError and nothing else
    with pytest.raises(MetricsError, match=r"S1\.mapping_metrics\.csv"):
        summary_metrics(tmp_path)


def test_metrics_two_mapping_files_are_ambiguous(tmp_path):
    # Given two samples' mapping metrics in one directory
    for prefix in ("S1", "S2"):
        (tmp_path / f"{prefix}.mapping_metrics.csv").write_text("MAPPING/ALIGNING SUMMARY,,Total input reads,1,\n")

    # When / Then reading refuses to guess
    with pytest.raises(MetricsError, match="more than one"):
        summary_metrics(tmp_path)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Total input reads", "total_input_reads"),
        (
            "Number of unique & mapped reads (excl. duplicate marked reads)",
            DUPLICATE_FREE_MAPPED_PCT.removesuffix("_pct"),
        ),
        ("Reads with MAPQ [ 0:10)", "reads_with_mapq_0_10"),
        (
            "Paired reads mapped to different chromosomes (MAPQ>=10)",
            "paired_reads_mapped_to_different_chromosomes_mapq_10",
        ),
    ],
)
def test_metric_key_is_snake_case_of_dragen_name(name, key):
    # Given DRAGEN's metric name / When it is keyed / Then the key is its lower-case words joined by underscores
    assert metric_key(name) == key
