"""Versioned message contracts (pydantic v2): the shapes exchanged over Kafka and files.

Import from the modules, e.g. `from contracts.submission import FAMILY_SUBMISSION_ADAPTER`:

- `submission`: FamilySubmission (v1) and its inbound adapter; `family`, `member`: its parts;
  `codes`: the questionnaire's coded answers.
- `population`: Dukcapil PopulationRecord and PopulationChange events.
- `sectoral`: DTKS and BPJS records.
- `dead_letter`, `decode`: dead-letter envelope and the edge decoder that classifies bad input.
- `identity`: NIK/KK structure checks and quality flags; `schema_export`: JSON Schema export.

This package is a leaf: it imports nothing from `linkage` or `services`.
"""
