"""Step Functions' own "Execution Status Change" events, which AWS puts on the default bus and moto does not.

When an execution of moto's ASL interpreter ends (BaseExecutionWorkerCommunication.terminated, the one place every
end passes through: success, failure, timeout, stop), this announces it on the region's default bus in the shape AWS
documents (detail = DescribeExecution: executionArn, stateMachineArn, name, status, startDate, stopDate, input,
output, error, cause), so the template's rule routes it to the catalog queue as in AWS. moto is pinned, since this is
an internal API.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

DETAIL_TYPE = "Step Functions Execution Status Change"
logger = logging.getLogger(__name__)
_installed: dict[str, Any] = {}  # the original method while installed


def status_change_detail(execution: Any) -> dict[str, Any]:
    """The event detail AWS sends when an execution ends."""
    output = execution.output
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data),
        "inputDetails": {"included": True},
        "output": None if output is None else (output if isinstance(output, str) else json.dumps(output)),
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }


def _millis(moment: datetime.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def install() -> None:
    if _installed:
        return
    original = _installed["terminated"] = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        execution = self.execution
        try:
            events_backends[execution.account_id][execution.region_name].put_events(
                [
                    {
                        "Source": "aws.states",
                        "DetailType": DETAIL_TYPE,
                        "Detail": json.dumps(status_change_detail(execution), default=str),
                        "Resources": [execution.exec_arn],
                    }
                ]
            )
        except Exception:  # an announcement that fails must not change how the execution ended
            logger.exception("could not announce the end of execution %s", execution.exec_arn)

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]


def uninstall() -> None:
    if _installed:
        BaseExecutionWorkerCommunication.terminated = _installed.pop("terminated")  # type: ignore[method-assign]
