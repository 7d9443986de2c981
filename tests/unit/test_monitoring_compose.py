"""docker-compose.yml: valid against the compose-spec schema, and every reference in it is real.

The schema is the Compose Specification's, kept in tests/fixtures/compose-spec/ (see its README), and
applied with the jsonschema library.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import typer.main
from ruamel.yaml import YAML

from tools.broker import jmx_agent_jar

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
SCHEMA = REPO / "tests/fixtures/compose-spec/compose-spec.json"
OUR_IMAGE = "regsosek-linkage"
SECRET_WORDS = ("TOKEN", "KEY", "PASSWORD", "SECRET")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return doc


def schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["healthcheck"]["retries"] = "five"
    broken["services"]["linker"]["depends_on"] = {"topics": {"condition": "when_ready"}}
    assert len(schema_errors(broken)) == 2


def test_the_whole_stack_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "topics", "gateway", "linker", "publisher", "review", "prometheus", "grafana"}
    assert services["kafka"]["image"] == "apache/kafka:4.3.1"  # the version the tests run (tools/broker.py)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), (name, image)
        if name != "topics":  # one-shot
            assert "healthcheck" in service, f"{name} has no healthcheck"
    for name in ("topics", "gateway", "linker", "publisher", "review"):
        assert services[name]["image"].startswith(OUR_IMAGE)
        assert (REPO / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()


def test_kafka_version_matches_the_test_broker(compose: dict[str, Any]) -> None:
    pom = (REPO / "infra/kafka/pom.xml").read_text(encoding="utf-8")
    tag = compose["services"]["kafka"]["image"].split(":")[1]
    assert f"<kafka.version>{tag}</kafka.version>" in pom


def test_every_mounted_file_exists_and_volumes_are_named(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    mounts = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source == "./.run/kafka/agents":  # made by `python -m tools broker fetch` (the JMX exporter jar)
                agent = compose["services"]["kafka"]["environment"]["KAFKA_OPTS"].split("=")[0]
                assert agent.startswith(f"-javaagent:{volume.split(':')[1]}/{jmx_agent_jar().name}")
                assert jmx_agent_jar().parent == REPO / ".run/kafka/agents"
            elif source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
                mounts += 1
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert mounts == 5


def test_secrets_are_compose_secrets_never_environment_values(compose: dict[str, Any]) -> None:
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    declared = compose["secrets"]
    assert all(spec["file"].startswith("./secrets/") for spec in declared.values())
    assert "secrets/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    mounted = 0
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if any(word in key for word in SECRET_WORDS) and key != "REGSOSEK_PUBLISHER_SASL_USERNAME":
                # Only a file name: /run/secrets/<a secret this service is given>.
                assert key.endswith("_FILE"), f"{name}.{key}: pass secrets as files (compose secrets:)"
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []) and secret in declared, (name, key, value)
                mounted += 1
    assert mounted == 5
    assert sorted(s for svc in compose["services"].values() for s in svc.get("secrets", [])) == sorted(declared)
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    listed = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert used == listed


def run_entry_point(cli: typer.Typer, argv: list[str]) -> dict[str, Any]:
    """Resolve `regsosek ARGS` to its command and parse the options (as the CLI would); returns params."""
    command: Any = typer.main.get_command(cli)
    args = list(argv)
    while hasattr(command, "commands"):
        name = args.pop(0)
        assert name in command.commands, f"no sub-command {name!r} in {argv}"
        command = command.commands[name]
    params: dict[str, Any] = command.make_context(argv[-1], args).params
    return params


def test_every_service_command_is_a_real_entry_point(compose: dict[str, Any], cli_app: typer.Typer) -> None:
    checked = 0
    for name, service in compose["services"].items():
        if not service["image"].startswith(OUR_IMAGE):
            continue
        argv = service["command"]
        if argv[0] == "regsosek":
            params = run_entry_point(cli_app, argv[1:])
            assert params, name
        else:
            assert argv[:2] == ["python", "-m"], argv
            assert importlib.util.find_spec(f"{argv[2]}.__main__") is not None, argv
        checked += 1
    assert checked == 5
    review = run_entry_point(cli_app, compose["services"]["review"]["command"][1:])
    assert (review["port"], str(review["master_path"])) == (8090, "/models/world/population.parquet")
    assert run_entry_point(cli_app, compose["services"]["gateway"]["command"][1:])["port"] == 8080


def test_prometheus_scrapes_the_ports_the_services_listen_on(compose: dict[str, Any]) -> None:
    config = YAML(typ="safe").load((REPO / "monitoring/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["gateway"]["static_configs"][0]["targets"] == ["gateway:8080"]
    linker_port = int(compose["services"]["linker"]["environment"]["REGSOSEK_LINKER_METRICS_PORT"])
    assert jobs["linker"]["dns_sd_configs"][0]["port"] == linker_port
    assert jobs["review"]["static_configs"][0]["targets"] == ["review:8090"]
    grafana = compose["services"]["grafana"]["volumes"]
    provider = YAML(typ="safe").load((REPO / "monitoring/grafana/provisioning/dashboards/regsosek.yml").read_text())
    assert f"./monitoring/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in grafana


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = [(name, port) for name, svc in compose["services"].items() for port in svc.get("ports", [])]
    assert sorted(published) == [
        ("gateway", "127.0.0.1:8080:8080"),
        ("grafana", "127.0.0.1:3000:3000"),
        ("prometheus", "127.0.0.1:9090:9090"),
        ("review", "127.0.0.1:8090:8090"),
    ]


def _bytes(size: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(float(size[:-1]) * units[size[-1].lower()])


def test_every_long_running_service_has_limits_and_kafka_a_heap_inside_them(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "topics":  # one-shot
            continue
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and _bytes(limits["memory"]) >= 256 << 20, name
    kafka = compose["services"]["kafka"]
    heap = re.search(r"-Xmx(\d+[kmg])", kafka["environment"]["KAFKA_HEAP_OPTS"])
    assert heap is not None
    # Heap at most half the container: the broker lives on the page cache.
    assert _bytes(heap.group(1)) * 2 <= _bytes(kafka["deploy"]["resources"]["limits"]["memory"])


def test_linker_and_publisher_health_checks_ask_kafka(compose: dict[str, Any]) -> None:
    for name, group in (("linker", "regsosek-linker"), ("publisher", "regsosek-publisher")):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "services.observability.healthcheck"]
        assert importlib.util.find_spec("services.observability.healthcheck") is not None
        assert test[test.index("--bootstrap") + 1] == "kafka:9092" and test[test.index("--group") + 1] == group


def test_the_review_app_reads_its_accounts_from_a_secret_and_the_linker_applies_its_decisions(
    compose: dict[str, Any],
) -> None:
    review, linker = compose["services"]["review"], compose["services"]["linker"]
    env = review["environment"]
    assert env["REGSOSEK_REVIEW_USERS_FILE"] == "/run/secrets/review_users" and review["secrets"] == ["review_users"]
    assert compose["secrets"]["review_users"]["file"] == "./secrets/review_users.json"
    assert env["REGSOSEK_REVIEW_BOOTSTRAP"] == linker["environment"]["REGSOSEK_LINKER_BOOTSTRAP"]
    assert env["REGSOSEK_REVIEW_STATE_PATH"].startswith("/var/lib/regsosek/review/")
    assert {"review-state:/var/lib/regsosek/review", "linker-models:/models:ro"} == set(review["volumes"])
    assert linker["environment"]["REGSOSEK_LINKER_DECISIONS_ENABLED"] == "true"
