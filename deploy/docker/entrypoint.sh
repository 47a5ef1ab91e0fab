#!/bin/sh
# The ringkv container's entrypoint: runs `ringkv start` with the config file
# (RINGKV_CONFIG, default /etc/ringkv/ringkv.yaml, when it exists) and fills
# in what a container needs when neither the environment nor that file says:
#   node_id     the container's host name (a pod name in Kubernetes)
#   listen      0.0.0.0:8087 (every interface of the container)
#   advertise   <host name>:<listen port> (the name peers resolve: a compose
#               service's hostname, a pod's name under a headless Service)
#   data_dir    /data (the image's volume)
#   secret_file /run/secrets/cluster_secret when that file exists (compose
#               and swarm secrets, a mounted Kubernetes Secret)
# Every other option comes from RINGKV_* variables or the file as usual
# (docs/configuration.md); arguments are passed on to `ringkv start`
# (e.g. --log-level debug). A first argument that is not a flag runs that
# ringkv command instead: `docker run IMAGE config check /etc/ringkv/ringkv.yaml`.
# RINGKV_BIN (default /opt/ringkv/bin/ringkv.js) and RINGKV_NODE_BINARY
# (default node) say what to run. docs/deploy.md, "Docker".
set -eu

RINGKV_BIN="${RINGKV_BIN:-/opt/ringkv/bin/ringkv.js}"
RINGKV_NODE_BINARY="${RINGKV_NODE_BINARY:-node}"
# An exit code `ringkv start` uses too: a configuration that cannot run (EX_CONFIG).
EX_CONFIG=78

fail() {
  echo "ringkv-entrypoint: $*" >&2
  exit "$EX_CONFIG"
}

# Another ringkv command (status, config check, ...): run it as it is.
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ] && [ "$1" != start ]; then
  exec "$RINGKV_NODE_BINARY" "$RINGKV_BIN" "$@"
fi
[ "${1:-}" = start ] && shift

config_given=${RINGKV_CONFIG+set}
RINGKV_CONFIG="${RINGKV_CONFIG:-/etc/ringkv/ringkv.yaml}"
config=""
if [ -f "$RINGKV_CONFIG" ]; then
  config="$RINGKV_CONFIG"
elif [ "$config_given" = set ]; then
  fail "RINGKV_CONFIG=$RINGKV_CONFIG: no such file"
fi
# `ringkv start` reads RINGKV_CONFIG itself; it is given as --config below instead.
unset RINGKV_CONFIG

# Whether the config file sets a key at the top level (`key:` at the start of a line).
file_sets() {
  [ -n "$config" ] && grep -Eq "^$1[[:space:]]*:" "$config"
}
# Whether the option is set: a non-empty variable or a key of the file.
is_set() {
  eval "value=\${$1:-}"
  [ -n "$value" ] || file_sets "$2"
}

host_name="$(uname -n)"
if ! is_set RINGKV_NODE_ID node_id; then
  RINGKV_NODE_ID="$host_name"
  export RINGKV_NODE_ID
fi
if ! is_set RINGKV_LISTEN listen; then
  RINGKV_LISTEN="0.0.0.0:8087"
  export RINGKV_LISTEN
fi
if ! is_set RINGKV_ADVERTISE advertise; then
  # The listen port: from the variable, else the file's `listen: host:port`.
  listen="${RINGKV_LISTEN:-}"
  if [ -z "$listen" ]; then
    listen="$(sed -nE 's/^listen[[:space:]]*:[[:space:]]*["'\'']?([^"'\''[:space:]#]+).*/\1/p' "$config" | head -n 1)"
  fi
  RINGKV_ADVERTISE="$host_name:${listen##*:}"
  export RINGKV_ADVERTISE
fi
if ! is_set RINGKV_DATA_DIR data_dir; then
  RINGKV_DATA_DIR=/data
  export RINGKV_DATA_DIR
fi
if ! is_set RINGKV_CLUSTER_SECRET_FILE secret_file && [ -z "${RINGKV_CLUSTER_SECRET:-}" ] && [ -f /run/secrets/cluster_secret ]; then
  RINGKV_CLUSTER_SECRET_FILE=/run/secrets/cluster_secret
  export RINGKV_CLUSTER_SECRET_FILE
fi

if [ -n "$config" ]; then
  exec "$RINGKV_NODE_BINARY" "$RINGKV_BIN" start --config "$config" "$@"
fi
exec "$RINGKV_NODE_BINARY" "$RINGKV_BIN" start "$@"
