"""OpenTelemetry tracing: a span per operation, per level and batch resolver of a planned
query, and per SQL statement, continuing the client's W3C ``traceparent``.

Off by default (``TRACING=false``): then ``configure`` returns ``None``, nothing of
OpenTelemetry is imported, the schema has no tracing extension and the engine no listener,
so the untraced server runs exactly the code it ran before tracing existed. On, the pieces
are ``tracing_operation`` (the operation's span, a schema extension), ``tracing_executor``
(levels and batch resolvers) and ``tracing_sql`` (statements), all with one tracer.

Configuration is OpenTelemetry's own, from its standard environment variables, read by the
SDK: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the service is ``inkwell``
unless they name one), ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` (default: always,
or as the parent decided), ``OTEL_PROPAGATORS``, ``OTEL_BSP_*`` (the batch processor's queue
and delays), ``OTEL_EXPORTER_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``..._HEADERS``, ``..._TIMEOUT``, ``..._COMPRESSION`` (OTLP over HTTP/protobuf, default
``http://localhost:4318/v1/traces``), ``OTEL_SDK_DISABLED``. The exporter is chosen by
``OTEL_TRACES_EXPORTER`` (a setting, so a wrong value is refused at start-up): ``otlp``,
``console`` or ``none`` (spans made and dropped). Spans go out from a background thread
(the SDK's ``BatchSpanProcessor``), started in the app's lifespan and flushed when it ends.

Source: OpenTelemetry specification, "Environment Variable Specification"; OpenTelemetry
Python docs, ``opentelemetry.sdk.trace`` (``TracerProvider``, ``BatchSpanProcessor``),
``opentelemetry.sdk.resources``, ``opentelemetry.exporter.otlp.proto.http``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from strawberry.extensions import SchemaExtension

    from schema.engine.execution import InkwellExecutor

#: The instrumentation scope of Inkwell's spans.
SCOPE = "inkwell"
#: ``service.name`` when neither ``OTEL_SERVICE_NAME`` nor ``OTEL_RESOURCE_ATTRIBUTES`` names
#: one (the SDK's own default is ``unknown_service``).
DEFAULT_SERVICE = "inkwell"


class Tracing:
    """The app's tracing: a tracer from ``provider``, and the pieces that use it, for the
    database at ``database_url`` (its statements' spans name it).

    ``exporter`` (``otlp``, ``console``, ``none``) is set when the provider was made here:
    ``start`` then adds the exporter and ``stop`` shuts the provider down. A provider given
    by the caller (a test's, with an in-memory exporter) is left as it is.
    """

    def __init__(
        self, provider: TracerProvider, database_url: str, exporter: str | None = None
    ) -> None:
        from opentelemetry import propagate
        from sqlalchemy.engine import make_url

        from schema.telemetry.tracing_sql import SqlSpans

        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)
        #: Each operation's statements' spans (its ``SqlStats.observer``).
        self.statements = SqlSpans(self.tracer, make_url(database_url))
        #: The headers a trace comes in (the propagators ``OTEL_PROPAGATORS`` configured), as
        #: ASGI names headers: lower-case bytes.
        fields = propagate.get_global_textmap().fields
        self.fields = frozenset(field.lower().encode("latin-1") for field in fields)
        self._exporter = exporter
        self._exporting = False

    def extension(self) -> SchemaExtension:
        """The operation's span, a new schema extension per operation (``build_schema``
        puts it outermost)."""
        from schema.telemetry.tracing_operation import TracedOperation

        return TracedOperation(self.tracer, self.fields, self.statements.statement)

    def executor(self) -> type[InkwellExecutor]:
        """The schema's ``execution_context_class``: planned queries with spans."""
        from schema.telemetry.tracing_executor import executor_class

        return executor_class(self.tracer)

    def start(self) -> None:
        """In the lifespan: the exporter's thread (a provider made here)."""
        if self._exporter not in (None, "none") and not self._exporting:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            assert self._exporter is not None
            self.provider.add_span_processor(BatchSpanProcessor(_exporter(self._exporter)))
            self._exporting = True

    def stop(self) -> None:
        """At the lifespan's end: export what is queued and stop (a provider made here)."""
        if self._exporter is not None:
            self.provider.shutdown()


def configure(settings: Settings, provider: TracerProvider | None = None) -> Tracing | None:
    """The app's tracing for ``settings``: ``None`` when ``TRACING`` is off; else with
    ``provider`` when given, or a ``TracerProvider`` made from the ``OTEL_*`` variables (the
    module docstring) with ``OTEL_TRACES_EXPORTER``'s exporter, added by ``Tracing.start``.
    Raises nothing of its own: the SDK logs an ``OTEL_*`` value it cannot use (an unknown
    sampler) and goes on with its default."""
    if not settings.tracing:
        return None
    if provider is not None:
        return Tracing(provider, settings.database_url)
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    return Tracing(
        TracerProvider(resource=resource), settings.database_url, settings.otel_traces_exporter
    )


def _exporter(name: str) -> SpanExporter:
    """The exporter ``OTEL_TRACES_EXPORTER`` names: ``console`` (JSON lines on stdout) or
    ``otlp`` (OTLP over HTTP/protobuf, configured by the ``OTEL_EXPORTER_OTLP_*``
    variables)."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
