"""Build the domain services from validated settings. Cached per settings, so a warm Lambda reuses clients."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import boto3
from botocore.config import Config

from seqlane.adapters.aws import EventBridgePublisher, S3ObjectStore, SqsWorkQueue, StepFunctionsOrchestrator
from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.catalog import CatalogService
from seqlane.ingest import IngestService
from seqlane.settings import CatalogSettings, IngestSettings


# Region pinning in code: every client talks to the stack's own region, whatever the caller's defaults say.
def _client(service: Literal["dynamodb", "events", "s3", "sqs", "stepfunctions"], region: str):
    return boto3.client(service, region_name=region, config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


@cache
def ingest_service(settings: IngestSettings) -> IngestService:
    return IngestService(
        catalog=DynamoCatalog(settings.catalog_table, _client("dynamodb", settings.region)),
        store=S3ObjectStore(_client("s3", settings.region)),
        orchestrator=StepFunctionsOrchestrator(settings.state_machine_arn, _client("stepfunctions", settings.region)),
        events=EventBridgePublisher(settings.event_bus_name, _client("events", settings.region)),
        ingest_bucket=settings.ingest_bucket,
        results_bucket=settings.results_bucket,
        region=settings.region,
        dragen_version=settings.dragen_version,
        reference_uri=settings.reference_uri,
        modality=settings.modality,
        work=SqsWorkQueue(settings.ingest_queue_url, _client("sqs", settings.region)),
    )


@cache
def catalog_service(settings: CatalogSettings) -> CatalogService:
    return CatalogService(
        catalog=DynamoCatalog(settings.catalog_table, _client("dynamodb", settings.region)),
        store=S3ObjectStore(_client("s3", settings.region)),
        events=EventBridgePublisher(settings.event_bus_name, _client("events", settings.region)),
        results_bucket=settings.results_bucket,
    )


@cache
def _idempotency(settings: CatalogSettings):
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table, boto3_client=_client("dynamodb", settings.region)
    )
    # One job reaches one final state once; the same event delivered again is answered from the record.
    config = IdempotencyConfig(event_key_jmespath="[jobId, status]", expires_after_seconds=7 * 24 * 3600)
    return persistence, config


def handle_job_state_once(settings: CatalogSettings, detail: dict[str, Any], lambda_context=None) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import idempotent_function

    persistence, config = _idempotency(settings)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    service = catalog_service(settings)

    @idempotent_function(data_keyword_argument="detail", persistence_store=persistence, config=config)
    def handle(detail: dict[str, Any]) -> dict[str, Any]:
        return service.handle_job_state(detail)

    return handle(detail=detail)
