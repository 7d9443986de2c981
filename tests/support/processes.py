"""Service subprocesses a test starts (gateway, review app, Prometheus, ...) and waiting on them."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import httpx

from tests.support.polling import poll_until

REPO = Path(__file__).resolve().parents[2]


class Watched(Protocol):
    """A child process a test waits on: a `ServiceProcess` or a `LinkerProcess` (tools/pipeline)."""

    name: str

    def returncode(self) -> int | None: ...

    def log_tail(self, chars: int = 4000) -> str: ...

    def stop(self, timeout_s: float = 30.0) -> int | None: ...


class ServiceProcess:
    """A subprocess with its log file `<log_dir>/<name>.log`, stopped with SIGTERM (SIGKILL after a grace)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - the test's own command line
                argv, cwd=REPO, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
            )

    def returncode(self) -> int | None:
        return self.proc.poll()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def until(what: str, check: Callable[[], bool], processes: Sequence[Watched], timeout_s: float = 120.0) -> None:
    """Poll `check` (an HTTP or socket error counts as not yet) until it holds; fail at once when one of
    `processes` exits, and with every process's log tail after `timeout_s`."""

    def ready() -> bool:
        try:
            if check():
                return True
        except (httpx.HTTPError, OSError):
            pass
        dead = [p for p in processes if p.returncode() is not None]
        if dead:
            raise AssertionError(f"{what}: {dead[0].name} exited with {dead[0].returncode()}\n{tails()}")
        return False

    def tails() -> str:
        return "\n".join(f"--- {p.name} log ---\n{p.log_tail(3000)}" for p in processes)

    poll_until(ready, timeout_s, lambda: f"{what}\n{tails()}", interval_s=0.5)


def holds_connection_to(pid: int, port: int) -> bool:
    """True while process `pid` has a TCP socket to local `port` that it has not closed yet (established, or
    closed by the peer but not yet by `pid`): False once the process has seen that server go (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if inode in inodes and state in ("01", "08") and int(remote.rsplit(":", 1)[1], 16) == port:
                return True  # 01 ESTABLISHED, 08 CLOSE_WAIT
    return False
