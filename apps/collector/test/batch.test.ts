/** Batch limits: at most 100 events and 1 MiB per body, exact body encoding. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { encodeBody, MAX_BATCH_BYTES, takeBatch } from "../src/core/batch";
import type { IngestEvent, OutboxEntry } from "../src/core/types";
import { CH_A, message } from "./helpers";

function entries(n: number, contentSize = 10): OutboxEntry[] {
    return Array.from({ length: n }, (_, seq) => ({ seq, event: { type: "message.create", message: message(CH_A, "x".repeat(contentSize)) } as IngestEvent }));
}

test("at most 100 events per batch", () => {
    assert.equal(takeBatch(entries(250)).length, 100);
    assert.equal(takeBatch(entries(7)).length, 7);
    assert.equal(takeBatch([]).length, 0);
});

test("batches stay within 1 MiB, counting UTF-8 bytes of the exact body", () => {
    // ~40 KiB per event: 100 would be ~4 MiB.
    const big = entries(100, 40_000);
    const batch = takeBatch(big);
    const body = encodeBody(batch.map(e => e.event));
    assert.ok(batch.length > 1 && batch.length < 100, `got ${batch.length}`);
    assert.ok(Buffer.byteLength(body) <= MAX_BATCH_BYTES);
    // One more would not fit.
    const plusOne = encodeBody(big.slice(0, batch.length + 1).map(e => e.event));
    assert.ok(Buffer.byteLength(plusOne) > MAX_BATCH_BYTES);
});

test("multi-byte characters are counted as bytes, not chars", () => {
    const emoji = Array.from({ length: 100 }, (_, seq) => ({ seq, event: { type: "message.create", message: message(CH_A, "🚀".repeat(5000)) } as IngestEvent }));
    const batch = takeBatch(emoji);
    assert.ok(Buffer.byteLength(encodeBody(batch.map(e => e.event))) <= MAX_BATCH_BYTES);
    assert.ok(batch.length < 100);
});

test("custom limits are honoured exactly at the boundary", () => {
    const es = entries(3);
    const exact = Buffer.byteLength(encodeBody(es.map(e => e.event)));
    assert.equal(takeBatch(es, { maxEvents: 100, maxBytes: exact }).length, 3);
    assert.equal(takeBatch(es, { maxEvents: 100, maxBytes: exact - 1 }).length, 2);
});

test("an event larger than the limit is still sent alone (the server decides)", () => {
    const huge = entries(2, MAX_BATCH_BYTES + 10);
    assert.equal(takeBatch(huge).length, 1);
});

test("the body is the protocol's {events:[...]} JSON", () => {
    const es = entries(2).map(e => e.event);
    assert.equal(encodeBody(es), JSON.stringify({ events: es }));
    assert.deepEqual(JSON.parse(encodeBody([])), { events: [] });
});
