"""Access control on the broker: the SCRAM users and least-privilege ACLs the registry needs.

The Kafka calls (ACL objects, SCRAM requests, the admin client) are in services.kafka.
"""
