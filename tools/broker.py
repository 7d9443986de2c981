"""Run a real Apache Kafka broker (KRaft, combined broker+controller) on loopback from Maven jars.

Used by the `python -m tools broker` commands, the demo and the pytest session fixture, so all three run the
broker the same way. Run state lives in one folder (default `<repo>/.run/broker`):
`broker.json` (pid, ports, cluster id), `server.properties`, `log4j2.properties`, `data/`, `logs/`.
The jars are shared by every run folder (default `<repo>/.run/kafka/libs`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import signal
import socket
import string
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.access.acl import BROKER_SUPER_USERS
from services.commands.options import LOCAL_BROKER_PORT, LOCAL_BROKER_SASL_PORT

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA_DIR = REPO_ROOT / "infra" / "kafka"
KAFKA_VERSION = "4.3.1"
DEFAULT_RUN_DIR = Path(os.environ.get("REGSOSEK_RUN_DIR", REPO_ROOT / ".run")) / "broker"
DEFAULT_LIBS_DIR = Path(os.environ.get("REGSOSEK_RUN_DIR", REPO_ROOT / ".run")) / "kafka" / "libs"
#: The Prometheus JMX exporter java agent (Maven Central), kept beside the libs folder and off the
#: broker's classpath; its rules are infra/kafka/jmx-exporter.yaml.
JMX_EXPORTER_VERSION = "1.0.1"
JMX_EXPORTER_ARTIFACT = f"io.prometheus.jmx:jmx_prometheus_javaagent:{JMX_EXPORTER_VERSION}"
JMX_EXPORTER_CONFIG = INFRA_DIR / "jmx-exporter.yaml"
#: Kafka's command-line tools (console consumer, consumer groups, configs) are in `kafka-tools`, which
#: the broker does not need. Only that one jar is fetched, beside the libs folder and off the broker's
#: classpath; the tools run with the broker's jars plus it (`tools_classpath`, docs/consuming.md).
TOOLS_ARTIFACT = f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
DEFAULT_PORT = LOCAL_BROKER_PORT
DEFAULT_CONTROLLER_PORT = 19093
#: The SASL/SCRAM listener of the secured mode (`python -m tools broker start --secured`).
DEFAULT_SASL_PORT = LOCAL_BROKER_SASL_PORT
READY_LINE = "Kafka Server started"
#: The broker's super users in security mode (`super.users`), defined beside the ACL sync that skips them.
SUPER_USERS: tuple[str, ...] = BROKER_SUPER_USERS
# A marker written after a complete fetch; a half-copied libs folder has none and is fetched again.
_FETCH_MARKER = ".fetched"


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says why (with the log tail)."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how one broker runs."""

    run_dir: Path = DEFAULT_RUN_DIR
    libs_dir: Path = DEFAULT_LIBS_DIR
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    heap: str = "512m"
    ready_timeout_s: float = 90.0
    # Optional security mode (off by default): an extra SASL_PLAINTEXT listener on `sasl_port` with
    # SCRAM-SHA-512 users created at format time and the StandardAuthorizer (see docs/subscriptions.md).
    sasl_port: int | None = None
    # Optional broker metrics: the JMX exporter agent serves /metrics on host:metrics_port.
    metrics_port: int | None = None
    scram_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, password)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL/SCRAM listener's address (security mode only)."""
        return f"{self.host}:{self.sasl_port}"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "broker.json"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"


@dataclass
class BrokerStatus:
    """What `status` and `start` report. `rss_mb` is the JVM's resident memory, when running."""

    running: bool
    bootstrap: str
    pid: int | None = None
    run_dir: str = ""
    rss_mb: float | None = None
    already_running: bool = False
    start_seconds: float | None = None
    details: dict[str, str] = field(default_factory=dict)
    #: The SASL/SCRAM listener when the broker runs in security mode, else None.
    sasl_bootstrap: str | None = None


# ---------------------------------------------------------------------------------------------- fetch


