"""The one Kafka package of the services: every client-library detail lives here.

Two client libraries by design: async services (the linker through faust, the gateway) use aiokafka;
sync services and admin (publisher, review ingest, CLI commands, health check) use kafka-python. Both
share one record type (`record.KafkaRecord`, timestamps in ms) and one security settings block
(`security.KafkaSecurity`, which yields the keyword arguments of either library and faust's credentials).

- `record`: the consumed-record type and `Delivered` (where an acknowledged record went).
- `io`: an acknowledging JSON producer, a whole-topic reader, topic metadata (kafka-python / aiokafka).
- `security`: SASL/SCRAM and TLS settings shared by every service.
- `events`: CloudEvents headers and record timestamps (the Kafka protocol binding).
- `errors`: the client libraries' base exceptions, for callers that only catch them.
- `admin`: an admin client; `topics`: topic provisioning; `acl`: ACL grants; `scram`: SCRAM users.

Nothing here knows the domain beyond the topic catalogue and event kinds of `contracts`.
"""
