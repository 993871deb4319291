"""Catalog handler: AWS Batch "Batch Job State Change" events queued on SQS -> seqlane.catalog.CatalogService.

The same event delivered twice is answered from the idempotency record: the catalog changes once and
AnalysisSucceeded is published once.
"""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from seqlane.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    from seqlane.adapters.factory import handle_job_state_once
    from seqlane.catalog import NotASeqlaneJob
    from seqlane.settings import CatalogSettings

    settings = CatalogSettings.from_env()

    def handle_record(record: SQSRecord) -> None:
        job_event = EventBridgeEvent(json.loads(record.body))
        if job_event.source != "aws.batch" or job_event.detail_type != "Batch Job State Change":
            logger.error(
                "not a Batch job state change, not retried",
                source=job_event.source,
                detail_type=job_event.detail_type,
                message_id=record.message_id,
            )
            return
        try:
            handle_job_state_once(settings, job_event.detail, context)
        except NotASeqlaneJob as error:
            logger.error("job event rejected, not retried", reason=str(error), message_id=record.message_id)

    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
