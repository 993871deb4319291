"""Catalog handler: the ends of analysis attempts, queued on SQS -> seqlane.catalog.CatalogService.

- AWS Batch "Batch Job State Change" (SUCCEEDED/FAILED of a DRAGEN job); the same event twice is answered from the
  idempotency record.
- Step Functions "Execution Status Change" (FAILED/TIMED_OUT/ABORTED of an analysis execution).

A message that fails for a transient reason is reported back to SQS alone and retried, then dead-lettered. A message
that can never succeed (not JSON, not one of these events, missing seqlane fields) is rejected once: logged with
its reason, counted in the MessageRejected metric, and not retried.
"""

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from seqlane.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)
BATCH_JOB = ("aws.batch", "Batch Job State Change")
EXECUTION = ("aws.states", "Step Functions Execution Status Change")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    from seqlane.adapters.factory import catalog_service, handle_job_state_once
    from seqlane.catalog import UnusableEvent
    from seqlane.settings import CatalogSettings

    settings = CatalogSettings.from_env()

    def handle_record(record: SQSRecord) -> None:
        try:
            body = json.loads(record.body)
            if not isinstance(body, dict):
                raise UnusableEvent("message body is not a JSON object")
            job_event = EventBridgeEvent(body)
            kind = (job_event.source, job_event.detail_type)
            if kind == BATCH_JOB:
                handle_job_state_once(settings, job_event.detail, context)
            elif kind == EXECUTION:
                catalog_service(settings).handle_execution_status(job_event.detail)
            else:
                raise UnusableEvent(f"not a Batch job or Step Functions execution event: {kind[0]}/{kind[1]}")
        except (json.JSONDecodeError, UnusableEvent) as error:
            reason = f"message body is not JSON ({error})" if isinstance(error, json.JSONDecodeError) else str(error)
            logger.error("message rejected, not retried", reason=reason, message_id=record.message_id)
            metrics.add_metric(name="MessageRejected", unit=MetricUnit.Count, value=1)

    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
