"""A sample's manifest: the DRAGEN fastq-list CSV and the JSON manifest, with a content hash that names its version.

The same files (same keys, sizes and etags) and the same route always give the same bytes and the same version,
whatever order the upload events came in; any change to a file's content gives a new version.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

MANIFEST_SCHEMA = "seqlane.manifest/1"
FASTQ_LIST_HEADER = ("RGID", "RGSM", "RGLB", "Lane", "Read1File", "Read2File")
RESULT_FILE_NAME = "seqlane-result.json"
_EXECUTION_NAME_MAX = 80  # Step Functions execution names: 1-80 characters of [A-Za-z0-9-_]
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class FastqFile:
    key: str
    lane: int
    read: int
    size: int
    etag: str
    segment: int = 1  # split FASTQs: _001, _002, ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where and how a sample is analysed; the region is the one its data lives in."""

    modality: str
    dragen_version: str
    reference_uri: str
    region: str


@dataclass(frozen=True)  # no slots: the content hash is cached on the instance
class Manifest:
    run_id: str
    sample_id: str
    ingest_bucket: str
    results_bucket: str
    route: Route
    files: tuple[FastqFile, ...] = field(default_factory=tuple)

    # ---- identity
    @cached_property
    def content_sha256(self) -> str:
        identity = {
            "run_id": self.run_id,
            "sample_id": self.sample_id,
            "ingest_bucket": self.ingest_bucket,
            "route": asdict(self.route),
            "files": [asdict(f) for f in self.sorted_files],
        }
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def version(self) -> str:
        return self.content_sha256[:16]

    @property
    def sorted_files(self) -> tuple[FastqFile, ...]:
        return tuple(sorted(self.files, key=lambda f: (f.lane, f.segment, f.read, f.key)))

    @property
    def execution_name(self) -> str:
        """Deterministic and unique per sample version, so a repeated event cannot start a second execution."""
        return self.execution_name_for(1)

    def execution_name_for(self, attempt: int) -> str:
        """Attempt 1 is named after the version; attempt N (a failed analysis run again) adds `-a<N>`."""
        suffix = f"-{self.version}" + (f"-a{attempt}" if attempt > 1 else "")
        stem = _UNSAFE_NAME_CHARS.sub("_", f"{self.run_id}-{self.sample_id}")
        return stem[: _EXECUTION_NAME_MAX - len(suffix)] + suffix

    def execution_input(self, attempt: int = 1) -> dict[str, Any]:
        """The state machine's input for one analysis attempt of this version."""
        return {
            "run_id": self.run_id,
            "sample_id": self.sample_id,
            "version": self.version,
            "manifest_uri": self.manifest_uri,
            "route": asdict(self.route),
            "attempt": attempt,
        }

    # ---- locations (all in the results bucket: the pipeline never writes to the ingest bucket)
    @property
    def prefix(self) -> str:
        return f"manifests/{self.run_id}/{self.sample_id}/{self.version}/"

    @property
    def manifest_key(self) -> str:
        return self.prefix + "manifest.json"

    @property
    def fastq_list_key(self) -> str:
        return self.prefix + "fastq_list.csv"

    @property
    def manifest_uri(self) -> str:
        return f"s3://{self.results_bucket}/{self.manifest_key}"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.results_bucket}/{output_prefix(self.run_id, self.sample_id, self.version)}"

    def attempt_uri(self, job_id: str, attempt: int) -> str:
        """The folder one Batch job attempt writes to (outputs and seqlane-result.json)."""
        prefix = attempt_prefix(self.run_id, self.sample_id, self.version, job_id, attempt)
        return f"s3://{self.results_bucket}/{prefix}"

    def result_uri(self, job_id: str, attempt: int) -> str:
        return self.attempt_uri(job_id, attempt) + RESULT_FILE_NAME

    # ---- contents
    def fastq_list_rows(self, uri_of=None) -> list[dict[str, str]]:
        """`uri_of` maps a file to the path DRAGEN reads (S3 URI by default)."""
        uri_of = uri_of or (lambda f: f"s3://{self.ingest_bucket}/{f.key}")
        return fastq_list_rows(self.run_id, self.sample_id, self.files, uri_of)

    def fastq_list_csv(self, uri_of=None) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FASTQ_LIST_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.fastq_list_rows(uri_of))
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "run_id": self.run_id,
            "sample_id": self.sample_id,
            "version": self.version,
            "content_sha256": self.content_sha256,
            "ingest_bucket": self.ingest_bucket,
            "results_bucket": self.results_bucket,
            "route": asdict(self.route),
            "files": [{**asdict(f), "uri": f"s3://{self.ingest_bucket}/{f.key}"} for f in self.sorted_files],
            "fastq_list": self.fastq_list_rows(),
            "fastq_list_uri": f"s3://{self.results_bucket}/{self.fastq_list_key}",
            "output_uri": self.output_uri,
            "execution_name": self.execution_name,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ValueError(f"not a seqlane manifest (schema {data.get('schema')!r}, expected {MANIFEST_SCHEMA!r})")
        manifest = cls(
            run_id=data["run_id"],
            sample_id=data["sample_id"],
            ingest_bucket=data["ingest_bucket"],
            results_bucket=data["results_bucket"],
            route=Route(**data["route"]),
            files=tuple(
                FastqFile(
                    key=f["key"],
                    lane=f["lane"],
                    read=f["read"],
                    size=f["size"],
                    etag=f["etag"],
                    segment=f.get("segment", 1),
                )
                for f in data["files"]
            ),
        )
        if manifest.content_sha256 != data.get("content_sha256"):
            raise ValueError("manifest content does not match its content_sha256: it was altered after writing")
        return manifest

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.from_dict(json.loads(text))


def fastq_list_rows(run_id: str, sample_id: str, files, uri_of) -> list[dict[str, str]]:
    """DRAGEN fastq-list rows: one per lane (and split segment); single-end reads leave Read2File empty."""
    by_slot = {(f.lane, f.segment, f.read): f for f in files}
    rows = []
    for lane, segment in sorted({(lane, segment) for lane, segment, _ in by_slot}):
        read1, read2 = by_slot.get((lane, segment, 1)), by_slot.get((lane, segment, 2))
        rows.append(
            {
                "RGID": f"{run_id}.{sample_id}.{lane}" + (f".{segment}" if segment > 1 else ""),
                "RGSM": sample_id,
                "RGLB": sample_id,
                "Lane": str(lane),
                "Read1File": uri_of(read1) if read1 else "",
                "Read2File": uri_of(read2) if read2 else "",
            }
        )
    return rows


def output_prefix(run_id: str, sample_id: str, version: str) -> str:
    """Where a sample version's outputs go in the results bucket: one sub-folder per Batch job attempt."""
    return f"results/{run_id}/{sample_id}/{version}/"


def attempt_prefix(run_id: str, sample_id: str, version: str, job_id: str, attempt: int) -> str:
    """Where one Batch job attempt writes its outputs and result file. Every attempt (a Batch retry after a Spot
    reclaim, or a new analysis attempt with its own job) has its own prefix, and every write there is
    `If-None-Match: *`, so nothing an attempt wrote can be overwritten, by it or by any other job."""
    if attempt < 1:
        raise ValueError(f"Batch job attempts count from 1, not {attempt}")
    return f"{output_prefix(run_id, sample_id, version)}{job_id}/{attempt}/"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket")
    return bucket, key
