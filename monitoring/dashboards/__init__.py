"""Grafana dashboards of the pipeline, generated with grafana-foundation-sdk.

`python -m monitoring.dashboards.generate` writes them to monitoring/grafana/dashboards/*.json, where
Grafana's file provisioning picks them up; a test regenerates them and fails on drift.
"""
