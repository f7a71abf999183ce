/** The delivery loop: ordering, retry/back-off, 401 stop, 400/413 splitting. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Outbox, RejectedLog } from "../src/core/outbox";
import { backoffDelay, Sender } from "../src/core/sender";
import { StatusBox } from "../src/core/status";
import type { IngestEvent } from "../src/core/types";
import { CH_A, FakeTime, FakeTransport, message, MemoryStorage, verifySignature } from "./helpers";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const URL_ = "http://127.0.0.1:9/ingest/v1/events";
const ev = (content: string): IngestEvent => ({ type: "message.create", message: message(CH_A, content) });
const contents = (events: IngestEvent[]) => events.map(e => e.message.content);

async function setup(n: number, random = () => 0.5) {
    const storage = new MemoryStorage();
    const outbox = await Outbox.open(storage, "s:");
    await outbox.append(Array.from({ length: n }, (_, i) => ev(String(i))));
    const transport = new FakeTransport();
    const time = new FakeTime();
    const status = new StatusBox();
    const rejected = new RejectedLog(storage, "s:");
    const delivered: string[] = [];
    const sender = new Sender({
        outbox, transport: transport.send, status, clock: time.clock, sleep: time.sleep, random, log: { info() { }, warn() { }, error() { } },
        target: () => ({ url: URL_, secret: SECRET }),
        onDelivered: async es => { delivered.push(...es.map(e => String(e.event.message.content))); },
        onRejected: async (e, s, r) => rejected.add({ at: 0, status: s, reply: r, event: e.event }),
    });
    return { storage, outbox, transport, time, status, sender, rejected, delivered };
}

test("sends everything in order, in batches of at most 100, one request at a time", async () => {
    const t = await setup(250);
    let inFlight = 0;
    let maxInFlight = 0;
    const inner = t.transport.send;
    const sender = new Sender({
        outbox: t.outbox, status: t.status, clock: t.time.clock, sleep: t.time.sleep, log: console,
        target: () => ({ url: URL_, secret: SECRET }),
        transport: async (u, h, b) => {
            inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
            await new Promise(r => setTimeout(r, 1));
            try { return await inner(u, h, b); } finally { inFlight--; }
        },
    });
    sender.start();
    sender.kick(); sender.kick();
    await sender.whenIdle();
    assert.deepEqual(t.transport.requests.map(r => r.events.length), [100, 100, 50]);
    assert.deepEqual(contents(t.transport.delivered()), Array.from({ length: 250 }, (_, i) => String(i)));
    assert.equal(maxInFlight, 1);
    assert.equal(t.outbox.size, 0);
    assert.equal(t.status.get().state, "idle");
    assert.equal(t.status.get().delivered, 250);
});

test("every request is signed with a fresh id and the current time", async () => {
    const t = await setup(150);
    t.sender.start();
    await t.sender.whenIdle();
    const [a, b] = t.transport.requests;
    assert.ok(a && b);
    for (const r of [a, b]) {
        assert.equal(r.url, URL_);
        assert.ok(verifySignature(SECRET, r.headers, r.body));
        assert.equal(r.headers["webhook-timestamp"], String(Math.floor(t.time.now / 1000)));
        assert.equal(r.headers["content-type"], "application/json");
    }
    assert.notEqual(a.headers["webhook-id"], b.headers["webhook-id"]);
});

test("503 and network errors keep the batch and retry with capped exponential back-off", async () => {
    const t = await setup(3);
    t.transport.respond = (events, n) => n <= 3 ? { status: 503, body: "busy" } : n <= 9 ? new Error("ECONNREFUSED") : { status: 200, body: `{"accepted":${events.length}}` };
    t.sender.start();
    await t.sender.whenIdle();
    assert.equal(t.transport.requests.length, 10);
    // Every attempt carried the same three events, in order.
    for (const r of t.transport.requests) assert.deepEqual(contents(r.events), ["0", "1", "2"]);
    // random = 0.5 → 3/4 of the nominal delay: 1 s, 2 s, 4 s … capped at 60 s.
    assert.deepEqual(t.time.sleeps, [750, 1500, 3000, 6000, 12000, 24000, 45000, 45000, 45000]);
    assert.equal(t.outbox.size, 0);
    assert.deepEqual(t.delivered, ["0", "1", "2"]);
    assert.ok(t.status.get().lastError?.includes("ECONNREFUSED"));
});

test("429 and unexpected statuses are retried too, never dropped", async () => {
    const t = await setup(2);
    t.transport.respond = (_e, n) => n === 1 ? { status: 429, body: "slow down" } : n === 2 ? { status: 404, body: "nope" } : { status: 200, body: "{}" };
    t.sender.start();
    await t.sender.whenIdle();
    assert.deepEqual(t.transport.requests.map(r => r.status), [429, 404, 200]);
    assert.equal(t.outbox.size, 0);
});

test("back-off delay: exponential, jittered within [d/2, d], capped", () => {
    assert.equal(backoffDelay(1, () => 0), 500);
    assert.equal(backoffDelay(1, () => 1), 1000);
    assert.equal(backoffDelay(3, () => 0.5), 3000);
    assert.equal(backoffDelay(50, () => 1), 60_000);
    assert.equal(backoffDelay(50, () => 0), 30_000);
});

test("401 stops sending, keeps every event, and resumes after a settings change", async () => {
    const t = await setup(5);
    t.transport.respond = () => ({ status: 401, body: '{"error":"bad signature"}' });
    t.sender.start();
    await t.sender.whenIdle();
    assert.equal(t.transport.requests.length, 1, "no retry storm on 401");
    assert.equal(t.status.get().state, "auth_failed");
    assert.match(t.status.get().lastError ?? "", /401/);
    assert.equal(t.outbox.size, 5);
    t.sender.kick(); // new events arriving do not restart it
    await t.sender.whenIdle();
    assert.equal(t.transport.requests.length, 1);

    t.transport.respond = events => ({ status: 200, body: `{"accepted":${events.length}}` });
    t.sender.resume();
    await t.sender.whenIdle();
    assert.equal(t.outbox.size, 0);
    assert.equal(t.status.get().state, "idle");
});

test("400 splits the batch; only the event refused on its own is dropped, and logged", async () => {
    const t = await setup(8);
    // Event "5" is poison: any batch containing it is refused.
    t.transport.respond = events => contents(events).includes("5") ? { status: 400, body: '{"error":"bad event"}' } : { status: 200, body: "{}" };
    t.sender.start();
    await t.sender.whenIdle();
    assert.deepEqual(t.delivered, ["0", "1", "2", "3", "4", "6", "7"], "order kept, nothing else lost");
    assert.deepEqual(t.transport.requests.map(r => [r.events.length, r.status]), [
        [8, 400], [4, 200], [4, 400], [2, 400], [1, 200], [1, 400], [2, 200],
    ]);
    const rejected = await t.rejected.list();
    assert.deepEqual(rejected.map(r => [r.status, r.event.message.content]), [[400, "5"]]);
    assert.equal(t.status.get().rejected, 1);
    assert.equal(t.outbox.size, 0);
});

test("413 halves the batch until it fits", async () => {
    const t = await setup(10);
    t.transport.respond = events => events.length > 3 ? { status: 413, body: "too large" } : { status: 200, body: "{}" };
    t.sender.start();
    await t.sender.whenIdle();
    assert.deepEqual(t.delivered, Array.from({ length: 10 }, (_, i) => String(i)));
    assert.equal((await t.rejected.list()).length, 0);
});

test("a transient failure in the middle of a split keeps the rest for later", async () => {
    const t = await setup(4);
    t.transport.respond = (_events, n) => n === 1 ? { status: 400, body: "" } : n === 3 ? { status: 503, body: "" } : { status: 200, body: "{}" };
    t.sender.start();
    await t.sender.whenIdle();
    // 4 → 400; first half [0,1] ok; second half [2,3] 503 → back-off → retried as a new batch.
    assert.deepEqual(t.transport.requests.map(r => [contents(r.events), r.status]), [
        [["0", "1", "2", "3"], 400], [["0", "1"], 200], [["2", "3"], 503], [["2", "3"], 200],
    ]);
    assert.deepEqual(t.delivered, ["0", "1", "2", "3"]);
});

test("stop interrupts a back-off and leaves the events in the outbox", async () => {
    const t = await setup(2);
    t.transport.respond = () => ({ status: 503, body: "" });
    let sleeping!: () => void;
    const slept = new Promise<void>(r => { sleeping = r; });
    const sender = new Sender({
        outbox: t.outbox, transport: t.transport.send, status: t.status, clock: t.time.clock, log: { info() { }, warn() { }, error() { } },
        target: () => ({ url: URL_, secret: SECRET }),
        // A real-time sleep of an hour: only an abort can end it.
        sleep: (ms, signal) => new Promise(resolve => { sleeping(); const timer = setTimeout(resolve, ms * 3600); signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }); }),
    });
    sender.start();
    await slept;
    await sender.stop();
    assert.equal(t.outbox.size, 2);
    assert.equal(t.transport.requests.length, 1);
});
