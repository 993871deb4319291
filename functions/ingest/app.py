"""Ingest handler: S3 "Object Created" events queued on SQS -> seqlane.ingest.IngestService, one upload at a time.

A message that fails for a transient reason is reported back to SQS alone (partial batch response), retried, then
dead-lettered. A message that can never succeed (not an S3 upload, another region's bucket) is logged with the
reason and not retried.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from seqlane.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    from seqlane.adapters.factory import ingest_service
    from seqlane.settings import IngestSettings

    service = ingest_service(IngestSettings.from_env())

    def handle_record(record: SQSRecord) -> None:
        from seqlane.ingest import WrongRegion
        from seqlane.uploads import UnsupportedEvent, uploads_from_message

        try:
            uploads = uploads_from_message(json.loads(record.body))
            for upload in uploads:
                outcome = service.handle(upload)
                metrics.add_metric(name=f"Upload{outcome.disposition.title()}", unit=MetricUnit.Count, value=1)
        except (json.JSONDecodeError, UnsupportedEvent, WrongRegion) as error:
            reason = f"message body is not JSON ({error})" if isinstance(error, json.JSONDecodeError) else str(error)
            logger.error(
                "message rejected, not retried",
                reason=reason,
                message_id=record.message_id,
                body=record.body[:500],
            )
            metrics.add_metric(name="MessageRejected", unit=MetricUnit.Count, value=1)

    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
