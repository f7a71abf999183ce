#!/usr/bin/env bash
# The container images and compose stack, tested offline: builds the service images from
# docker/Dockerfile (BuildKit, binaries built here on the host: BINARIES=prebuilt), brings up
# docker/compose.yml with docker/compose.sandbox.yml (Appwrite emulator + Discord sandbox),
# seeds through the ops image, runs the smoke journey (crates/testkit/src/bin/smoke.rs) against
# the containers, then `docker stop`s every container and checks each exited 0 within its grace
# period.
#
# Needs root (it runs its own dockerd: vfs storage, no iptables, no bridge; containers use the
# host network) and installs docker.io, docker-compose and debootstrap from apt when missing.
# Base images cannot be pulled: debian:bookworm-slim is made with debootstrap from the mirror
# this machine's apt uses, once, and kept with the daemon's data under $G3_DOCKER_CACHE
# (default /var/lib/g3-docker-test) for the next run. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS

export DEBIAN_FRONTEND=noninteractive
cache=${G3_DOCKER_CACHE:-/var/lib/g3-docker-test}
project=g3-docker-test

step() { printf '==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { printf 'docker-test: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: the test starts its own dockerd (CI runs as root)"

# --- tools ----------------------------------------------------------------------------------
step "checking tools (docker.io, docker-compose, debootstrap)"
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
  || ! command -v debootstrap >/dev/null || ! command -v docker >/dev/null \
  || ! command -v strip >/dev/null; then
  step "installing docker.io, docker-compose, debootstrap and binutils from Debian's packages (first run only)"
  apt-get update -qq
  apt-get install -y -qq docker.io docker-compose debootstrap binutils >/dev/null
fi
# Debian's docker CLI (20.10) has BuildKit built in; a newer CLI elsewhere on PATH would want
# the buildx plugin for it.
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=$(command -v docker)
echo "docker: $("$docker_cli" --version); $(dockerd --version); $(docker-compose --version)"

# --- disk -------------------------------------------------------------------------------------
# vfs has no copy-on-write: every image layer and every container is a full copy of the base.
# The data root peaks at about 3.8 GiB with the stack up (measured; the test prints it there).
# Refuse early with the reason rather than fail half-way with "no space left on device".
mkdir -p "$cache"
need_mib=${G3_DOCKER_MIN_FREE_MIB:-5120}
free_mib=$(( $(df -Pk "$cache" | awk 'NR == 2 { print $4 }') / 1024 ))
echo "    disk: ${free_mib} MiB free for $cache (the test needs ${need_mib} MiB)"
[ "$free_mib" -ge "$need_mib" ] \
  || die "only ${free_mib} MiB free on the file system of $cache; the test needs ${need_mib} MiB (free some space: stale build output in target/, or set G3_DOCKER_CACHE to a bigger file system)"

# --- binaries (host build, copied into the images) ------------------------------------------
step "building the binaries (cargo build, debug)"
# All targets, as ./scripts/test.sh's earlier steps build them: the same feature resolution,
# so the binaries already built there are reused instead of compiled again.
cargo build --locked --workspace --all-targets
for bin in web webhook bot tracker ops appwrite-emulator discord-sandbox smoke; do
  [ -x "target/debug/$bin" ] || die "target/debug/$bin was not built"
done
# The images get the debug binaries without their line tables: vfs stores every layer, and
# every container, as a full copy, and the tables are two thirds of each binary.
bins=target/docker-prebuilt
mkdir -p "$bins"
for bin in web webhook bot tracker ops appwrite-emulator discord-sandbox; do
  strip --strip-debug -o "$bins/$bin" "target/debug/$bin" || die "strip $bin failed"
done
echo "    service binaries, stripped: $(du -sh "$bins" | cut -f1) in $bins"

# --- our own dockerd --------------------------------------------------------------------------
mkdir -p "$cache/docker" "$cache/exec" "$cache/run"
sock="$cache/run/docker.sock"
pidfile="$cache/run/dockerd.pid"
work=$(mktemp -d)
dockerd_log="$cache/dockerd.log"   # kept after the run, overwritten by the next
dockerd_pid=""
stack_up=""

export DOCKER_HOST="unix://$sock"
docker() { "$docker_cli" "$@"; }
# Bounded: a daemon that stops answering must fail the test, not stall CI.
compose() {
  G3_ENV_FILE=sandbox.env G3_IMAGE_PREFIX=g3 G3_TAG=test timeout 300 \
    docker-compose -p "$project" -f docker/compose.yml -f docker/compose.sandbox.yml "$@"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$stack_up" ]; then
    if [ "$rc" -ne 0 ]; then
      echo "---- container logs (last 40 lines each) ----" >&2
      compose logs --no-color --tail=40 >&2 2>&1
    fi
    compose down -v --remove-orphans --timeout 10 >>"$work/compose-down.log" 2>&1
  fi
  # vfs keeps a full copy of every layer: only the base image stays for the next run.
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    docker images -q --filter 'reference=g3/*' | sort -u | xargs -r "$docker_cli" rmi -f >/dev/null 2>&1
    docker container prune -f >/dev/null 2>&1
    docker builder prune -af >/dev/null 2>&1
    docker image prune -f >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -TERM "$dockerd_pid"
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "docker-test: dockerd did not stop in 20 s: killing it" >&2
      kill -KILL "$dockerd_pid"
    fi
    wait "$dockerd_pid" 2>/dev/null
  fi
  # dockerd stops the containerd it started; if dockerd had to be killed, containerd is left.
  local cpid
  cpid=$(cat "$cache/exec/containerd/containerd.pid" 2>/dev/null)
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then kill -TERM "$cpid"; fi
  # dockerd leaves its data root and its default network namespace mounted.
  if [ -n "$dockerd_pid" ] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
    umount "$cache/exec/netns/default" 2>/dev/null
    mountpoint -q "$cache/docker" && umount "$cache/docker" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ]; then
    echo "---- dockerd log (last 20 lines) ----" >&2
    tail -n 20 "$dockerd_log" >&2
  fi
  rm -rf "$work"
  step "stack, test images and dockerd stopped (exit $rc, wall time $((SECONDS - started))s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  die "a dockerd with data root $cache/docker is already running (pid $(cat "$pidfile")); stop it first"
fi
rm -f "$pidfile" "$sock"
step "starting dockerd (data root $cache/docker, log $dockerd_log)"
dockerd --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
  --data-root "$cache/docker" --exec-root "$cache/exec" --pidfile "$pidfile" \
  --host "unix://$sock" >"$dockerd_log" 2>&1 </dev/null &
dockerd_pid=$!
for _ in $(seq 1 150); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -n 5 "$dockerd_log")"
  sleep 0.2
