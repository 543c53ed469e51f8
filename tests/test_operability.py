"""H7: Prometheus metrics at /metrics, JSON log lines that say which request they belong to,
and a shutdown that lets the requests in flight finish."""

from __future__ import annotations

import io
import json
import logging
import signal
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.base import utcnow
from app.db.models import OutboxEmail, OutboxStatus
from app.db.scope import SYSTEM
from app.db.session import Database
from app.files.certificates import CERTIFICATE_PATH
from app.logs import JsonFormatter, PlainFormatter, logging_config
from app.settings import Environment, Settings
from tests.served import served
from tests.support import PORTAL, STAFF, count_statements, make_tenant, staff_token

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


async def test_h7_requests_latency_and_errors_by_endpoint_operation_and_code(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.post(STAFF, json={"query": "query Ping { __typename }"})).is_success
    await client.post(PORTAL, json={"query": "{"})
    nobody = "00000000-0000-0000-0000-000000000000"
    await client.get(f"{CERTIFICATE_PATH}/{nobody}?account={nobody}&expires=1&signature=x")
    await client.post(STAFF, content=b"\xff", headers={"content-type": "application/json"})
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    count = "portal_request_duration_seconds_count"
    assert grew(count, endpoint="staff", operation="Ping") == 3
    assert grew("portal_request_duration_seconds_sum", endpoint="staff", operation="Ping") > 0
    assert grew("portal_responses_total", endpoint="staff", status="200") >= 3
    assert grew("portal_errors_total", endpoint="portal", code="GRAPHQL_PARSE_FAILED") == 1
    assert grew("portal_errors_total", endpoint="certificate", code="NOT_FOUND") == 1
    assert grew("portal_errors_total", endpoint="staff", code="BAD_REQUEST") == 1
    assert grew("portal_responses_total", endpoint="certificate", status="404") == 1


async def test_h7_operation_names_a_client_makes_up_never_grow_the_labels_without_bound(
    client: httpx.AsyncClient,
) -> None:
    for n in range(5):
        await client.post(STAFF, json={"query": f"query Made{n} {{ __typename }}"})
    await client.post("/no/such/path/" + "x" * 50)
    scraped = await scrape(client)
    endpoints = {dict(labels).get("endpoint") for (_, labels) in scraped}
    assert not any(e and "/" in e for e in endpoints)
    assert value(scraped, "portal_request_duration_seconds_count", endpoint="other", operation="")


