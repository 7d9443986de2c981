"""Development tooling, not shipped (not in the wheel, not in the image): the local Kafka broker, the demo,
the simulator and its HTTP client, the pipeline harness and profiler, and Prometheus helpers.

Run from a checkout: `python -m tools --help` (tools/cli.py). The shipped packages (contracts, linkage,
services) never import it; import-linter checks that.
"""
