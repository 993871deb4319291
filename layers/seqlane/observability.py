"""The one place Logger, Tracer and Metrics are created; every module imports them from here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()


class _DeferredTracer:
    """Powertools' Tracer, created at the first traced call instead of at import: it loads the X-Ray SDK (and
    botocore with it), which is most of a handler's import time. It still patches boto clients before the handler
    creates any, since the handler runs inside the first traced call."""

    @functools.cached_property
    def _tracer(self):
        from aws_lambda_powertools import Tracer

        return Tracer()

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def traced(event: Any, context: Any) -> Any:
            return self._traced_handler(handler)(event, context)

        return traced

    @functools.cache  # noqa: B019 - one tracer per process, never collected
    def _traced_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return self._tracer.capture_lambda_handler(handler)


tracer = _DeferredTracer()
