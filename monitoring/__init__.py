"""Monitoring as code: Grafana dashboards generated from Python, Prometheus configuration and alert rules."""
