"""Prometheus metrics of the services: metric families on an injected registry, observers, exposition.

Each service owns one `CollectorRegistry` and passes it in; nothing registers at import time, so tests
build as many independent registries as they like. Names follow Prometheus conventions: a `regsosek_` or
`linkage_` prefix, base units (`_seconds`, `_bytes`), `_total` counters, histograms for durations, enum
labels pre-initialised to 0, and never a person, NIK, KK, name or submission id as a label value.
"""
