"""Ingest handler: S3 "Object Created" events queued on SQS -> seqlane.ingest.IngestService, one upload at a time.

A message that fails for a transient reason is reported back to SQS alone (partial batch response), retried, then
dead-lettered. A message that can never succeed is rejected once: logged with its reason, counted in the
MessageRejected metric, and not retried. That is a body that is not JSON or not a complete S3 upload event, an
upload from another region's bucket, or a key the catalog cannot hold.

The same queue carries the function's own work messages (seqlane.closing): a completion marker or a sample sheet
starts work that would grow with the run, split into messages of bounded work.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from seqlane.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    from seqlane.adapters.factory import ingest_service
    from seqlane.closing import UnusableWork, is_work
    from seqlane.ingest import UnusableUpload, WrongRegion
    from seqlane.settings import IngestSettings
    from seqlane.uploads import UnsupportedEvent, uploads_from_message

    service = ingest_service(IngestSettings.from_env())

    def reject(record: SQSRecord, reason: str) -> None:
        logger.error(
            "message rejected, not retried", reason=reason, message_id=record.message_id, body=record.body[:500]
        )
        metrics.add_metric(name="MessageRejected", unit=MetricUnit.Count, value=1)

    def handle_record(record: SQSRecord) -> None:
        try:
            message = json.loads(record.body)
            if is_work(message):  # a bounded part of closing a run or reading a sheet, sent by this function
                try:
                    outcome = service.handle_work(message)
                except UnusableWork as error:
                    return reject(record, str(error))
                metrics.add_metric(name="WorkDone", unit=MetricUnit.Count, value=1)
                logger.info("work done", kind=outcome.detail, run_id=outcome.run_id, started=len(outcome.started))
                return None
            uploads = uploads_from_message(message)
        except json.JSONDecodeError as error:
            return reject(record, f"message body is not JSON ({error})")
        except UnsupportedEvent as error:
            return reject(record, str(error))
        except (KeyError, TypeError, ValueError, AttributeError) as error:  # a field missing or of the wrong type
            return reject(record, f"not a complete S3 upload event ({type(error).__name__}: {error})")
        for upload in uploads:
            try:
                outcome = service.handle(upload)
            except (WrongRegion, UnusableUpload) as error:
                reject(record, str(error))
                continue
            metrics.add_metric(name=f"Upload{outcome.disposition.title()}", unit=MetricUnit.Count, value=1)
        return None

    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
