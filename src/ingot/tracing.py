"""Optional OpenTelemetry: one server span per HTTP request when an exporter is configured.

Imported lazily and never required: without ``INGOT_OTEL_EXPORTER`` (or without the
``otel`` extra installed) the request path does not touch OpenTelemetry at all. The OTLP
exporter reads the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_SERVICE_NAME`` env.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

log = logging.getLogger("ingot.tracing")


def make_tracer(exporter: str) -> tuple[Any | None, Callable[[], None]]:
    """A tracer for ``exporter`` ('console' or 'otlp') and the function that flushes it at
    shutdown; ``(None, no-op)`` when off or the packages are missing."""
    if exporter == "none":
        return None, _nothing
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter: Any = OTLPSpanExporter()
        else:
            span_exporter = ConsoleSpanExporter()
    except ImportError as exc:
        log.warning("INGOT_OTEL_EXPORTER=%s but OpenTelemetry is not installed (pip install 'ingot[otel]'): %s",
                    exporter, exc)
        return None, _nothing
    service = os.environ.get("OTEL_SERVICE_NAME", "ingot")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    log.info("OpenTelemetry spans on (%s exporter)", exporter)
    # Flushed from the app's shutdown, not atexit: uvicorn re-raises SIGTERM after a
    # graceful shutdown, so atexit handlers never run under an orchestrator.
    return provider.get_tracer("ingot"), provider.shutdown


def _nothing() -> None:
    return None
