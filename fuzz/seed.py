#!/usr/bin/env python3
"""(Re)builds fuzz/seeds/<target>/ from the project's tests.

Sources:
  signal_parse     crates/core/tests/corpus/signals.json (content, NUL, raw embeds JSON)
  sellapp_event    ../shared/reference/sellapp/examples/*.json (SHARED overrides ../shared)
                   and the r#"..."# JSON bodies in the Sell.app tests
  ingest_batch     bodies shaped like apps/webhook/tests/ingest.rs `message()` and the event
                   literals of apps/webhook/src/ingest/message.rs tests, with corpus texts
  emulator_query   query strings built from the `{"method": ...}` literals and `q(...)` calls
                   in crates/appwrite-emulator tests, as `queries[]=...` URL parameters
  markdown_render  the strings apps/web/src/markdown.rs tests render, and corpus texts

Seeds are small (the whole set stays well under 1 MB). Run from anywhere:
    python3 fuzz/seed.py
"""

import glob
import hashlib
import json
import os
import re
import shutil
import sys
import urllib.parse

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
SEEDS = os.path.join(FUZZ, "seeds")
MAX_SEED = 16 * 1024


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def write_all(target, items):
    out = os.path.join(SEEDS, target)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    seen = set()
    for name, data in items:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > MAX_SEED:
            continue
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:48]
        with open(os.path.join(out, f"{safe}-{digest[:8]}"), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seen)} seeds", file=sys.stderr)


def rust_raw_strings(text):
    """The contents of r#"..."# and br#"..."# literals."""
    return [m.group(1) for m in re.finditer(r'b?r#"(.*?)"#', text, re.S)]


def corpus_cases():
    return json.loads(read("crates/core/tests/corpus/signals.json"))["cases"]


def signal_seeds():
    for case in corpus_cases():
        data = case["content"]
        if case.get("embeds"):
            data += "\0" + json.dumps(case["embeds"], ensure_ascii=False)
        yield case["name"], data


def sellapp_seeds():
    for path in sorted(glob.glob(os.path.join(SHARED, "reference/sellapp/examples/*.json"))):
        with open(path, "rb") as f:
            yield "example-" + os.path.basename(path), f.read()
    for src in ["crates/core/src/sellapp.rs", "apps/webhook/tests/sellapp.rs"]:
        for i, body in enumerate(rust_raw_strings(read(src))):
            if body.lstrip().startswith("{"):
                yield f"{os.path.basename(src)}-{i}", body


def message(kind, mid, channel, content=None, edited=None, **extra):
    """apps/webhook/tests/ingest.rs `message()`."""
    m = {
        "id": mid,
        "channel_id": channel,
        "guild_id": "7",
        "author": {"id": "9", "username": "caller"},
        "edited_timestamp": edited,
        "timestamp": "2026-01-01T00:00:00+00:00",
    }
    if content is not None:
        m["content"] = content
        m["embeds"] = []
        m["attachments"] = []
    m.update(extra)
    return {"type": kind, "message": m}


