"""`python -m tools.pipeline.passthrough`: the linker's clients and delivery without the linking.

The baseline of bench/pipeline.py: a faust app configured like the linker (services/linker/app.py:
at_least_once, acks=all, the same micro-batches, raw bytes) that forwards every submission unchanged
to the members topic under its own key and awaits every acknowledgement before its offsets commit.
No decoding, no engine, no link store. Settings are the linker's (`REGSOSEK_LINKER_*`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from services.linker.settings import LinkerSettings


def build_passthrough(settings: LinkerSettings) -> faust.App:
    """The forwarding app (consume -> produce, nothing else)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="memory://",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust"),
        broker_commit_every=settings.batch_max_members,
        broker_commit_interval=1.0,
    )
    source = app.topic(settings.submissions_topic, key_serializer="raw", value_serializer="raw")
    sink = app.topic(settings.members_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="pass-through")
    async def forward(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max_members, within=settings.batch_wait_seconds):
            pending = [await sink.send(key=e.message.key, value=e.message.value, force=True) for e in events]
            await asyncio.gather(*pending)

    return app


def main() -> None:
    """Run the pass-through worker until SIGTERM."""
    settings = LinkerSettings()
    worker = faust.Worker(build_passthrough(settings), loglevel="info", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
