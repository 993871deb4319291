"""The DRAGEN command line and binary lookup: pure, no AWS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.runner.dragen import DragenEngine, EngineError, JobPaths, find_dragen


def _manifest(modality: str = "germline-wgs") -> Manifest:
    return Manifest(
        run_id="240101_A00001_0001_AHXXXXXXXX",
        sample_id="NA12878",
        ingest_bucket="ingest",
        results_bucket="results",
        route=Route(modality=modality, dragen_version="4.3", reference_uri="s3://refs/hg38/", region="eu-west-1"),
        files=(
            FastqFile(key="run/NA12878_S1_L001_R1_001.fastq.gz", lane=1, read=1, size=10, etag="a"),
            FastqFile(key="run/NA12878_S1_L001_R2_001.fastq.gz", lane=1, read=2, size=10, etag="b"),
        ),
    )


_PATHS = JobPaths(
    ref_dir=Path("/scratch/j/ref"),
    fastq_list=Path("/scratch/j/fastq_list.csv"),
    output_dir=Path("/scratch/j/output"),
    tmp_dir=Path("/scratch/j/tmp"),
)


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_dragen_command_is_exact_for_germline_wgs():
    # Given a germline WGS manifest and a job layout
    engine = DragenEngine("/opt/edico/bin/dragen")

    # When the command is built
    command = engine.command(_manifest(), _PATHS)

    # Then it is exactly DRAGEN's germline pipeline on the local paths, prefixed with the sample id
    assert engine.name == "dragen"
    assert command == [
        "/opt/edico/bin/dragen",
        "--ref-dir", "/scratch/j/ref",
        "--fastq-list", "/scratch/j/fastq_list.csv",
        "--fastq-list-sample-id", "NA12878",
        "--output-directory", "/scratch/j/output",
        "--output-file-prefix", "NA12878",
        "--intermediate-results-dir", "/scratch/j/tmp",
        "--enable-map-align", "true",
        "--enable-map-align-output", "true",
        "--enable-sort", "true",
        "--enable-duplicate-marking", "true",
        "--enable-variant-caller", "true",
    ]  # fmt: skip


def test_dragen_command_rejects_unsupported_modality():
    # Given a modality the runner does not support yet
    manifest = _manifest(modality="somatic-tumor-only")

    # When / Then building the command fails, naming the modality
    with pytest.raises(EngineError, match="somatic-tumor-only"):
        DragenEngine("dragen").command(manifest, _PATHS)


def test_find_dragen_prefers_option_then_env_then_path(tmp_path):
    # Given three executables: one named by the option, one by DRAGEN_BIN, one called dragen on PATH
    option = _executable(tmp_path / "option-dragen")
    env_bin = _executable(tmp_path / "env-dragen")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    _executable(on_path / "dragen")
    environ = {"DRAGEN_BIN": str(env_bin), "PATH": str(on_path)}

    # When / Then the option wins, then DRAGEN_BIN, then PATH
    assert find_dragen(str(option), environ) == str(option)
    assert find_dragen(None, environ) == str(env_bin)
    assert find_dragen(None, {"PATH": str(on_path)}) == str(on_path / "dragen")


def test_find_dragen_missing_raises_without_fallback(tmp_path):
    # Given DRAGEN_BIN names a file that does not exist, though dragen is on PATH
    on_path = tmp_path / "bin"
    on_path.mkdir()
    _executable(on_path / "dragen")
    environ = {"DRAGEN_BIN": str(tmp_path / "nope"), "PATH": str(on_path)}

    # When / Then the lookup fails, saying where the name came from
    with pytest.raises(EngineError, match="DRAGEN_BIN"):
        find_dragen(None, environ)
    # and with nothing configured and nothing on PATH it fails too
    with pytest.raises(EngineError, match="PATH"):
        find_dragen(None, {"PATH": os.devnull})
