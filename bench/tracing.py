"""Tracing's cost on W1 and W2: the server with ``TRACING`` on and off, beside the code
without tracing, interleaved so that the box's drift cancels (issue 18).

    python bench/tracing.py --before ../before --rounds 8
    python bench/tracing.py --collect 4318      # only the stand-in collector, until Ctrl-C

Method
------
As ``bench/ab.py`` measures (and with its pieces: the harness's request bodies, the wrk script,
the readiness and answer checks): every variant serves at once, started as ``bench/peers.py``
starts Inkwell (``peers.ENVIRONMENT``, ``peers.UVICORN_FLAGS``: one uvicorn worker, uvloop,
httptools, the harness's ``bench`` database, signed in as an admin), all pinned to CPU 0; only
one is loaded at a time, by wrk on CPU 1 (16 connections); each round runs every workload on
every variant for ``--warmup`` then ``--duration`` seconds, the variants' order reversed every
other round. The variants:

- ``before``: the checkout ``--before`` (this code without tracing);
- ``off``: this checkout, ``TRACING=false`` (the default);
- ``on``: ``TRACING=true``, every span exported as in production: the SDK's batch processor,
  OTLP over HTTP/protobuf, to a stand-in collector in this process (on CPU 1, beside wrk)
  that reads each export, counts its spans and answers 200;
- ``unexported`` (``--variants`` to include it): ``TRACING=true`` with
  ``OTEL_TRACES_EXPORTER=none``: the spans made and dropped, the instrumentation alone;
- ``sampled`` (``--variants`` to include it): as ``on``, with one trace in ten sampled
  (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.1``).

Wall-clock throughput moves with the box's load by more than tracing costs W1 (bench/RESULTS.md,
"Tracing overhead"); ``bench/instructions.py`` counts what it costs, whatever the load, with
the collector alone (``--collect PORT``) receiving the spans, so that the export's own work is
counted too (callgrind counts every thread)::

    python bench/tracing.py --collect 4318 &
    export TRACING=true OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/on/v1/traces
    python bench/instructions.py --root ../before --root . --workloads W1

Reports, per workload, each variant's median req/s and the medians over rounds of its req/s
÷ ``before``'s and ÷ ``off``'s in the same round; and the spans the collector received per
operation and the operations per request sent, for each exporting variant (a check that
every sampled operation's spans arrived, none dropped). Exits 1 with the cause when a server
does not start, an answer is wrong or no span arrives. Needs wrk, taskset and the ``bench``
database (``python3 ../shared/peers/seed.py --users 1000``).
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import ab
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

#: Each variant: the checkout it runs ("before" or this one) and its environment.
VARIANTS = {
    "before": {"TRACING": "false"},
    "off": {"TRACING": "false"},
    "on": {"TRACING": "true", "OTEL_TRACES_EXPORTER": "otlp"},
    "unexported": {"TRACING": "true", "OTEL_TRACES_EXPORTER": "none"},
    "sampled": {
        "TRACING": "true",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
}
#: OTLP's SPAN_KIND_SERVER: an operation's span (``schema.telemetry.tracing_operation``).
SERVER = 2


class Collector(http.server.BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector: reads each export, counts its spans (and of them the
    operations'), answers 200."""

    #: Per variant (the first part of the export's path): spans, operations' spans, exports.
    received: ClassVar[dict[str, list[int]]] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        spans = [
            span
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        operations = sum(span.kind == SERVER for span in spans)
        with Collector.lock:
            counts = Collector.received.setdefault(self.path.split("/")[1], [0, 0, 0])
            counts[0] += len(spans)
            counts[1] += operations
            counts[2] += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per export otherwise


def collect(port: int) -> int:
    """Run the stand-in collector on ``port`` until interrupted (for ``bench/instructions.py``
    with ``TRACING=true``: the export's own instructions are counted too); prints what it
    received."""
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", port), Collector)
    try:
        collector.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for variant, (spans, operations, exports) in Collector.received.items():
            print(f"{variant}: {spans} spans, {operations} operations, {exports} exports")
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path)
    parser.add_argument("--collect", type=int, metavar="PORT", help="only run the collector")
    parser.add_argument("--variants", default="before,off,on")
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--base-port", type=int, default=8811)
    args = parser.parse_args(argv)
    if args.collect is not None:
        return collect(args.collect)
    if args.before is None:
        parser.error("--before is required")
    here = Path(__file__).resolve().parent.parent
    variants = args.variants.split(",")
    if variants[0] != "before" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: 'before' first, then some of {', '.join(list(VARIANTS)[1:])}")
    names = args.workloads.split(",")
    os.sched_setaffinity(0, {1})  # the collector's thread runs beside wrk, not the servers
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    collected = f"http://127.0.0.1:{collector.server_address[1]}"
    harness = ab.Harness.prepare(here)
    folder = Path(tempfile.mkdtemp(prefix="inkwell-tracing-"))
    workloads = ab.scripts(names, harness, folder)
    ports = {variant: args.base_port + i for i, variant in enumerate(variants)}
    servers = [
        ab.serve(
            args.before.resolve() if variant == "before" else here,
            port,
            folder / f"server-{variant}.log",
            {
                **VARIANTS[variant],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collected}/{variant}/v1/traces",
            },
        )
        for variant, port in ports.items()
    ]
    try:
        ab.check(ports, names, harness)
        rates, sent = ab.interleave(ports, workloads, args.rounds, args.warmup, args.duration)
    finally:
        ab.stop(servers)  # each lifespan's end flushes the spans still queued
        collector.shutdown()
    for variant in variants:
        sent[variant] += 2 * len(names)  # the checks' answers: one to wait, one to check
    print(f"\nMedians of {args.rounds} rounds, {args.duration:g} s each, c=16, load "
          f"{os.getloadavg()[0]:.2f} at the end (1-minute average):\n")  # fmt: skip
    others = [v for v in variants if v != "before"]
    header = " | ".join(f"{v} req/s" for v in variants)
    ratios = " | ".join(f"{v} ÷ before" for v in others)
    print(f"| workload | {header} | {ratios} | on ÷ off |")
    print("|---|" + "---:|" * (len(variants) + len(others) + 1))
    for name in names:
        cells = [f"{statistics.median(rates[name, v]):.1f}" for v in variants]
        for variant in others:
            cells.append(f"{ab.ratio(rates, name, variant, 'before'):.3f}")
        on_off = ab.ratio(rates, name, "on", "off") if {"on", "off"} <= set(variants) else None
        cells.append(f"{on_off:.3f}" if on_off is not None else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for variant in variants:
        if VARIANTS[variant].get("OTEL_TRACES_EXPORTER") != "otlp":
            continue
        spans, operations, exports = Collector.received.get(variant, [0, 0, 0])
        if not operations:
            raise SystemExit(f"no span of {variant} reached the collector: see {folder}")
        print(
            f"`{variant}`: the collector received {spans} spans in {exports} exports, "
            f"{spans / operations:.2f} per operation; {operations} operations of about "
            f"{sent[variant]:.0f} requests sent (from wrk's rates)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
