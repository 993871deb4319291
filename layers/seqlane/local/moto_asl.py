"""The one gap of moto's ASL interpreter that seqlane needs closed (getmoto/moto#10076, fixed upstream by PR #10094).

moto 5.2.x leaves `StateTaskService._normalise_parameters/_normalise_response` empty, so service integrations whose
boto parameters are not PascalCase (Batch: jobName, jobQueue...) fail, and `.sync` results are not PascalCase.
This maps both through the operation's botocore input/output shapes, as AWS (and LocalStack) do.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)


@cache
def _operation_model(service_name: str, action: str) -> OperationModel | None:
    service_model = botocore.session.get_session().get_service_model(service_name)
    for operation_name in service_model.operation_names:
        if xform_name(operation_name) == action:
            return service_model.operation_model(operation_name)
    return None


def _normalise_parameters(
    self: StateTaskService,
    parameters: dict,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: StateTaskService,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


def install() -> None:
    """Idempotent: patching twice leaves the same two methods in place."""
    # moto's methods replaced (moto is pinned: internal API).
    StateTaskService._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
    StateTaskService._normalise_response = _normalise_response  # type: ignore[method-assign]
