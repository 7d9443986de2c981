"""Prometheus helpers for development and tests (not shipped): the HTTP API client, promtool checks,
run pictures and the catalogue of exported metric names."""
