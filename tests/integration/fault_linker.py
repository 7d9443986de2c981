"""Test-only entry point: the linker service with a fake engine that fails or hangs on one call.

`python -m tests.integration.fault_linker` runs the real worker (`services.linker.runner.run_worker`,
settings from REGSOSEK_LINKER_* as in production) with this engine injected. FAULT_MODE is `raise`
(the engine call fails: a fatal error in a batch) or `hang` (it never returns, as a deadlocked engine
would); FAULT_CALL is which engine call (1-based) does it; FAULT_MARKER is a file written just before.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from integration.port import MemberLink, MemberQuery
from services.linker.runner import run_worker
from services.linker.settings import LinkerSettings
from tests.support.fake_linker import fake_master_path, load_fake_master
from tests.support.linker import FakeMemberLinker


@dataclasses.dataclass
class FaultyLinker(FakeMemberLinker):
    """`FakeMemberLinker` whose `fault_call`-th call raises or blocks forever."""

    fault: str = "raise"
    fault_call: int = 1
    marker: Path | None = None
    calls: int = 0

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        self.calls += 1
        if self.calls == self.fault_call:
            if self.marker is not None:
                self.marker.write_text(self.fault)
            if self.fault == "hang":
                threading.Event().wait()
            raise RuntimeError("injected engine failure")
        return super().link(members)


def main() -> None:
    settings = LinkerSettings()
    people = load_fake_master(fake_master_path())
    linker = FaultyLinker(
        master={p.nik: p for p in people},
        fault=os.environ["FAULT_MODE"],
        fault_call=int(os.environ["FAULT_CALL"]),
        marker=Path(os.environ["FAULT_MARKER"]),
    )
    run_worker(settings, linker=linker, master_records=len(people))


if __name__ == "__main__":
    main()
