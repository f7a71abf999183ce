/** Backfill: paging from the cursor, first-run behaviour, no double queueing. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { backfillChannel } from "../src/core/backfill";
import { makeFilter } from "../src/core/events";
import { Cursors, Outbox } from "../src/core/outbox";
import { CH_A, CH_B, FakeHistory, FakeTime, GUILD, message, MemoryStorage } from "./helpers";

async function setup() {
    const storage = new MemoryStorage();
    const outbox = await Outbox.open(storage, "b:");
    const cursors = new Cursors(storage, "b:");
    const history = new FakeHistory();
    const time = new FakeTime();
    const opts = { fetchMessagesAfter: history.fetch, cursors, outbox, filter: makeFilter(GUILD, `${CH_A},${CH_B}`), sleep: time.sleep, pageDelayMs: 250 };
    return { storage, outbox, cursors, history, time, opts };
}

test("pages forward from the cursor, oldest first, until caught up", async () => {
    const t = await setup();
    const before = Array.from({ length: 5 }, (_, i) => message(CH_A, `old ${i}`));
    const after = Array.from({ length: 250 }, (_, i) => message(CH_A, `new ${i}`));
    for (const m of [...before, ...after]) t.history.post(m);
    await t.cursors.advance(CH_A, before[4]!.id);

    const queued = await backfillChannel(t.opts, CH_A);
    assert.equal(queued, 250);
    const events = t.outbox.peek().map(e => e.event);
    assert.deepEqual(events.map(e => e.message.content), after.map(m => m.content));
    assert.ok(events.every(e => e.type === "message.create" && e.message.guild_id === GUILD && e.message.channel_id === CH_A));
    assert.deepEqual(t.history.calls.map(c => [c.afterId, c.limit]), [
        [before[4]!.id, 100], [after[99]!.id, 100], [after[199]!.id, 100],
    ]);
    assert.deepEqual(t.time.sleeps, [250, 250], "pauses between pages");
});

test("a full last page costs one more (empty) request, then stops", async () => {
    const t = await setup();
    const cursor = message(CH_A, "seen");
    t.history.post(cursor);
    for (let i = 0; i < 200; i++) t.history.post(message(CH_A, `m${i}`));
    await t.cursors.advance(CH_A, cursor.id);
    assert.equal(await backfillChannel(t.opts, CH_A), 200);
    assert.equal(t.history.calls.length, 3);
});

test("without a cursor it only remembers the newest id, then forwards what comes later", async () => {
    const t = await setup();
    const old = Array.from({ length: 30 }, (_, i) => message(CH_A, `history ${i}`));
    for (const m of old) t.history.post(m);
    assert.equal(await backfillChannel(t.opts, CH_A), 0);
    assert.equal(t.outbox.size, 0, "old history is not forwarded");
    assert.equal(await t.cursors.get(CH_A), old[29]!.id);
    assert.deepEqual(t.history.calls.map(c => [c.afterId, c.limit]), [[undefined, 1]]);

    const later = message(CH_A, "posted while away");
    t.history.post(later);
    assert.equal(await backfillChannel(t.opts, CH_A), 1);
    assert.equal(t.outbox.peek()[0]?.event.message.id, later.id);
});

test("an empty channel starts from 0, so its first messages are not missed", async () => {
    const t = await setup();
    assert.equal(await backfillChannel(t.opts, CH_B), 0);
    assert.equal(await t.cursors.get(CH_B), "0");
    const first = message(CH_B, "first ever");
    t.history.post(first);
    assert.equal(await backfillChannel(t.opts, CH_B), 1);
});

test("messages already waiting in the outbox are not queued again", async () => {
    const t = await setup();
    const ms = Array.from({ length: 6 }, (_, i) => message(CH_A, `m${i}`));
    for (const m of ms) t.history.post(m);
    await t.cursors.advance(CH_A, ms[0]!.id);
    // m1..m3 were captured live but not yet delivered (ingest down).
    await t.outbox.append(ms.slice(1, 4).map(m => ({ type: "message.create" as const, message: m })));
    assert.equal(await backfillChannel(t.opts, CH_A), 2);
    assert.equal(t.history.calls[0]?.afterId, ms[0]!.id, "resumes after the cursor, skipping what is pending");
    assert.deepEqual(t.outbox.peek().map(e => e.event.message.content), ["m1", "m2", "m3", "m4", "m5"]);
});

test("a failed fetch throws and queues nothing more", async () => {
    const t = await setup();
    await t.cursors.advance(CH_A, "1");
    t.history.failNext = 1;
    await assert.rejects(backfillChannel(t.opts, CH_A), /502/);
    assert.equal(t.outbox.size, 0);
});
