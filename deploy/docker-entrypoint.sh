#!/bin/sh
# Writes /conf/zoo.cfg and myid from the official zookeeper image's
# variables unless a zoo.cfg is mounted, then runs the command.
set -eu

ZOO_CONF_DIR=${ZOO_CONF_DIR:-/conf}
ZOO_DATA_DIR=${ZOO_DATA_DIR:-/data}
ZOO_DATA_LOG_DIR=${ZOO_DATA_LOG_DIR:-/datalog}
CONFIG="$ZOO_CONF_DIR/zoo.cfg"

if [ ! -f "$CONFIG" ]; then
    {
        echo "dataDir=$ZOO_DATA_DIR"
        echo "dataLogDir=$ZOO_DATA_LOG_DIR"
        echo "tickTime=${ZOO_TICK_TIME:-2000}"
        echo "initLimit=${ZOO_INIT_LIMIT:-5}"
        echo "syncLimit=${ZOO_SYNC_LIMIT:-2}"
        echo "autopurge.snapRetainCount=${ZOO_AUTOPURGE_SNAPRETAINCOUNT:-3}"
        echo "autopurge.purgeInterval=${ZOO_AUTOPURGE_PURGEINTERVAL:-0}"
        echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
        echo "standaloneEnabled=${ZOO_STANDALONE_ENABLED:-true}"
        echo "admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}"
        echo "4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr}"
        if [ -n "${ZOO_METRICS_PORT:-}" ]; then
            echo "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
            echo "metricsProvider.httpPort=$ZOO_METRICS_PORT"
        fi
        if [ -z "${ZOO_SERVERS:-}" ]; then
            echo "clientPort=${ZOO_PORT:-2181}"
        else
            for server in $ZOO_SERVERS; do
                echo "$server"
            done
        fi
        if [ -n "${ZOO_CFG_EXTRA:-}" ]; then
            for kv in $ZOO_CFG_EXTRA; do
                echo "$kv"
            done
        fi
    } > "$CONFIG"
fi

if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
    mkdir -p "$ZOO_DATA_DIR"
    echo "${ZOO_MY_ID:-1}" > "$ZOO_DATA_DIR/myid"
fi

exec "$@"
