"""The JMX exporter agent on the broker's command line: only when asked, only for the broker JVM."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from tools import broker


def test_the_agent_is_added_to_the_broker_jvm_only_when_a_metrics_port_is_set(tmp_path: Path) -> None:
    plain = broker.BrokerConfig(run_dir=tmp_path, libs_dir=tmp_path / "kafka" / "libs")
    assert not any(arg.startswith("-javaagent") for arg in broker._java_cmd(plain, ["kafka.Kafka"], heap=True))
    with_metrics = broker.BrokerConfig(run_dir=tmp_path, libs_dir=tmp_path / "kafka" / "libs", metrics_port=9404)
    agents = [a for a in broker._java_cmd(with_metrics, ["kafka.Kafka"], heap=True) if a.startswith("-javaagent")]
    jar = tmp_path / "kafka" / "agents" / f"jmx_prometheus_javaagent-{broker.JMX_EXPORTER_VERSION}.jar"
    assert agents == [f"-javaagent:{jar}=127.0.0.1:9404:{broker.JMX_EXPORTER_CONFIG}"]
    # The storage tool (no heap settings) never gets it: it would bind the same port.
    tool = broker._java_cmd(with_metrics, ["kafka.tools.StorageTool"], heap=False)
    assert not any(arg.startswith("-javaagent") for arg in tool)
    # The jar is kept off the broker's classpath.
    assert jar.parent != with_metrics.libs_dir


def test_start_refuses_a_busy_metrics_port_before_starting_anything(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        free, controller = broker.free_ports(2)
        agent = broker.jmx_agent_jar(tmp_path / "libs")
        agent.parent.mkdir(parents=True)
        agent.write_bytes(b"")  # present: no fetch
        (tmp_path / "libs").mkdir()
        (tmp_path / "libs" / ".fetched").write_text(broker.KAFKA_VERSION)
        (tmp_path / "libs" / f"kafka_2.13-{broker.KAFKA_VERSION}.jar").write_bytes(b"")
        config = broker.BrokerConfig(
            run_dir=tmp_path / "run",
            libs_dir=tmp_path / "libs",
            port=free,
            controller_port=controller,
            metrics_port=port,
        )
        try:
            broker.start(config)
        except broker.BrokerError as exc:
            assert f"127.0.0.1:{port} is already in use" in str(exc)
        else:
            raise AssertionError("start accepted a busy metrics port")
    assert not (tmp_path / "run").exists()


def test_the_cli_start_option_reaches_the_config(monkeypatch: object, tmp_path: Path, dev_cli_app: typer.Typer) -> None:
    seen: list[broker.BrokerConfig] = []

    def fake_start(config: broker.BrokerConfig) -> broker.BrokerStatus:
        seen.append(config)
        raise broker.BrokerError("stop here")

    monkeypatch.setattr(broker, "start", fake_start)  # type: ignore[attr-defined]
    result = CliRunner().invoke(dev_cli_app, ["broker", "start", "--run-dir", str(tmp_path), "--metrics-port", "9555"])
    assert result.exit_code == 1
    assert [c.metrics_port for c in seen] == [9555]


def test_the_tools_jar_is_beside_the_libs_and_off_the_broker_classpath(tmp_path: Path) -> None:
    libs = tmp_path / "kafka" / "libs"
    jar = broker.tools_jar(libs)
    assert jar == tmp_path / "kafka" / "tools" / f"kafka-tools-{broker.KAFKA_VERSION}.jar"
    assert broker.tools_classpath(libs) == f"{libs}/*:{tmp_path / 'kafka' / 'tools'}/*"
    config = broker.BrokerConfig(run_dir=tmp_path, libs_dir=libs)
    cmd = broker._java_cmd(config, ["kafka.Kafka"], heap=True)
    assert cmd[cmd.index("-cp") + 1] == f"{libs}/*"  # the broker runs without the tools
