#!/usr/bin/env bash
# Kafka's own console consumer (Java) on a REGSOSEK topic (docs/consuming.md). One record per line, the
# fields separated by tabs: Partition:<n>, Offset:<n>, the headers (name:value,name:value or NO_HEADERS),
# the key, the value (the JSON as sent, or null for a tombstone).
#
#   examples/consumers/console/consume.sh BOOTSTRAP TOPIC GROUP [more console consumer options]
#   examples/consumers/console/consume.sh 127.0.0.1:19092 linkage.members.v1 integration.dwh.members \
#       --max-messages 10
#
# With an Apache Kafka distribution, bin/kafka-console-consumer.sh takes the same options. Here it runs
# from the jars `python -m tools broker fetch` put in .run/kafka (libs/ and tools/; override with KAFKA_LIBS and
# KAFKA_TOOLS). On a secured broker pass --command-config client.properties (docs/consuming.md).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 BOOTSTRAP TOPIC GROUP [console consumer options]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
libs=${KAFKA_LIBS:-$repo/.run/kafka/libs}
tools=${KAFKA_TOOLS:-$repo/.run/kafka/tools}
bootstrap=$1 topic=$2 group=$3
shift 3
exec java -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$libs/*:$tools/*" \
  org.apache.kafka.tools.consumer.ConsoleConsumer \
  --bootstrap-server "$bootstrap" --topic "$topic" --group "$group" --from-beginning \
  --formatter-property print.partition=true --formatter-property print.offset=true \
  --formatter-property print.headers=true --formatter-property print.key=true \
  --formatter-property key.separator=$'\t' --formatter-property headers.separator=, \
  --formatter-property null.literal=null "$@"
