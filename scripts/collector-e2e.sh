#!/usr/bin/env bash
# The collector's real core (apps/collector, built by `npm test`) against the real ingest
# service: starts devstack on free loopback ports with a scratch data directory, drives 50
# messages (with edits and deletes) through the collector, and checks every one was stored.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
E=$(free_port); W=$(free_port); B=$(free_port)
data=$(mktemp -d)
log="$data/devstack.log"
cargo build --locked -q -p devstack
DEVSTACK_DATA_DIR="$data" DEVSTACK_EMULATOR_ADDR="127.0.0.1:$E" DEVSTACK_WEBHOOK_ADDR="127.0.0.1:$W" \
  DEVSTACK_WEB_ADDR="127.0.0.1:$B" DEVSTACK_DEMO_INTERVAL_SECS=0 ./target/debug/devstack >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q "Press Ctrl-C" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "devstack exited early" >&2; exit 1; }
  sleep 0.1
done
grep -q "Press Ctrl-C" "$log" || { cat "$log"; echo "devstack did not start in 30 s" >&2; exit 1; }

secret=$(sed -n 's/.*Collector ingest .*(secret \([^,]*\),.*/\1/p' "$log")
guild=910000000000000001
node apps/collector/dist/tools/drive.js --url "http://127.0.0.1:$W/ingest/v1/events" --secret "$secret" \
  --guild "$guild" --channel 1100000000000000001 --count 50 --timeout-ms 60000 > "$data/drive.json"

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
assert deleted > 0 and edited > 0, "edits and deletes reached the documents"
PY