def ingest_seeds():
    call = "#ETH/USDT LONG\nEntry: 3000 - 3050\nTargets: 3100, 3200, 3300\nStop: 2900\nLeverage: 10x"
    routed = "1100000000000000001"
    e1 = "2026-01-01T00:01:00+00:00"
    e2 = "2026-01-01T00:02:00+00:00"
    mid = "1200000000000000001"

    def batch(*events):
        return json.dumps({"events": list(events)}, ensure_ascii=False)

    yield "batch-create", batch(message("message.create", mid, routed, call))
    yield "single-event", json.dumps(message("message.create", mid, routed, call))
    yield "edits", batch(
        message("message.create", mid, routed, "v0"),
        message("message.update", mid, routed, call, e1),
        message("message.update", mid, routed, "v2", e2),
    )
    yield "edits-out-of-order", batch(
        message("message.update", mid, routed, "v2", e2),
        message("message.create", mid, routed, "v0"),
        message("message.update", mid, routed, call, e1),
    )
    yield "delete-first", batch(
        {"type": "message.delete", "message": {"id": mid, "channelId": routed}},
        message("message.create", mid, routed, call),
    )
    yield "unfurl", batch(
        message("message.create", mid, routed, "see https://x.y/1"),
        {"type": "message.update", "message": {"id": mid, "channel_id": routed,
                                                "embeds": [{"title": "link", "description": "BTC long"}]}},
    )
    attachments = [
        {"id": f"14{i:017d}", "filename": n, "size": 10, "url": f"http://127.0.0.1:1/a/{n}"}
        for i, n in enumerate(["chart.png", "doc.pdf", "tool.exe"])
    ]
    yield "attachments", batch(message("message.create", mid, routed, call, attachments=attachments))
    # apps/webhook/src/ingest/message.rs tests
    yield "full-event", json.dumps({"type": "message.create", "message": {
        "id": "1234567890123456789", "channel_id": "42", "guild_id": "7",
        "author": {"id": "9", "username": "trader", "global_name": "Trader Joe"},
        "content": "BTC long", "embeds": [],
        "attachments": [{"id": "5", "filename": "chart.png", "size": 10, "url": "https://cdn/x"}],
        "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None}})
    yield "bad-json", '{"events": ['
    yield "events-not-array", '{"events": {}}'
    # Corpus texts, a few per batch, with their embeds.
    cases = corpus_cases()
    for start in range(0, min(len(cases), 60), 6):
        events = []
        for j, case in enumerate(cases[start:start + 6]):
            ev = message("message.create", f"12000000000000001{start + j:02d}", routed, case["content"])
            if case.get("embeds"):
                ev["message"]["embeds"] = case["embeds"]
            events.append(ev)
        yield f"corpus-{start}", batch(*events)


def json_literals(text):
    """One-line json!({...}) literals that are plain JSON."""
    for m in re.finditer(r'json!\((\{"method".*?\})\)', text):
        try:
            yield json.loads(m.group(1))
        except ValueError:
            pass


def q_calls(text):
    """q("method", "attribute", json!(...)) calls of documents_queries.rs."""
    for m in re.finditer(r'q\(\s*"(\w+)",\s*"([$\w]*)",\s*json!\((\[.*?\])\)\s*\)', text, re.S):
        try:
            yield {"method": m.group(1), "attribute": m.group(2), "values": json.loads(m.group(3))}
        except ValueError:
            pass


def emulator_seeds():
    queries = []
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/appwrite-emulator/tests/*.rs"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        queries += list(json_literals(text)) + list(q_calls(text))

    def qs(*qs_, extra=()):
        pairs = [("queries[]", json.dumps(q, separators=(",", ":"))) for q in qs_]
        return urllib.parse.urlencode(pairs + list(extra))

    for i, q in enumerate(queries):
        yield f"{q['method']}-{i}", qs(q)
    # A few combinations: a filter with ordering, a cursor and paging; nested and/or.
    filters = [q for q in queries if q["method"] not in ("limit", "offset", "orderAsc", "orderDesc",
                                                          "cursorAfter", "cursorBefore", "select")]
    for i, f in enumerate(filters[:12]):
        yield f"combo-{i}", qs(f, {"method": "orderDesc", "attribute": "n"},
                               {"method": "cursorAfter", "values": ["d3"]},
                               {"method": "limit", "values": [2]}, extra=[("total", "false")])
    if len(filters) >= 2:
        yield "or-strings", qs({"method": "or", "values": [json.dumps(filters[0]), json.dumps(filters[1])]})
    yield "account-search", urllib.parse.urlencode([("search", "ann vip"), ("total", "true")]) + "&" + \
        qs({"method": "equal", "attribute": "labels", "values": ["vip"]},
           {"method": "orderAsc", "attribute": "name"},
           {"method": "cursorBefore", "values": ["u3"]})
    yield "indexed-key", "queries%5B0%5D=" + urllib.parse.quote('{"method":"limit","values":[1]}')


def markdown_seeds():
    text = read("apps/web/src/markdown.rs")
    for i, m in enumerate(re.finditer(r'render\(\s*"((?:[^"\\]|\\.)*)"', text)):
        s = m.group(1)
        # Rust string escapes used there: \n, \", \\, and line-continuation backslashes.
        s = re.sub(r"\\\n\s*", "", s)
        s = s.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        yield f"test-{i}", s
    yield "nasty", ("<script>alert(1)</script> **<img src=x onerror=alert(2)>** "
                    "[x](javascript:alert(3)) `<b>` ```\n<iframe>\n``` > <svg onload=1>")
    for case in corpus_cases()[:40]:
        yield case["name"], case["content"]


def main():
    write_all("signal_parse", signal_seeds())
    write_all("sellapp_event", sellapp_seeds())
    write_all("ingest_batch", ingest_seeds())
    write_all("emulator_query", emulator_seeds())
    write_all("markdown_render", markdown_seeds())


if __name__ == "__main__":
    main()
