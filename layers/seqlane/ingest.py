"""Ingest: from one uploaded object to, when its sample is complete, one manifest and one started analysis.

Every step is safe to repeat, so at-least-once and out-of-order delivery gives one manifest and one execution
per sample version: files are recorded per (lane, read) slot, the manifest version is claimed with a conditional
write, manifests are written at version-named keys, and executions are named after the manifest version.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from enum import StrEnum

from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.naming import (
    UnrecognisedKey,
    is_run_completion_marker,
    parse_fastq_name,
    split_run_key,
)
from seqlane.observability import logger
from seqlane.ports import Catalog, ClaimOutcome, ObjectStore, Orchestrator, SampleRecord
from seqlane.uploads import UploadedObject


class Disposition(StrEnum):
    IGNORED = "IGNORED"
    WAITING = "WAITING"  # recorded; the sample or the run is not complete yet
    STARTED = "STARTED"
    ALREADY_STARTED = "ALREADY_STARTED"
    REUPLOADED = "REUPLOADED"  # content changed after the sample's manifest was written: not mixed in
    RUN_CLOSED = "RUN_CLOSED"


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    key: str
    run_id: str | None = None
    sample_id: str | None = None
    detail: str = ""
    started: tuple[str, ...] = ()


class WrongRegion(ValueError):
    """An event from another region's bucket: its data must be analysed where it lives."""


@dataclass
class IngestService:
    catalog: Catalog
    store: ObjectStore
    orchestrator: Orchestrator
    ingest_bucket: str
    results_bucket: str
    region: str
    dragen_version: str
    reference_uri: str
    modality: str = "germline-wgs"

    def handle(self, upload: UploadedObject) -> Outcome:
        if upload.region != self.region:
            raise WrongRegion(f"{upload.bucket}/{upload.key} is in {upload.region}, this stack is {self.region}")
        if upload.bucket != self.ingest_bucket:
            return Outcome(Disposition.IGNORED, upload.key, detail=f"bucket {upload.bucket} is not the ingest bucket")
        try:
            run_key = split_run_key(upload.key)
        except UnrecognisedKey as reason:
            return self._ignore(None, upload.key, str(reason))

        if is_run_completion_marker(run_key):
            return self._close_run(run_key.run_id, upload.key)
        try:
            name = parse_fastq_name(run_key.file_name)
        except UnrecognisedKey as reason:
            return self._ignore(run_key.run_id, upload.key, str(reason))

        fastq = FastqFile(key=upload.key, lane=name.lane, read=name.read, size=upload.size, etag=upload.etag)
        sample = self.catalog.record_fastq(run_key.run_id, name.sample_id, fastq, upload.ordering)
        if not self.catalog.run_is_complete(run_key.run_id):
            return Outcome(Disposition.WAITING, upload.key, run_key.run_id, name.sample_id, "run not complete")
        return self._advance(sample, upload.key)

    def _close_run(self, run_id: str, marker_key: str) -> Outcome:
        # The marker is written after the run's files, but its event may be handled first: the run folder's
        # listing (once per run, strongly consistent) says which reads each sample must still wait for.
        expected: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for key in self.store.list_keys(self.ingest_bucket, f"{run_id}/"):
            try:
                name = parse_fastq_name(split_run_key(key).file_name)
            except UnrecognisedKey:
                continue
            expected[name.sample_id].add((name.lane, name.read))
        for sample_id, slots in expected.items():
            self.catalog.expect_reads(run_id, sample_id, slots)
        # Expectations first, completion second, then a fresh read: a file recorded concurrently is seen either
        # here or by its own handler (which then finds the run complete).
        self.catalog.mark_run_complete(run_id, marker_key)
        started = []
        for sample in self.catalog.samples_of_run(run_id):
            outcome = self._advance(sample, marker_key)
            if outcome.disposition is Disposition.STARTED:
                started.extend(outcome.started)
        logger.info("run closed", run_id=run_id, marker=marker_key, started=len(started))
        return Outcome(Disposition.RUN_CLOSED, marker_key, run_id, started=tuple(started))

    def _advance(self, sample: SampleRecord, key: str) -> Outcome:
        if not sample.has_all_reads:
            missing = ", ".join(sample.missing_reads()) or "no reads"
            return Outcome(Disposition.WAITING, key, sample.run_id, sample.sample_id, f"missing {missing}")

        manifest = Manifest(
            run_id=sample.run_id,
            sample_id=sample.sample_id,
            ingest_bucket=self.ingest_bucket,
            results_bucket=self.results_bucket,
            route=Route(
                modality=self.modality,
                dragen_version=self.dragen_version,
                reference_uri=self.reference_uri,
                region=self.region,
            ),
            files=tuple(sample.files.values()),
        )
        claim = self.catalog.claim_manifest(
            sample.run_id, sample.sample_id, manifest.version, manifest.manifest_uri, manifest.execution_name
        )
        if claim is ClaimOutcome.OTHER_VERSION:
            logger.warning(
                "sample content changed after its manifest was written; not mixed into the running analysis",
                run_id=sample.run_id,
                sample_id=sample.sample_id,
                new_version=manifest.version,
            )
            return Outcome(Disposition.REUPLOADED, key, sample.run_id, sample.sample_id, manifest.version)

        self.store.put_text(self.results_bucket, manifest.fastq_list_key, manifest.fastq_list_csv(), "text/csv")
        self.store.put_text(self.results_bucket, manifest.manifest_key, manifest.to_json(), "application/json")
        self.orchestrator.start_analysis(
            manifest.execution_name,
            {
                "run_id": manifest.run_id,
                "sample_id": manifest.sample_id,
                "version": manifest.version,
                "manifest_uri": manifest.manifest_uri,
                "route": asdict(manifest.route),
            },
        )
        # Starting is idempotent (same name and input), so a redelivered event may start "again": the catalog
        # decides which invocation reports the start.
        first = self.catalog.mark_execution_started(sample.run_id, sample.sample_id, manifest.version)
        logger.info(
            "analysis started" if first else "analysis already started",
            run_id=manifest.run_id,
            sample_id=manifest.sample_id,
            version=manifest.version,
            execution_name=manifest.execution_name,
        )
        disposition = Disposition.STARTED if first else Disposition.ALREADY_STARTED
        return Outcome(disposition, key, sample.run_id, sample.sample_id, manifest.version, (manifest.execution_name,))

    def _ignore(self, run_id: str | None, key: str, reason: str) -> Outcome:
        self.catalog.record_ignored(run_id or "_unsorted", key, reason)
        logger.info("file ignored", key=key, reason=reason)
        return Outcome(Disposition.IGNORED, key, run_id, detail=reason)
