"""The handlers' tracer is created at the first traced call, not at import."""

import sys
from types import SimpleNamespace

from seqlane.observability import _DeferredTracer


def test_observability_deferred_tracer_traces_the_handler_once_created(monkeypatch):
    # Given tracing disabled (no X-Ray daemon here) and a handler decorated at import
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    deferred = _DeferredTracer()
    calls = []

    @deferred.capture_lambda_handler
    def handler(event, context):
        calls.append(event)
        return {"echo": event}

    # Then decorating created no Tracer yet
    assert "_tracer" not in vars(deferred)

    # When the handler is invoked twice
    context = SimpleNamespace(function_name="f", aws_request_id="r")
    results = [handler({"n": 1}, context), handler({"n": 2}, context)]

    # Then it ran each time with its result, through one Tracer created on the first call
    assert results == [{"echo": {"n": 1}}, {"echo": {"n": 2}}]
    assert calls == [{"n": 1}, {"n": 2}]
    assert "_tracer" in vars(deferred)
    assert "aws_xray_sdk.core" in sys.modules
