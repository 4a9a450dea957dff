"""docker-compose.yml: Docker cannot run here, so check the file and run its export command locally."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import yaml

from helpers import REPO, run_cli

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _container_port(service: dict, published: int) -> int:
    for mapping in service.get("ports", []):
        host, _, container = str(mapping).rpartition(":")
        if int(host) == published:
            return int(container)
    raise AssertionError(f"port {published} is not published")


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_services_exist_and_trino_is_pinned():
    assert {"trino", "sandbox", "connector"} <= set(SERVICES)
    image = SERVICES["trino"]["image"]
    assert re.fullmatch(r"trinodb/trino:\d+", image), image
    catalogs = REPO / SERVICES["trino"]["volumes"][0].split(":")[0]
    assert {p.name for p in catalogs.iterdir()} >= {"memory.properties", "tpch.properties"}
    assert (REPO / "Dockerfile").exists() and SERVICES["sandbox"]["build"] == "."


def test_ports_are_consistent():
    # Trino: the connector's URL names the trino service and the port Trino listens on.
    url = urlsplit(SERVICES["connector"]["environment"]["CONNECTOR_DATABASE_URL"])
    assert url.scheme == "trino" and url.hostname == "trino"
    assert _container_port(SERVICES["trino"], 8080) == url.port
    # Sandbox: it listens on the port it publishes, and the connector (sharing its network
    # namespace) sends to that port on loopback.
    command = SERVICES["sandbox"]["command"]
    assert command[0] == "sandbox"
    port = int(_option(command, "--port"))
    assert _container_port(SERVICES["sandbox"], port) == port
    assert SERVICES["connector"]["network_mode"] == "service:sandbox"
    result_file = _option(SERVICES["connector"]["command"], "--result").lstrip("@")
    endpoint = urlsplit(json.loads((REPO / result_file).read_text())["endpoint"])
    assert endpoint.hostname == "127.0.0.1" and endpoint.port == port


def test_connector_command_is_a_valid_invocation(tmp_path, trino):
    """Run the compose service's exact command here, as a dry run against the local Trino."""
    command = list(SERVICES["connector"]["command"])
    env = dict(SERVICES["connector"]["environment"])
    assert (REPO / command[0]).exists()
    url = trino
    result = json.loads((REPO / command[command.index("--result") + 1].lstrip("@")).read_text())
    result["access_token"] = result["access_token"].replace("${LINE_TOKEN}", env["LINE_TOKEN"])
    sql = (REPO / command[0]).read_text()
    out = tmp_path / "bodies.jsonl"
    run = run_cli(tmp_path, sql, result, "--database", url, "--dry-run", str(out))
    assert run.returncode == 0, run.stderr
    assert run.report["rows_read"] == 15000 and run.report["events_sent"] == 15000
    first = json.loads(out.read_text().splitlines()[0])[0]
    assert first["event"]["deduplication_key"] == "order-1"
    assert set(first["custom"]) == {"value", "currency", "quantity"}