def libs_complete(libs_dir: Path) -> bool:
    """True when a previous fetch finished and the broker jar of the pinned version is there."""
    return (libs_dir / _FETCH_MARKER).is_file() and (libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


def fetch(libs_dir: Path = DEFAULT_LIBS_DIR, *, force: bool = False) -> bool:
    """Copy the broker jars, the JMX exporter agent and the tools jar from Maven Central unless there.

    True if anything was fetched.
    """
    if libs_complete(libs_dir) and not force:
        agent = fetch_jmx_agent(libs_dir)
        return fetch_tools(libs_dir) or agent
    libs_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(INFRA_DIR / "pom.xml"),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs_dir}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError as exc:
        raise BrokerError("Maven (mvn) is not installed; it is needed once to fetch the Kafka jars") from exc
    if done.returncode != 0:
        output = _tail_text(done.stdout + done.stderr)
        raise BrokerError(f"fetching the Kafka jars failed (mvn exit {done.returncode}):\n{output}")
    if not (libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise BrokerError(f"mvn finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {libs_dir}")
    (libs_dir / _FETCH_MARKER).write_text(KAFKA_VERSION + "\n")
    fetch_jmx_agent(libs_dir)
    fetch_tools(libs_dir)
    return True


def jmx_agent_jar(libs_dir: Path = DEFAULT_LIBS_DIR) -> Path:
    """Where the JMX exporter agent jar lives (a sibling of the libs folder, not on the classpath)."""
    return libs_dir.parent / "agents" / f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"


def fetch_jmx_agent(libs_dir: Path = DEFAULT_LIBS_DIR) -> bool:
    """Copy the JMX exporter agent jar from Maven Central unless already there. True if fetched."""
    return _fetch_artifact(JMX_EXPORTER_ARTIFACT, jmx_agent_jar(libs_dir), "the JMX exporter")


def tools_jar(libs_dir: Path = DEFAULT_LIBS_DIR) -> Path:
    """Where the kafka-tools jar lives (a sibling of the libs folder, not on the broker's classpath)."""
    return libs_dir.parent / "tools" / f"kafka-tools-{KAFKA_VERSION}.jar"


def fetch_tools(libs_dir: Path = DEFAULT_LIBS_DIR) -> bool:
    """Copy the kafka-tools jar (console consumer, ...) from Maven Central unless there. True if fetched."""
    return _fetch_artifact(TOOLS_ARTIFACT, tools_jar(libs_dir), "Kafka's tools")


def tools_classpath(libs_dir: Path = DEFAULT_LIBS_DIR) -> str:
    """The Java classpath that runs Kafka's command-line tools: the broker's jars and kafka-tools."""
    return f"{libs_dir}/*:{tools_jar(libs_dir).parent}/*"


def _fetch_artifact(artifact: str, jar: Path, what: str) -> bool:
    # One jar without its dependencies (maven-dependency-plugin copy), unless already there.
    if jar.is_file():
        return False
    jar.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(INFRA_DIR / "pom.xml"),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
        f"-Dartifact={artifact}",
        f"-DoutputDirectory={jar.parent}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError as exc:
        raise BrokerError(f"Maven (mvn) is not installed; it is needed once to fetch {what}") from exc
    if done.returncode != 0 or not jar.is_file():
        output = _tail_text(done.stdout + done.stderr)
        raise BrokerError(f"fetching {artifact} failed (mvn exit {done.returncode}):\n{output}")
    return True


# --------------------------------------------------------------------------------------------- status


def _pid_alive(pid: int) -> bool:
    # Reap our own exited child first, otherwise it lingers as a zombie and looks alive.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    # A recycled pid belonging to some other program is not our broker.
    return state not in ("Z", "X") and b"kafka.Kafka" in cmdline


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _read_state(config: BrokerConfig) -> dict[str, object]:
    try:
        state: dict[str, object] = json.loads(config.state_file.read_text())
        return state
    except (OSError, ValueError):
        return {}


def status(config: BrokerConfig = BrokerConfig()) -> BrokerStatus:
    """Whether the broker of this run folder is running (by its recorded pid), and its memory."""
    state = _read_state(config)
    pid = state.get("pid")
    bootstrap = str(state.get("bootstrap", config.bootstrap))
    sasl_port = state.get("sasl_port")
    sasl = f"{config.host}:{sasl_port}" if isinstance(sasl_port, int) else None
    if isinstance(pid, int) and _pid_alive(pid):
        return BrokerStatus(True, bootstrap, pid, str(config.run_dir), _rss_mb(pid), sasl_bootstrap=sasl)
    return BrokerStatus(False, bootstrap, None, str(config.run_dir))


# ---------------------------------------------------------------------------------------------- start


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, never starting with '-' (as Kafka expects)."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (for tests that run their own broker)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (all sockets are held open together, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _render(config: BrokerConfig) -> Path:
    template = string.Template((INFRA_DIR / "server.properties.tmpl").read_text())
    text = template.substitute(
        host=config.host,
        port=config.port,
        controller_port=config.controller_port,
        data_dir=config.data_dir,
    )
    if config.sasl_port is not None:
        text += _security_properties(config)
    props = config.run_dir / "server.properties"
    props.write_text(text)
    (config.run_dir / "log4j2.properties").write_text((INFRA_DIR / "log4j2.properties").read_text())
    return props


def _security_properties(config: BrokerConfig) -> str:
    # Later keys override the template's. Controller and inter-broker traffic stay on the loopback
    # PLAINTEXT listeners (KRaft cannot use SCRAM there), whose ANONYMOUS principal must be a super user;
    # clients are meant to use the SASL listener, where every principal is subject to ACLs.
    h, p, c, s = config.host, config.port, config.controller_port, config.sasl_port
    return (
        "\n# security mode (tools/broker.py)\n"
        f"listeners=PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c},SASL_PLAINTEXT://{h}:{s}\n"
        f"advertised.listeners=PLAINTEXT://{h}:{p},SASL_PLAINTEXT://{h}:{s}\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        # The server side of SCRAM needs a login module but no credentials (users live in the metadata).
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
        "allow.everyone.if.no.acl.found=false\n"
        f"super.users={';'.join(SUPER_USERS)}\n"
    )


def _java_cmd(config: BrokerConfig, main: list[str], heap: bool) -> list[str]:
    cmd = ["java"]
    if heap:
        cmd += ["-Xms256m", f"-Xmx{config.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        if config.metrics_port is not None:  # only the broker JVM, never the storage tool
            agent = jmx_agent_jar(config.libs_dir)
            cmd.append(f"-javaagent:{agent}={config.host}:{config.metrics_port}:{JMX_EXPORTER_CONFIG}")
    cmd += [
        f"-Dkafka.logs.dir={config.logs_dir}",
        f"-Dlog4j2.configurationFile={config.run_dir / 'log4j2.properties'}",
        "-cp",
        f"{config.libs_dir}/*",
        *main,
    ]
    return cmd


def _format_storage(config: BrokerConfig, props: Path, cluster_id: str) -> None:
    cmd = _java_cmd(
        config,
        ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"],
        heap=False,
    )
    for name, password in config.scram_users:  # SCRAM users exist before the broker first starts
        cmd += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise BrokerError(f"formatting the broker storage failed:\n{_tail_text(done.stdout + done.stderr)}")


def start(config: BrokerConfig = BrokerConfig()) -> BrokerStatus:
    """Start the broker detached and wait until it is ready; a no-op when it already runs."""
    current = status(config)
    if current.running:
        current.already_running = True
        return current
    if not libs_complete(config.libs_dir):
        fetch(config.libs_dir)
    if config.metrics_port is not None:
        fetch_jmx_agent(config.libs_dir)
    for port in (config.port, config.controller_port, config.metrics_port, config.sasl_port):
        if port is None:
            continue
        if _port_in_use(config.host, port):
            raise BrokerError(f"port {config.host}:{port} is already in use by another program")
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.logs_dir.mkdir(exist_ok=True)
    props = _render(config)
    # Keep the cluster id of an already formatted data folder, so restarts reuse the data.
    cluster_file = config.run_dir / "cluster.id"
    if not cluster_file.is_file() or not (config.data_dir / "meta.properties").is_file():
        cluster_file.write_text(new_cluster_id())
    cluster_id = cluster_file.read_text().strip()
    _format_storage(config, props, cluster_id)

    server_log = config.logs_dir / "server.log"
    log_offset = server_log.stat().st_size if server_log.exists() else 0
    t0 = time.monotonic()
    with open(config.logs_dir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed command line, no shell
            _java_cmd(config, ["kafka.Kafka", str(props)], heap=True),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # detached: survives the CLI process and Ctrl-C in the terminal
        )
    state = {
        "pid": proc.pid,
        "bootstrap": config.bootstrap,
        "port": config.port,
        "controller_port": config.controller_port,
        "cluster_id": cluster_id,
        "kafka_version": KAFKA_VERSION,
        "started_at": time.time(),
        "sasl_port": config.sasl_port,
    }
    config.state_file.write_text(json.dumps(state, indent=2))
    try:
        _wait_ready(config, proc, server_log, log_offset)
    except BrokerError:
        _terminate(proc.pid, grace_s=10)
        raise
    elapsed = time.monotonic() - t0
    state["start_seconds"] = round(elapsed, 2)
    config.state_file.write_text(json.dumps(state, indent=2))
    result = status(config)
    result.start_seconds = elapsed
    return result


def _wait_ready(config: BrokerConfig, proc: subprocess.Popen[bytes], server_log: Path, offset: int) -> None:
    deadline = time.monotonic() + config.ready_timeout_s
    logged = False
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise BrokerError(f"the broker JVM exited during start-up ({how})\n{log_tail(config)}")
        if not logged:
            logged = _log_has_line(server_log, offset, READY_LINE)
        if logged and _admin_ok(config.bootstrap):
            return
        time.sleep(0.25)
    raise BrokerError(
        f"the broker was not ready after {config.ready_timeout_s:.0f} s (log line seen: {logged})\n{log_tail(config)}"
    )


def _log_has_line(path: Path, offset: int, needle: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return needle.encode() in fh.read()
    except OSError:
        return False


def _admin_ok(bootstrap: str) -> bool:
    """One real admin round trip (cluster metadata with our broker in it)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="regsosek-broker-probe"
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return len(admin.describe_cluster().get("brokers", [])) >= 1
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


# ------------------------------------------------------------------------------------- security mode


def admin_password_file(config: BrokerConfig) -> Path:
    """Where `python -m tools broker start --secured` keeps the generated password of the `admin` super user."""
    return config.run_dir / "admin.password"


def admin_password(config: BrokerConfig) -> str:
    """The admin password of this run folder: the stored one, or a new random one stored now (0600)."""
    path = admin_password_file(config)
    if path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
    config.run_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password


def start_secured(config: BrokerConfig) -> BrokerStatus:
    """Start the broker in security mode with the `admin` SCRAM user of `admin_password_file`.

    The user is created at format time and set again through the loopback operator listener once the
    broker runs, so a data folder formatted earlier (without it, or by a plain start) gets it too.
    """
    if config.sasl_port is None:
        raise BrokerError("the secured mode needs a SASL port")
    current = status(config)
    if current.running and current.sasl_bootstrap is None:
        raise BrokerError(
            f"a broker without the SASL listener already runs from {config.run_dir} (pid {current.pid}); "
            "stop it first with `python -m tools broker stop`"
        )
    password = admin_password(config)
    st = start(dataclasses.replace(config, scram_users=(("admin", password),)))
    _set_admin_user(config.bootstrap, password)
    return st


def _set_admin_user(bootstrap: str, password: str) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    from services.kafka.scram import ScramError, upsert_scram_users

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="regsosek-broker-admin-user", request_timeout_ms=15000
        )
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot reach the operator listener {bootstrap}: {type(exc).__name__}") from exc
    try:
        upsert_scram_users(admin, {"admin": password})
    except (KafkaError, OSError, ScramError) as exc:
        raise BrokerError(f"the admin SCRAM user could not be set: {exc}") from exc
    finally:
        admin.close()


# ----------------------------------------------------------------------------------------------- stop


def stop(config: BrokerConfig = BrokerConfig(), *, grace_s: float = 30.0) -> bool:
    """SIGTERM (controlled shutdown), SIGKILL after `grace_s`. True if a running broker was stopped."""
    current = status(config)
    if not current.running or current.pid is None:
        return False
    _terminate(current.pid, grace_s)
    return True


def _terminate(pid: int, grace_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _pid_alive(pid):
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------ logs


def log_tail(config: BrokerConfig, lines: int = 40) -> str:
    """The last lines of the broker's logs, for error messages."""
    parts = []
    for name in ("server.log", "stdout.log"):
        path = config.logs_dir / name
        if path.is_file():
            parts.append(f"--- {path} (last {lines} lines) ---\n{_tail_text(path.read_text(errors='replace'), lines)}")
    return "\n".join(parts) or f"(no broker logs in {config.logs_dir})"


def _tail_text(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def status_dict(st: BrokerStatus) -> dict[str, object]:
    """A JSON-friendly view of a status."""
    return asdict(st)