done
docker version >/dev/null 2>&1 || die "dockerd did not answer on $sock within 30 s"

# --- the base image: debootstrap, as base images cannot be pulled --------------------------
apt_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -v -- '-security' | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | grep -v -- '-security' \
      | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
      | head -n 1 || true)
  fi
  [ -n "$uri" ] || die "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  echo "$uri"
}
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  step "base image debian:bookworm-slim: reusing the one made earlier"
else
  step "base image debian:bookworm-slim: debootstrap (minbase + ca-certificates; first run only)"
  rootfs="$cache/rootfs.tmp"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$(apt_mirror)" \
    >"$cache/debootstrap.log" 2>&1 || die "debootstrap failed: see $cache/debootstrap.log"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
fi

# --- images -----------------------------------------------------------------------------------
targets="web webhook bot tracker ops appwrite-emulator discord-sandbox"
for target in $targets; do
  step "docker build --target $target (BuildKit, BINARIES=prebuilt, PREBUILT_DIR=$bins)"
  DOCKER_BUILDKIT=1 timeout 600 "$docker_cli" build --quiet --network host -f docker/Dockerfile --target "$target" \
    --build-arg BINARIES=prebuilt --build-arg PREBUILT_DIR="$bins" \
    -t "g3/$target:test" . >"$work/build-$target.log" 2>&1 \
    || { cat "$work/build-$target.log" >&2; die "building image $target failed"; }
done
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^g3/' | sed 's/^/    /'

# --- the stack ------------------------------------------------------------------------------
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
export G3_EMULATOR_PORT G3_WEBHOOK_PORT G3_WEB_PORT G3_BOT_HEALTH_PORT G3_SANDBOX_PORT G3_SANDBOX_STATUS_PORT
export G3_TRACKER_PORT
G3_EMULATOR_PORT=$(port); G3_WEBHOOK_PORT=$(port); G3_WEB_PORT=$(port)
G3_BOT_HEALTH_PORT=$(port); G3_SANDBOX_PORT=$(port); G3_SANDBOX_STATUS_PORT=$(port)
G3_TRACKER_PORT=$(port)

