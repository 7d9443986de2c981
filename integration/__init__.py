"""The domain rules of record integration, over `contracts` and `linkage`, with no I/O.

Between the pure linkage core (`linkage/`) and the adapters that run it (`services/`): how a survey
member becomes the engine's query (`mapping`), person ids (`ids`), the member, review and family
records a link produces (`outputs`), the update events a master change causes (`updates`), clerical
review decisions as link rules (`clerical`), field feedback (`feedback`), and what a subscriber is told
(`notifications`, `projection`, `pseudonyms`). No Kafka, no Prometheus, no environment, no files, no
database connections: every function here is a function of its arguments (import-linter checks it).
"""
