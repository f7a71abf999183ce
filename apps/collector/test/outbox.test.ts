/** The persistent outbox: survives restarts, keeps order, removes only on ack. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Cursors, Outbox, RejectedLog } from "../src/core/outbox";
import type { IngestEvent } from "../src/core/types";
import { CH_A, message, MemoryStorage } from "./helpers";

const P = "t:";
const ev = (content: string): IngestEvent => ({ type: "message.create", message: message(CH_A, content) });
const contents = (box: Outbox) => box.peek().map(e => e.event.message.content);

test("appended events survive a restart, in order", async () => {
    const storage = new MemoryStorage();
    const a = await Outbox.open(storage, P);
    await a.append([ev("1"), ev("2")]);
    await a.append([ev("3")]);
    // "Restart": a new Outbox over the same storage, nothing shared in memory.
    const b = await Outbox.open(storage, P);
    assert.deepEqual(contents(b), ["1", "2", "3"]);
    assert.deepEqual(b.peek().map(e => e.seq), [0, 1, 2]);
});

test("ack removes from the front and from storage; sequence numbers keep growing", async () => {
    const storage = new MemoryStorage();
    const a = await Outbox.open(storage, P);
    await a.append([ev("1"), ev("2"), ev("3")]);
    await a.ack(2);
    assert.deepEqual(contents(a), ["3"]);
    assert.equal(storage.keysWith(`${P}outbox:`).length, 2, "meta + one entry");
    const b = await Outbox.open(storage, P);
    assert.deepEqual(contents(b), ["3"]);
    await b.append([ev("4")]);
    assert.deepEqual(b.peek().map(e => e.seq), [2, 3]);
    const c = await Outbox.open(storage, P);
    assert.deepEqual(contents(c), ["3", "4"]);
});

test("concurrent appends keep call order", async () => {
    const box = await Outbox.open(new MemoryStorage(), P);
    await Promise.all(Array.from({ length: 50 }, (_, i) => box.append([ev(String(i))])));
    assert.deepEqual(contents(box), Array.from({ length: 50 }, (_, i) => String(i)));
});

test("a half-finished ack (meta written, entries not deleted) is not resent", async () => {
    const storage = new MemoryStorage();
    const a = await Outbox.open(storage, P);
    await a.append([ev("1"), ev("2")]);
    // Simulate a crash after the meta write of ack(1): head moved, entry 0 still stored.
    await storage.set(`${P}outbox:meta`, { head: 1, tail: 2 });
    const b = await Outbox.open(storage, P);
    assert.deepEqual(contents(b), ["2"]);
});

test("if storage fails, events are still queued in memory and the failure is reported", async () => {
    const storage = new MemoryStorage();
    const box = await Outbox.open(storage, P);
    storage.failWrites = true;
    await box.append([ev("1")]);
    assert.deepEqual(contents(box), ["1"]);
    assert.match(box.lastStorageError ?? "", /disk full/);
    storage.failWrites = false;
    await box.append([ev("2")]);
    assert.equal(box.lastStorageError, undefined);
});

test("cursors only move forward and persist", async () => {
    const storage = new MemoryStorage();
    const c = new Cursors(storage, P);
    assert.equal(await c.get(CH_A), undefined);
    await c.advance(CH_A, "1000000000000000200");
    await c.advance(CH_A, "1000000000000000100");
    await c.advance(CH_A, "999999999999999999"); // shorter = smaller
    assert.equal(await new Cursors(storage, P).get(CH_A), "1000000000000000200");
    await c.advance(CH_A, "10000000000000000000");
    assert.equal(await new Cursors(storage, P).get(CH_A), "10000000000000000000");
});

test("the rejected log keeps the most recent 500", async () => {
    const log = new RejectedLog(new MemoryStorage(), P);
    for (let i = 0; i < 510; i++) await log.add({ at: i, status: 400, reply: "bad", event: ev(String(i)) });
    const list = await log.list();
    assert.equal(list.length, 500);
    assert.equal(list[0]!.event.message.content, "10");
    await log.removeOldest(499);
    assert.deepEqual((await log.list()).map(r => r.event.message.content), ["509"]);
});
