"""Container health check of a Kafka consumer service (linker, publisher), for docker compose.

`python -m services.observability.healthcheck --metrics URL --bootstrap HOST:PORT --group GROUP`
exits 0 only when all three hold: the service's /metrics answers (the process serves), the broker
answers an admin request from inside the container (network and broker up), and the service's
consumer group is Stable with at least one member (its consumers joined and own partitions). Any
other case prints one line naming what failed and exits 1. It reads no records and commits nothing.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from services.kafka.admin import admin_client
from services.kafka.errors import KafkaError


def check(metrics_url: str, bootstrap: str, group: str, *, timeout_s: float = 5.0) -> list[str]:
    """What is unhealthy (empty when healthy)."""
    problems = []
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as answer:  # noqa: S310 - a URL we are given
            if answer.status != 200:
                problems.append(f"metrics endpoint answered {answer.status}")
    except (urllib.error.URLError, OSError) as exc:
        problems.append(f"metrics endpoint unreachable ({type(exc).__name__})")
    try:
        admin = admin_client(bootstrap, client_id="regsosek-healthcheck", timeout_s=timeout_s)
    except (KafkaError, OSError, ValueError) as exc:
        return [*problems, f"broker {bootstrap} unreachable ({type(exc).__name__})"]
    try:
        (info,) = admin.describe_consumer_groups([group])
    except (KafkaError, OSError, ValueError) as exc:
        return [*problems, f"consumer group {group} not described ({type(exc).__name__})"]
    finally:
        admin.close()
    if info.state != "Stable" or not info.members:
        problems.append(f"consumer group {group} is {info.state} with {len(info.members)} members")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the check; print one line; 0 healthy, 1 not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, help="the service's /metrics URL")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--group", required=True, help="the service's consumer group id")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    args = parser.parse_args(argv)
    problems = check(args.metrics, args.bootstrap, args.group, timeout_s=args.timeout)
    print("unhealthy: " + "; ".join(problems) if problems else f"healthy: group {args.group} is Stable")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
