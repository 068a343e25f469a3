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
sed -e "s/@TABLE_WAIT_MS@/${RABBITMQ_TABLE_WAIT_MS:-30000}/" \
    -e "s/@TABLE_WAIT_RETRIES@/${RABBITMQ_TABLE_WAIT_RETRIES:-10}/" \
    -e "s/@MEMORY_WATERMARK_LINE@/$watermark_line/" \
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
