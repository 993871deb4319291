"""The runner's engine choice (never a silent CPU fallback) and its tolerant metrics reading."""

from __future__ import annotations

import pytest

from seqlane.runner.cpu import CpuEngine
from seqlane.runner.dragen import DragenEngine, EngineError
from seqlane.runner.job import read_metrics, select_engine


@pytest.fixture
def empty_path(tmp_path) -> str:
    """A PATH with no executables at all (so no `dragen` is found on it)."""
    directory = tmp_path / "empty-path"
    directory.mkdir()
    return str(directory)


def test_select_engine_cpu_by_name(empty_path):
    # Given --engine cpu, even with SEQLANE_ENGINE asking for dragen
    environ = {"PATH": empty_path, "SEQLANE_ENGINE": "dragen"}

    # When the engine is selected
    engine = select_engine("cpu", None, environ)

    # Then it is the CPU engine
    assert isinstance(engine, CpuEngine)
    assert engine.name == "cpu"


def test_select_engine_defaults_to_dragen_from_dragen_bin(fake_dragen, empty_path):
    # Given no engine name, no SEQLANE_ENGINE, and DRAGEN_BIN naming an executable
    environ = {"PATH": empty_path, "DRAGEN_BIN": str(fake_dragen)}

    # When the engine is selected
    engine = select_engine(None, None, environ)

    # Then it is DRAGEN with that binary
    assert isinstance(engine, DragenEngine)
    assert (engine.name, engine.binary) == ("dragen", str(fake_dragen))


def test_select_engine_default_without_dragen_is_an_error_not_cpu(empty_path):
    # Given no engine name, no SEQLANE_ENGINE and no dragen anywhere
    environ = {"PATH": empty_path}

    # When / Then selection fails rather than falling back to the CPU engine
    with pytest.raises(EngineError, match="DRAGEN binary not found"):
        select_engine(None, None, environ)


def test_select_engine_dragen_bin_naming_a_missing_file_is_an_error(tmp_path, empty_path):
    # Given DRAGEN_BIN naming a file that does not exist
    environ = {"PATH": empty_path, "DRAGEN_BIN": str(tmp_path / "missing" / "dragen")}

    # When / Then selection fails, naming where the binary was looked for
    with pytest.raises(EngineError, match="DRAGEN_BIN"):
        select_engine(None, None, environ)


def test_select_engine_cpu_from_seqlane_engine(empty_path):
    # Given SEQLANE_ENGINE=cpu and no engine name
    environ = {"PATH": empty_path, "SEQLANE_ENGINE": "cpu"}

    # When / Then the CPU engine is selected (no dragen needed)
    assert isinstance(select_engine(None, None, environ), CpuEngine)


def test_select_engine_explicit_dragen_path_wins(fake_dragen, empty_path):
    # Given --dragen naming the binary and DRAGEN_BIN naming a missing one
    environ = {"PATH": empty_path, "DRAGEN_BIN": "/nonexistent/dragen"}

    # When the engine is selected
    engine = select_engine("dragen", str(fake_dragen), environ)

    # Then the explicit binary is used
    assert engine.binary == str(fake_dragen)


@pytest.mark.parametrize("name", ["gatk", "CPU", "Dragen"])
def test_select_engine_unknown_name_lists_the_choices(name, empty_path):
    # Given an engine name that is not one of the choices
    # When / Then selection fails, naming it and listing the choices
    with pytest.raises(EngineError, match=r"choose from dragen, cpu") as excinfo:
        select_engine(name, None, {"PATH": empty_path})
    assert repr(name) in str(excinfo.value)


# ---- read_metrics


def test_read_metrics_parses_a_good_mapping_metrics_file(tmp_path):
    # Given a DRAGEN mapping metrics CSV with two summary rows
    (tmp_path / "x.mapping_metrics.csv").write_text(
        "MAPPING/ALIGNING SUMMARY,,Total input reads,100,\nMAPPING/ALIGNING SUMMARY,,Mapped reads,90,90.00\n"
    )

    # When the metrics are read
    metrics = read_metrics(tmp_path)

    # Then the counts and the percentage come back as numbers
    assert metrics == {"total_input_reads": 100, "mapped_reads": 90, "mapped_reads_pct": 90.0}


def test_read_metrics_returns_empty_for_a_malformed_file(tmp_path, caplog):
    # Given a mapping metrics CSV with a row of too few fields
    (tmp_path / "x.mapping_metrics.csv").write_text(
        "MAPPING/ALIGNING SUMMARY,,Total input reads,100,\nMAPPING/ALIGNING SUMMARY,Mapped reads\n"
    )

    # When the metrics are read
    with caplog.at_level("WARNING", logger="seqlane.runner.job"):
        metrics = read_metrics(tmp_path)

    # Then nothing is raised, no partial metrics come back, and the problem is logged
    assert metrics == {}
    assert "metrics not read" in caplog.text


def test_read_metrics_returns_empty_without_any_metrics(tmp_path):
    # Given an output folder that does not exist
    # When / Then there are no metrics
    assert read_metrics(tmp_path / "output") == {}