async def test_h7_the_outbox_is_read_when_prometheus_scrapes(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = utcnow()
    async with db.transaction(SYSTEM) as session:
        for status, due in (
            (OutboxStatus.PENDING, now - timedelta(minutes=5)),
            (OutboxStatus.PENDING, now + timedelta(minutes=5)),
            (OutboxStatus.FAILED, now - timedelta(hours=2)),
            (OutboxStatus.SENT, now - timedelta(hours=3)),
        ):
            session.add(
                OutboxEmail(
                    kind="test",
                    to_address="jo@example.com",
                    subject="Hello",
                    text_body="Hello",
                    html_body="<p>Hello</p>",
                    status=status,
                    next_attempt_at=due,
                )
            )
    scraped = await scrape(client)
    assert value(scraped, "portal_outbox_emails_pending") == 2
    assert value(scraped, "portal_outbox_emails_failed") == 1
    assert 300 <= value(scraped, "portal_outbox_oldest_due_seconds") < 400


async def test_h7_no_request_runs_a_statement_for_metrics_and_connections_are_counted(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    _, user = await make_tenant(db, slug="acme")
    headers = {"authorization": f"Bearer {await staff_token(db, settings, user)}"}
    await client.post(STAFF, json={"query": "{ viewer { name } }"}, headers=headers)
    with count_statements(db) as counted:
        await client.post(STAFF, json={"query": "{ viewer { name } }"}, headers=headers)
    assert counted.statements and not any("email_outbox" in s for s in counted.statements)
    idle = value(await scrape(client), "portal_database_connections_in_use")
    async with db.session(SYSTEM) as session:
        await session.connection()
        held = value(await scrape(client), "portal_database_connections_in_use")
    assert held == idle + 1


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the app logs while the test runs, as `portal serve` writes it outside development."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_h7_each_request_ends_with_a_json_line_of_its_id_tenant_operation_and_time(
    client: httpx.AsyncClient, db: Database, settings: Settings, json_log: io.StringIO
) -> None:
    tenant, user = await make_tenant(db, slug="acme")
    headers = {"authorization": f"Bearer {await staff_token(db, settings, user)}"}
    response = await client.post(
        STAFF, json={"query": "query Viewer { viewer { name } }"}, headers=headers
    )
    [line] = [line for line in lines(json_log) if line["logger"] == "app.requests"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["tenant"] == str(tenant.id)
    assert line["operation"] == "Viewer"
    assert line["status"] == 200 and line["method"] == "POST" and line["path"] == STAFF
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "INFO" and str(line["time"]).endswith("+00:00")


async def test_h7_every_line_about_a_request_carries_its_id(
    client: httpx.AsyncClient, db: Database, settings: Settings, json_log: io.StringIO
) -> None:
    _, user = await make_tenant(db, slug="acme")
    async with db.engine.begin() as connection:
        # The database loses a table under a running service: a real unexpected failure.
        await connection.exec_driver_sql("ALTER TABLE customers RENAME TO customers_gone")
    response = await client.post(
        STAFF,
        json={"query": "{ customers { edges { node { id } } } }"},
        headers={"authorization": f"Bearer {await staff_token(db, settings, user)}"},
    )
    request_id = response.headers["x-request-id"]
    [failure] = [line for line in lines(json_log) if line["logger"] == "app.errors"]
    assert failure["request_id"] == request_id and failure["level"] == "ERROR"
    assert "customers" in str(failure["exception"])


def test_h7_logs_are_plain_text_in_development_and_json_elsewhere() -> None:
    def formatter(env: Environment) -> object:
        config = logging_config(Settings(env=env))
        return config["formatters"][config["handlers"]["stderr"]["formatter"]]["()"]

    assert formatter(Environment.DEVELOPMENT) is PlainFormatter
    assert formatter(Environment.TEST) is JsonFormatter
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "careful %s", ("now",), None)
    assert PlainFormatter().format(record) == "WARNING app: careful now"
    assert json.loads(JsonFormatter().format(record))["message"] == "careful now"


def _read_response(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_h7_a_request_in_flight_finishes_after_sigterm_and_the_server_stops(
    database_url: str,
) -> None:
    with served(database_url, {"PORTAL_ENV": "test"}) as server:
        host, port = server.url.removeprefix("http://").split(":")
        body = json.dumps({"query": "query Late { __typename }"}).encode()
        connection = socket.create_connection((host, int(port)), timeout=30)
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        time.sleep(0.5)  # the request is in flight: its body is still arriving
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1)
        # The server takes no new connections meanwhile...
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
        # ...and answers the request in flight once its body has come.
        connection.sendall(body[10:])
        answer = _read_response(connection)
        connection.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.endswith(b'{"data":{"__typename":"Query"}}')
        # uvicorn ends by raising the signal it caught again, once it has shut down.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        logged = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
        assert {"message": "Application shutdown complete."}.items() <= logged[-2].items()
        [late] = [line for line in logged if line.get("operation") == "Late"]
        assert late["logger"] == "app.requests" and late["status"] == 200


def test_h7_several_workers_answer_a_scrape_with_all_their_counts(database_url: str) -> None:
    two_workers = ["serve", "--workers", "2"]
    with served(database_url, {"PORTAL_ENV": "test"}, command=two_workers) as server:
        for _ in range(20):
            ping = httpx.post(server.url + STAFF, json={"query": "query Ping { __typename }"})
            assert ping.status_code == 200
        for _ in range(4):
            scraped = samples(httpx.get(server.url + "/metrics").text)
            count = "portal_request_duration_seconds_count"
            assert value(scraped, count, endpoint="staff", operation="Ping") == 20