# Waits until every named service's container reports healthy.
wait_healthy() {
  local deadline=$((SECONDS + 60)) service id health
  for service in "$@"; do
    while :; do
      id=$(compose ps -q "$service")
      health=$( [ -n "$id" ] && docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}}' "$id")
      case "$health" in
        "healthy running") break ;;
        *exited* | *dead*) die "$service exited: $(docker logs --tail 20 "$id" 2>&1)" ;;
      esac
      [ "$SECONDS" -lt "$deadline" ] || die "$service is not healthy after 60 s ($health)"
      sleep 0.5
    done
    echo "    $service healthy"
  done
}

stack_up=1
step "compose up: appwrite-emulator, discord-sandbox"
compose up -d --no-build appwrite-emulator discord-sandbox >"$work/up.log" 2>&1 \
  || { cat "$work/up.log" >&2; die "compose up failed"; }
wait_healthy appwrite-emulator discord-sandbox

step "seeding through the ops image: bootstrap, a route, the service users"
# One container for every command (each new container copies the image on vfs). The env file's
# passwords reach ops by name (--password-env), never on a command line.
compose run -T --rm --no-deps --entrypoint /bin/bash ops -c '
  set -euo pipefail
  ops bootstrap | tail -n 1
  ops routes add --key vip-calls --channel 1100000000000000001 --guild 1000000000000000001 \
    --name "VIP Calls" --customer-channel 1300000000000000001
  ops service-user create --email "$WEB_SERVICE_EMAIL" --password-env WEB_SERVICE_PASSWORD
  ops service-user create --email "$BOT_STAFF_EMAIL" --password-env BOT_STAFF_PASSWORD
  ops service-user create --email "$TRACKER_STAFF_EMAIL" --password-env TRACKER_STAFF_PASSWORD
' >"$work/ops.log" 2>&1 || { cat "$work/ops.log" >&2; die "seeding through ops failed"; }
sed 's/^/    ops: /' "$work/ops.log"

step "compose up: webhook, web, bot, tracker"
compose up -d --no-build webhook web bot tracker >"$work/up.log" 2>&1 \
  || { cat "$work/up.log" >&2; die "compose up failed"; }
wait_healthy webhook web bot tracker

echo "    disk: the data root holds $(du -sh "$cache/docker" 2>/dev/null | cut -f1) with the stack up; $(( $(df -Pk "$cache" | awk 'NR == 2 { print $4 }') / 1024 )) MiB left"

step "smoke journey: buy, ingest a signal, link Discord"
set -a
# shellcheck source=../docker/sandbox.env
. docker/sandbox.env
set +a
SMOKE_WEB_URL="http://127.0.0.1:$G3_WEB_PORT" \
SMOKE_WEBHOOK_URL="http://127.0.0.1:$G3_WEBHOOK_PORT" \
SMOKE_EMULATOR_URL="http://127.0.0.1:$G3_EMULATOR_PORT" \
SMOKE_SANDBOX_STATUS_URL="http://127.0.0.1:$G3_SANDBOX_STATUS_PORT" \
  ./target/debug/smoke journey

# --- clean stops --------------------------------------------------------------------------------
step "docker stop: every container drains and exits 0 within its grace period"
failed=0
for service in web webhook bot tracker discord-sandbox appwrite-emulator; do
  id=$(compose ps -q "$service")
  grace=$(docker inspect -f '{{.Config.StopTimeout}}' "$id")
  [ "$grace" = "<nil>" ] && grace=10
  t0=$(date +%s%N)
  docker stop -t "$grace" "$id" >/dev/null
  ms=$((($(date +%s%N) - t0) / 1000000))
  read -r code restarts oom < <(docker inspect -f '{{.State.ExitCode}} {{.RestartCount}} {{.State.OOMKilled}}' "$id")
  printf '    %-18s exit %s after %5s ms (grace %ss, restarts %s)\n' "$service" "$code" "$ms" "$grace" "$restarts"
  if [ "$code" != 0 ] || [ "$restarts" != 0 ] || [ "$oom" != false ] || [ "$ms" -ge $((grace * 1000)) ]; then
    failed=1
    docker logs --tail 20 "$id" 2>&1 | sed "s/^/    $service | /" >&2
  fi
done
[ "$failed" -eq 0 ] || die "a container did not stop cleanly (see above)"

step "docker test passed in $((SECONDS - started))s"
