"""The whole pipeline on the embedded AWS, for tests and benchmarks: a `LocalHost` (template.yaml deployed into a
moto server on 127.0.0.1, the real handlers fed by the real queues, the real ASL executed, Batch jobs run by the
real job runner as subprocesses) and a `LocalClient` talking to it over the AWS APIs.

    with LocalPipeline(template_path, region, scratch=..., job_environment={"DRAGEN_BIN": ...}) as pipeline:
        pipeline.upload("RUN1/S1_S1_L001_R1_001.fastq.gz", data)
        pipeline.run_until_idle()
        pipeline.seqlane_events()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqlane.local.client import REFERENCE_PREFIX, LocalClient
from seqlane.local.host import LocalHost
from seqlane.local.stack import REFERENCE_BUCKET


class LocalPipeline:
    def __init__(
        self,
        template_path: Path,
        region: str,
        scratch: Path,
        *,
        job_environment: dict[str, str] | None = None,
        reference_files: dict[str, bytes] | None = None,
        workers: int | None = None,
    ) -> None:
        self.host = LocalHost(template_path, region, scratch=scratch, job_environment=job_environment, workers=workers)
        self.region = region
        self.reference_files = reference_files or {}

    def __enter__(self) -> LocalPipeline:
        self.host.start()
        try:
            self.client = LocalClient(self.host.endpoint, self.region)
            self.s3 = self.client.s3
            for key, body in self.reference_files.items():
                self.s3.put_object(Bucket=REFERENCE_BUCKET, Key=f"{REFERENCE_PREFIX}{key}", Body=body)
            self.client.observe_events()
        except BaseException:
            self.host.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.host.stop()

    @property
    def ingest_bucket(self) -> str:
        return self.client.ingest_bucket

    @property
    def results_bucket(self) -> str:
        return self.client.results_bucket

    def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.ingest_bucket, Key=key, Body=body)

    def run_until_idle(self, timeout: float = 120.0) -> None:
        self.client.wait_until_idle(timeout=timeout)

    def executions(self) -> list[dict[str, Any]]:
        return self.client.executions()

    def catalog_items(self, run_id: str) -> list[dict[str, Any]]:
        return self.client.catalog_items(run_id)

    def sample(self, run_id: str, sample_id: str) -> dict[str, Any]:
        return next(item for item in self.catalog_items(run_id) if item["sk"] == f"SAMPLE#{sample_id}")

    def seqlane_events(self) -> list[dict[str, Any]]:
        return self.client.observed_events()
