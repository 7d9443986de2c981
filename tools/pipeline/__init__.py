"""Orchestration of the streaming pipeline as a whole: linker processes, streaming, outcome checks.

Used by the end-to-end tests (tests/e2e), the pipeline benchmark (bench/pipeline.py) and `python -m tools demo`.
Nothing here links anything: it starts the real services and reads what they published.
"""
