// A Node.js consumer of the REGSOSEK linkage topics with kafkajs, validating every value with Ajv
// against the published JSON Schema of its topic (contracts/schemas, docs/consuming.md).
//
// It prints one JSON line per record: topic, partition, offset, key, value (null for a tombstone),
// headers, and `valid` (true / false, null for a tombstone) with Ajv's `errors` when invalid.
// An offset is committed only after its record was printed (at-least-once).
//
//   npm install kafkajs@2.2.4 ajv@8.20.0 ajv-formats@3.0.1
//   node consume.cjs --bootstrap 127.0.0.1:19092 --topic linkage.members.v1 \
//     --group integration.dwh.members --schemas contracts/schemas
//
// On a secured broker add --sasl-user and --sasl-password-file (SCRAM-SHA-512 over SASL_PLAINTEXT).
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { parseArgs } = require("node:util");
const { Kafka, logLevel } = require("kafkajs");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

// The schema of each output topic (docs/contracts.md). Subscriber topics are subscriber.<id>.notifications.v1.
const SCHEMAS = [
  [/^linkage\.members\.v1/, "linked_member.v1.json"],
  [/^linkage\.families\.v1/, "integrated_family.v1.json"],
  [/^linkage\.review\.v1/, "review_task.v1.json"],
  [/^linkage\.updates\.v1/, "linkage_update.v1.json"],
  [/^regsosek\.submissions\.dlq\.v1/, "dead_letter.v1.json"],
  [/^subscriber\.[a-z0-9-]+\.notifications\.v1/, "notification.v1.json"],
];

const { values: args } = parseArgs({
  options: {
    bootstrap: { type: "string", default: "127.0.0.1:19092" },
    topic: { type: "string", default: "linkage.members.v1" },
    group: { type: "string" },
    schemas: { type: "string", default: "contracts/schemas" },
    "max-records": { type: "string", default: "0" },
    "sasl-user": { type: "string" },
    "sasl-password-file": { type: "string" },
  },
});
if (!args.group) fail("--group is required");
const maxRecords = Number(args["max-records"]);

const schemaFile = SCHEMAS.find(([pattern]) => pattern.test(args.topic))?.[1];
if (!schemaFile) fail(`no published schema for topic ${args.topic}`);
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(args.schemas, schemaFile), "utf8")));

const kafka = new Kafka({
  clientId: "regsosek-example-consumer",
  brokers: args.bootstrap.split(","),
  sasl: args["sasl-user"]
    ? {
        mechanism: "scram-sha-512",
        username: args["sasl-user"],
        password: readFileSync(args["sasl-password-file"], "utf8").trim(),
      }
    : undefined,
  logLevel: logLevel.WARN,
  // kafkajs logs to stdout by default; keep stdout for the records.
  logCreator: () => ({ level, log }) => process.stderr.write(`kafkajs ${level}: ${log.message}\n`),
});
const consumer = kafka.consumer({ groupId: args.group });

async function main() {
  let seen = 0;
  await consumer.connect();
  // fromBeginning applies to a group without committed offsets: a new group reads the whole topic.
  await consumer.subscribe({ topic: args.topic, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning }) => {
      for (const message of batch.messages) {
        if (!isRunning() || (maxRecords > 0 && seen >= maxRecords)) return;
        process.stdout.write(JSON.stringify(toLine(batch.topic, batch.partition, message)) + "\n");
        resolveOffset(message.offset); // committed after this: a crash before reads the record again
        seen += 1;
        await heartbeat();
      }
      if (maxRecords > 0 && seen >= maxRecords) setImmediate(stop);
    },
  });
}

function toLine(topic, partition, message) {
  const value = message.value === null ? null : JSON.parse(message.value.toString("utf8"));
  const valid = value === null ? null : validate(value); // null: a tombstone, the key was deleted
  const headers = {};
  for (const [name, raw] of Object.entries(message.headers ?? {})) {
    headers[name] = raw === undefined || raw === null ? null : raw.toString("utf8");
  }
  const line = {
    topic,
    partition,
    offset: Number(message.offset),
    key: message.key === null ? null : message.key.toString("utf8"),
    value,
    headers,
    valid,
  };
  if (valid === false) line.errors = validate.errors;
  return line;
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await consumer.disconnect(); // commits what was processed, leaves the group
  process.exit(0);
}

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

process.on("SIGINT", stop);
process.on("SIGTERM", stop);
main().catch((err) => fail(err.message));
