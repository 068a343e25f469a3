#!/bin/bash
# Starts one RabbitMQ node of the cluster.
set -euo pipefail
data=/var/lib/rabbitmq
mkdir -p "$data/mnesia"

# Every node of a cluster shares one Erlang cookie.
printf '%s' "${RABBITMQ_ERLANG_COOKIE_VALUE:?}" > "$data/.erlang.cookie"
chmod 400 "$data/.erlang.cookie"

watermark="${RABBITMQ_MEMORY_WATERMARK:-0.4}"
case "$watermark" in
  *[A-Za-z]*) watermark_line="vm_memory_high_watermark.absolute = $watermark" ;;
  *) watermark_line="vm_memory_high_watermark.relative = $watermark" ;;
esac
# How long a booting node waits for its peers' tables. A scenario may shorten it for this node's
# next boots by leaving "<ms> <retries>" in the volume (faults/broker.py); empty = the environment's.
wait_ms="${RABBITMQ_TABLE_WAIT_MS:-30000}"
wait_retries="${RABBITMQ_TABLE_WAIT_RETRIES:-10}"
if [ -s "$data/table-wait-override" ]; then
  read -r override_ms override_retries _ < "$data/table-wait-override" || true
  case "${override_ms:-x}${override_retries:-x}" in
    *[!0-9]*) echo "ignoring malformed $data/table-wait-override" >&2 ;;
    *) wait_ms="$override_ms" wait_retries="$override_retries" ;;
  esac
fi
echo "table wait: ${wait_ms} ms x ${wait_retries} retries" >&2
sed -e "s/@TABLE_WAIT_MS@/$wait_ms/" \
    -e "s/@TABLE_WAIT_RETRIES@/$wait_retries/" \
    -e "s/@MEMORY_WATERMARK_LINE@/$watermark_line/" \
    -e "s/@MEMORY_LIMIT_BYTES@/${RABBITMQ_MEMORY_LIMIT_BYTES:?}/" \
    -e "s/@WAL_MAX_SIZE_BYTES@/${RABBITMQ_WAL_MAX_SIZE_BYTES:-8388608}/" \
    -e "s/@DEFAULT_USER@/${RABBITMQ_DEFAULT_USER:?}/" \
    -e "s/@DEFAULT_PASS@/${RABBITMQ_DEFAULT_PASS:?}/" \
    /etc/rabbitmq/rabbitmq.conf.template > /etc/rabbitmq/rabbitmq.conf

# First boot only: join the seed node instead of racing it into a cluster of one.
self="rabbit@$(hostname)"
seed="${RABBITMQ_SEED_NODE:-rabbit@rabbit1}"
if [ -z "$(ls -A "$data/mnesia" 2>/dev/null)" ] && [ "$self" != "$seed" ]; then
  seed_host="${seed#*@}"
  for _ in $(seq 1 120); do
    if (</dev/tcp/"$seed_host"/5672) 2>/dev/null; then break; fi
    sleep 1
  done
fi

chown -R rabbitmq:rabbitmq "$data"

# The runbook's force_boot: a node that cannot wait for its peers boots from its own tables.
# `outage` requests it by leaving this marker in the node's volume.
if [ -f "$data/force-boot-requested" ]; then
  rm -f "$data/force-boot-requested"
  runuser -u rabbitmq -- rabbitmqctl force_boot
fi

# The Debian wrapper would send the logs to a file; the container wants them on stdout.
exec runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server
