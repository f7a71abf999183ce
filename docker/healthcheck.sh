#!/bin/bash
# g3-healthcheck BIND_VARIABLE PATH: the image's HEALTHCHECK. Asks GET PATH of the service
# listening at the address in $BIND_VARIABLE (as 127.0.0.1 when it binds every interface) and
# succeeds on a 200. Plain bash (/dev/tcp): the runtime image has no curl. With the variable
# unset or empty, it only checks that the service (PID 1) is alive.
set -euo pipefail
var=${1:?usage: g3-healthcheck BIND_VARIABLE PATH}
path=${2:-/healthz}
addr=${!var:-}
if [ -z "$addr" ]; then
  kill -0 1
  exit 0
fi
host=${addr%:*}
port=${addr##*:}
case "$host" in 0.0.0.0 | "" | "[::]") host=127.0.0.1 ;; esac
host=${host#[}
host=${host%]}
exec 3<>"/dev/tcp/$host/$port"
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$addr" >&3
IFS= read -r -t 3 status <&3 || { echo "no answer from $addr$path" >&2; exit 1; }
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "$addr$path answered: $status" >&2; exit 1 ;;
esac
