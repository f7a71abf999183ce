#!/usr/bin/env bash
# The collector's real core (apps/collector, built by `npm test`) against the real ingest
# service: the collector starts producing 50 messages (with edits and deletes) while ingest is
# down, devstack then starts on free loopback ports with a scratch data directory, and every
# event must arrive exactly as produced: nothing lost, nothing doubled.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
E=$(free_port); W=$(free_port); B=$(free_port)
data=$(mktemp -d)
log="$data/devstack.log"
cargo build --locked -q -p devstack
secret="whsec_ZGV2c3RhY2staW5nZXN0LXNlY3JldA=="   # devstack's demo ingest secret (see its banner)
guild=910000000000000001

# The collector starts first and produces while ingest is down; it must keep everything in its
# outbox and deliver it once ingest is up: nothing lost, nothing doubled.
node apps/collector/dist/tools/drive.js --url "http://127.0.0.1:$W/ingest/v1/events" --secret "$secret" \
  --guild "$guild" --channel 1100000000000000001 --count 50 --timeout-ms 90000 \
  > "$data/drive.json" 2> "$data/drive.err" &
drive=$!
cleanup() {
  kill "$drive" 2>/dev/null || true
  [ -n "${pid:-}" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 300); do [ -s "$data/drive.err" ] && break; sleep 0.1; done
[ -s "$data/drive.err" ] || { echo "the collector never tried to deliver" >&2; exit 1; }
echo "collector e2e: collector is producing with ingest down: $(head -c 160 "$data/drive.err" | head -1)"

DEVSTACK_DATA_DIR="$data" DEVSTACK_EMULATOR_ADDR="127.0.0.1:$E" DEVSTACK_WEBHOOK_ADDR="127.0.0.1:$W" \
  DEVSTACK_WEB_ADDR="127.0.0.1:$B" DEVSTACK_DEMO_INTERVAL_SECS=0 ./target/debug/devstack >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  grep -q "Press Ctrl-C" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "devstack exited early" >&2; exit 1; }
  sleep 0.1
done
grep -q "Press Ctrl-C" "$log" || { cat "$log"; echo "devstack did not start in 30 s" >&2; exit 1; }
grep -q "$secret" "$log" || { echo "devstack's ingest secret changed; update this script" >&2; exit 1; }
wait "$drive" || { cat "$data/drive.err" | tail -5; echo "the collector did not drain its outbox" >&2; exit 1; }

python3 - "$E" "$guild" "$data/drive.json" <<'PY'
import json, sys, urllib.parse, urllib.request
port, guild, drive = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
q = urllib.parse.quote(json.dumps({"method": "equal", "attribute": "source_guild_id", "values": [guild]}))
lim = urllib.parse.quote(json.dumps({"method": "limit", "values": [100]}))
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/databases/g3/collections/signals/documents?queries[]={q}&queries[]={lim}",
    headers={"X-Appwrite-Project": "g3", "X-Appwrite-Key": "devstack-server-key"})
docs = json.load(urllib.request.urlopen(req))["documents"]
deleted = sum(1 for d in docs if d["status"] == "deleted")
edited = sum(1 for d in docs if d["revision"] > 1)
print(f"collector e2e: produced {drive['produced']}, delivered {drive['delivered']}; stored {len(docs)} signals ({edited} edited, {deleted} deleted)")
assert len(docs) == 50, f"expected 50 signals, found {len(docs)}"
# drive.js edits every 5th message and deletes every 7th: exactly 10 edits and 7 deletes, each
# applied once (a doubled edit would not raise the revision, but a lost one would show here).
assert (edited, deleted) == (10, 7), f"expected 10 edited and 7 deleted, got {edited} and {deleted}"
assert max(d["revision"] for d in docs) == 2, "no revision beyond the one edit"
PY
