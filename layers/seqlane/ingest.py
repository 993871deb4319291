"""Ingest: from one uploaded object to, when its sample is complete, one manifest and one started analysis.

Every step is safe to repeat, so at-least-once and out-of-order delivery gives one manifest and one execution
per sample version: files are recorded per (lane, read, segment) slot, the manifest version is claimed with a
conditional write, manifests are written at version-named keys, and executions are named after the manifest version.
Per event the work is O(1) in the size of the run; only a completion marker or a sample sheet looks at the whole run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from enum import StrEnum

from seqlane.completion import is_ready, missing_reads
from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.naming import (
    CompletionMarkerKey,
    FastqKey,
    IgnoredKey,
    SampleSheetKey,
    classify_key,
)
from seqlane.observability import logger
from seqlane.ports import (
    Catalog,
    ClaimOutcome,
    EventPublisher,
    ObjectStore,
    Orchestrator,
    RunState,
    SampleRecord,
    Slot,
)
from seqlane.samplesheet import SampleSheetError, parse_sample_sheet
from seqlane.uploads import UploadedObject

FILE_IGNORED = "FileIgnored"
SAMPLE_REUPLOADED = "SampleReuploaded"
SAMPLE_SHEET_REJECTED = "SampleSheetRejected"
UNSORTED_RUN = "_unsorted"  # where keys outside any run folder are recorded


class Disposition(StrEnum):
    IGNORED = "IGNORED"
    WAITING = "WAITING"  # recorded; the sample or the run is not complete yet
    STARTED = "STARTED"
    ALREADY_STARTED = "ALREADY_STARTED"
    REUPLOADED = "REUPLOADED"  # content changed after the manifest was written: a new version started, reported
    RUN_CLOSED = "RUN_CLOSED"
    SHEET_READ = "SHEET_READ"
    SHEET_REJECTED = "SHEET_REJECTED"


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
    events: EventPublisher
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
        kind = classify_key(upload.key)
        if isinstance(kind, IgnoredKey):
            return self._ignore(kind.run_id, upload.key, kind.reason)
        if isinstance(kind, CompletionMarkerKey):
            return self._close_run(kind.run_key.run_id, upload.key)
        if isinstance(kind, SampleSheetKey):
            return self._read_sample_sheet(kind.run_key.run_id, upload.key)
        return self._record_fastq(kind, upload)

    def _record_fastq(self, kind: FastqKey, upload: UploadedObject) -> Outcome:
        run_id, name = kind.run_key.run_id, kind.name
        fastq = FastqFile(
            key=upload.key,
            lane=name.lane or 1,  # lane-merged FASTQs are one lane for DRAGEN's fastq-list
            read=name.read_number,
            size=upload.size,
            etag=upload.etag,
            segment=name.segment,
        )
        sample = self.catalog.record_fastq(run_id, name.sample_id, fastq, upload.ordering)
        missing = missing_reads(sample)
        if missing:  # decided by the sample's own record: one catalog call for most events
            return Outcome(Disposition.WAITING, upload.key, run_id, name.sample_id, f"waiting for {', '.join(missing)}")
        # All its reads are in: a sample the sheet declares with lanes may start; any other needs the closed run.
        run = RunState() if sample.declared_lanes else self.catalog.run_state(run_id)
        if not is_ready(sample, run):
            waiting = "waiting for the run's completion marker or sample sheet"
            return Outcome(Disposition.WAITING, upload.key, run_id, name.sample_id, waiting)
        return self._advance(sample, upload.key)

    def _read_sample_sheet(self, run_id: str, key: str) -> Outcome:
        try:
            sheet = parse_sample_sheet(self.store.get_text(self.ingest_bucket, key), name=key)
        except (SampleSheetError, UnicodeDecodeError) as error:
            problem = str(error)
            self.catalog.record_sample_sheet(run_id, key, problem)
            detail = {"run_id": run_id, "key": key, "error": problem}
            if isinstance(error, SampleSheetError):
                detail |= {"line": error.line, "section": error.section}
            self.events.publish(SAMPLE_SHEET_REJECTED, detail)
            logger.warning("sample sheet rejected", run_id=run_id, key=key, error=problem)
            return Outcome(Disposition.SHEET_REJECTED, key, run_id, detail=problem)
        for declared in sheet.samples:
            self.catalog.declare_sample(
                run_id,
                declared.sample_id,
                declared.lanes,
                sheet.paired,
                declared.modality or sheet.default_modality,
            )
        # Declarations first, the sheet second, then a fresh read: as for the completion marker.
        self.catalog.record_sample_sheet(run_id, key, None)
        started = self._advance_ready_samples(run_id, key)
        logger.info("sample sheet read", run_id=run_id, key=key, samples=len(sheet.samples), started=len(started))
        return Outcome(Disposition.SHEET_READ, key, run_id, started=tuple(started))

    def _close_run(self, run_id: str, marker_key: str) -> Outcome:
        # The marker is written after the run's files, but its event may be handled first: the run folder's
        # listing (once per run, strongly consistent) says which reads each sample must still wait for.
        expected: dict[str, set[Slot]] = defaultdict(set)
        for key in self.store.list_keys(self.ingest_bucket, f"{run_id}/"):
            kind = classify_key(key)
            if isinstance(kind, FastqKey):
                name = kind.name
                expected[name.sample_id].add((name.lane or 1, name.read_number, name.segment))
        for sample_id, slots in expected.items():
            self.catalog.expect_reads(run_id, sample_id, slots)
        # Expectations first, completion second, then a fresh read: a file recorded concurrently is seen either
        # here or by its own handler (which then finds the run complete).
        self.catalog.mark_run_complete(run_id, marker_key)
        started = self._advance_ready_samples(run_id, marker_key)
        logger.info("run closed", run_id=run_id, marker=marker_key, started=len(started))
        return Outcome(Disposition.RUN_CLOSED, marker_key, run_id, started=tuple(started))

    def _advance_ready_samples(self, run_id: str, key: str) -> list[str]:
        run = self.catalog.run_state(run_id)
        started = []
        for sample in self.catalog.samples_of_run(run_id):
            if is_ready(sample, run):
                outcome = self._advance(sample, key)
                if outcome.disposition in (Disposition.STARTED, Disposition.REUPLOADED):
                    started.extend(outcome.started)
        return started

    def _advance(self, sample: SampleRecord, key: str) -> Outcome:
        manifest = Manifest(
            run_id=sample.run_id,
            sample_id=sample.sample_id,
            ingest_bucket=self.ingest_bucket,
            results_bucket=self.results_bucket,
            route=Route(
                modality=sample.modality or self.modality,
                dragen_version=self.dragen_version,
                reference_uri=self.reference_uri,
                region=self.region,
            ),
            files=tuple(sample.files.values()),
        )
        if sample.started and sample.manifest_version == manifest.version:
            # A repeated event, sheet or marker for a sample already running this version: nothing to write.
            return Outcome(Disposition.ALREADY_STARTED, key, sample.run_id, sample.sample_id, manifest.version)
        claim = self.catalog.claim_manifest(
            sample.run_id, sample.sample_id, manifest.version, manifest.manifest_uri, manifest.execution_name
        )
        previous = claim.superseded_from  # set when this is the retry of a re-upload's start
        if claim.outcome is ClaimOutcome.OTHER_VERSION:
            # A file changed after the sample's manifest was written: the running analysis keeps its inputs, and
            # the new content becomes a new version, started and reported, never mixed into the old one.
            previous = claim.claimed_version
            superseded = self.catalog.supersede_manifest(
                sample.run_id,
                sample.sample_id,
                previous=previous,
                version=manifest.version,
                manifest_uri=manifest.manifest_uri,
                execution_name=manifest.execution_name,
            )
            if not superseded:  # another invocation moved the sample on meanwhile; its event decides
                return Outcome(Disposition.WAITING, key, sample.run_id, sample.sample_id, "sample version moved on")
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
        if previous is not None and first:
            self.events.publish(
                SAMPLE_REUPLOADED,
                {
                    "run_id": manifest.run_id,
                    "sample_id": manifest.sample_id,
                    "previous_version": previous,
                    "version": manifest.version,
                    "manifest_uri": manifest.manifest_uri,
                    "execution_name": manifest.execution_name,
                },
            )
        if not first:
            disposition = Disposition.ALREADY_STARTED
        else:
            disposition = Disposition.REUPLOADED if previous is not None else Disposition.STARTED
        return Outcome(disposition, key, sample.run_id, sample.sample_id, manifest.version, (manifest.execution_name,))

    def _ignore(self, run_id: str | None, key: str, reason: str) -> Outcome:
        if self.catalog.record_ignored(run_id or UNSORTED_RUN, key, reason):  # one event per file, not per delivery
            self.events.publish(FILE_IGNORED, {"run_id": run_id or UNSORTED_RUN, "key": key, "reason": reason})
        logger.info("file ignored", key=key, reason=reason)
        return Outcome(Disposition.IGNORED, key, run_id, detail=reason)
