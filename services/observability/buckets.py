"""Histogram buckets shared by the metric definitions and the dashboards (one place to change them)."""

from __future__ import annotations

#: Seconds from a record's Kafka timestamp to its processing: sub-second when healthy, minutes when behind.
EVENT_AGE_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: Seconds one micro-batch takes from classification to acknowledged outputs.
BATCH_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds of one HTTP request at the gateway (dominated by the broker's acknowledgement).
REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Records (members) per micro-batch or engine call.
BATCH_SIZE = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
#: Candidate master records compared with one survey member after blocking.
CANDIDATE_PAIRS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: Match probability of the best candidate; fine steps near the decision thresholds at both ends.
PROBABILITY = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
#: Request body size at the gateway: a family questionnaire is a few kB.
BODY_BYTES = (512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576)
