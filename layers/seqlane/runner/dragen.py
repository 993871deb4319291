"""Engine command lines: pure functions of a manifest and the job's local paths (`find_dragen` looks at disk).

Every engine gets the same `JobPaths` and writes into `output_dir` with the sample id as file prefix, so the
runner uploads any engine's outputs the same way (a CPU engine can implement `Engine` later).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from seqlane.manifest import Manifest

GERMLINE_WGS = "germline-wgs"

# Per modality, the DRAGEN switches after the common ones; a new modality is one more entry.
_DRAGEN_MODALITY_ARGS: dict[str, tuple[str, ...]] = {
    GERMLINE_WGS: (
        "--enable-map-align", "true",
        "--enable-map-align-output", "true",
        "--enable-sort", "true",
        "--enable-duplicate-marking", "true",
        "--enable-variant-caller", "true",
    ),
}  # fmt: skip


class EngineError(ValueError):
    """This engine cannot run the job; the message says why."""


@dataclass(frozen=True, slots=True)
class JobPaths:
    """Local paths of one job, shared by every engine."""

    ref_dir: Path
    fastq_list: Path
    output_dir: Path
    tmp_dir: Path


class Engine(Protocol):
    @property
    def name(self) -> str: ...

    def command(self, manifest: Manifest, paths: JobPaths) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class DragenEngine:
    binary: str
    name: str = "dragen"

    def command(self, manifest: Manifest, paths: JobPaths) -> list[str]:
        modality_args = _DRAGEN_MODALITY_ARGS.get(manifest.route.modality)
        if modality_args is None:
            supported = ", ".join(sorted(_DRAGEN_MODALITY_ARGS))
            raise EngineError(f"modality {manifest.route.modality!r} is not supported (supported: {supported})")
        return [self.binary, *job_arguments(manifest, paths), *modality_args]


def job_arguments(manifest: Manifest, paths: JobPaths) -> list[str]:
    """Inputs and outputs in DRAGEN's own options, which every engine takes, so outputs land in one layout."""
    return [
        "--ref-dir", str(paths.ref_dir),
        "--fastq-list", str(paths.fastq_list),
        "--fastq-list-sample-id", manifest.sample_id,
        "--output-directory", str(paths.output_dir),
        "--output-file-prefix", manifest.sample_id,
        "--intermediate-results-dir", str(paths.tmp_dir),
    ]  # fmt: skip


def find_dragen(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The DRAGEN binary: `explicit` (--dragen), else $DRAGEN_BIN, else `dragen` on PATH; no fallback."""
    environ = os.environ if environ is None else environ
    if explicit:
        candidate, origin = explicit, "--dragen"
    elif environ.get("DRAGEN_BIN"):
        candidate, origin = environ["DRAGEN_BIN"], "DRAGEN_BIN"
    else:
        candidate, origin = "dragen", "PATH"
    found = shutil.which(candidate, path=environ.get("PATH"))
    if found is None:
        raise EngineError(f"DRAGEN binary not found: {candidate!r} (from {origin}) is not an executable file")
    return found
