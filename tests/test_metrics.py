"""Prometheus metrics of operations, in one process, read from ``/metrics`` as a scraper
would: requests by type, bounded operation name and outcome; latency and SQL statements per
operation; error codes; the pool's gauges; subscription event lag. (Several workers:
``tests/test_workers_telemetry.py``.)"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from schema.auth.tokens import issue_token
from schema.engine.extensions.persisted_queries import MANIFEST_FORMAT, sha256
from server import create_app
from tests.conftest import OTHER, OWNER, App, app_settings, prepare_write_db, running_app
from tests.test_subscriptions import ADD_COMMENT, COMMENT_ADDED, publish_post

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """An exposition as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(app: App) -> Samples:
    response = await app.client.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


def value(samples: Samples, sample: str, **labels: str) -> float:
    return samples.get((sample, frozenset(labels.items())), 0.0)


def requests(samples: Samples, kind: str, name: str, outcome: str) -> float:
    return value(samples, "inkwell_graphql_requests_total", type=kind, name=name, outcome=outcome)


async def test_operation_names_are_labels_only_from_a_bounded_set(read_db_url: str) -> None:
    """One name learnt (METRICS_OPERATION_NAMES=1), from an operation that ran; later names
    are ``other``, names of documents that never ran too; no name is ``anonymous``, no
    document ``unknown``."""
    settings = app_settings(read_db_url, metrics_operation_names=1)
    async with running_app(settings) as app:
        sent = [
            ("query Invalid { users(first: 1) { nope } }", "query", "other", "client_error"),
            ("query Learnt { users(first: 1) { totalCount } }", "query", "Learnt", "ok"),
            ("query Later { users(first: 1) { totalCount } }", "query", "other", "ok"),
            ("query Invalid { users(first: 1) { nope } }", "query", "other", "client_error"),
            ("query Learnt { users(first: -1) { totalCount } }", "query", "Learnt", "client_error"),
            ("{ users(first: 1) { totalCount } }", "query", "anonymous", "ok"),
            ("{ users(", "unknown", "unknown", "client_error"),
        ]
        before = await scrape(app)
        for query, *_ in sent:
            await app.client.post("/graphql", json={"query": query})
        after = await scrape(app)
    expected: dict[tuple[str, str, str], int] = {}
    for _, *labels in sent:
        expected[tuple(labels)] = expected.get(tuple(labels), 0) + 1  # type: ignore[arg-type]
    for (kind, name, outcome), count in expected.items():
        grew = requests(after, kind, name, outcome) - requests(before, kind, name, outcome)
        assert grew == count, (kind, name, outcome)
    assert requests(after, "query", "Later", "ok") == 0


async def test_a_manifests_names_are_labels_from_the_start(
    read_db_url: str, tmp_path: Path
) -> None:
    query = "query Listed { users(first: 1) { totalCount } }"
    manifest = tmp_path / "operations.json"
    operations = [{"id": sha256(query), "name": "Listed", "type": "query", "body": query}]
    manifest.write_text(
        json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": operations})
    )
    settings = app_settings(read_db_url, operation_manifest=manifest, metrics_operation_names=0)
    async with running_app(settings) as app:
        before = await scrape(app)
        await app.client.post("/graphql", json={"query": query})
        refused = await app.client.post(
            "/graphql", json={"query": "query Elsewhere { viewer { id } }"}
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
        after = await scrape(app)
    assert requests(after, "query", "Listed", "ok") - requests(before, "query", "Listed", "ok") == 1
    grew = requests(after, "unknown", "unknown", "client_error") - requests(
        before, "unknown", "unknown", "client_error"
    )
    assert grew == 1


async def test_latency_statements_and_error_codes_per_operation(api: App) -> None:
    before = await scrape(api)
    body = await api.gql(
        "query Nested { users(first: 2) { nodes { posts(first: 2) { nodes { id } } } } }"
    )
    statements = body["extensions"]["sql"]["statements"]
    await api.gql("query Broken { users(first: 1) { nope } }")
    after = await scrape(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("inkwell_graphql_request_duration_seconds_count", type="query") == 2
    assert grew("inkwell_graphql_request_duration_seconds_sum", type="query") > 0
    assert grew("inkwell_graphql_sql_statements_count", type="query") == 2
    assert grew("inkwell_graphql_sql_statements_sum", type="query") == statements >= 2
    assert grew("inkwell_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    size = value(after, "inkwell_db_pool_size")
    assert size == (api.settings.db_pool_size if not api.settings.is_sqlite else size) > 0
    assert value(after, "inkwell_db_pool_checked_out") == 0  # none lent out between requests
    assert value(after, "inkwell_process_resident_memory_bytes") > 0


def test_a_delivered_event_is_measured_as_lag(fresh_db_url: str) -> None:
    asyncio.run(prepare_write_db(fresh_db_url))
    settings = app_settings(fresh_db_url)
    owner = {"Authorization": f"Bearer {issue_token(settings, OWNER).token}"}
    other = {"Authorization": f"Bearer {issue_token(settings, OTHER).token}"}
    lag = "inkwell_subscription_event_lag_seconds_count"
    with TestClient(create_app(settings)) as http:
        post = publish_post(http, owner, "Lag")
        before = value(parse(http.get("/metrics").text), lag)
        with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {}})
            assert ws.receive_json()["type"] == "connection_ack"
            payload = {"query": COMMENT_ADDED, "variables": {"p": post}}
            ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
            while http.app.state.broker.subscription_count < 1:  # type: ignore[attr-defined]
                time.sleep(0.01)
            body = {"query": ADD_COMMENT, "variables": {"p": post, "b": "Measured"}}
            http.post("/graphql", json=body, headers=other)
            assert ws.receive_json()["payload"]["data"]["commentAdded"]["body"] == "Measured"
        after = parse(http.get("/metrics").text)
    assert value(after, lag) - before == 1
    assert value(after, "inkwell_subscription_event_lag_seconds_sum") > 0
