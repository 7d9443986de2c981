"""The ingest gateway: an HTTP API that takes FamilySubmissions from CAPI devices and stores them in Kafka.

`build_app(GatewaySettings(), producer=...)` is the composition root; `regsosek serve gateway` runs it.
"""
