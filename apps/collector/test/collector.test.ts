/** The collector as a whole, with fake transport, storage and history (no network). */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Collector, type CollectorConfig, validateConfig } from "../src/core/collector";
import { CH_A, CH_B, createPayload, FakeHistory, FakeTime, FakeTransport, GUILD, message, MemoryStorage, OTHER_CH, until } from "./helpers";

const config: CollectorConfig = {
    enabled: true,
    ingestUrl: "http://127.0.0.1:8091/ingest/v1/events",
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    guildId: GUILD,
    channelIds: `${CH_A}, ${CH_B}`,
};

function make(storage = new MemoryStorage(), transport = new FakeTransport(), history = new FakeHistory(), cfg = config) {
    const time = new FakeTime();
    const collector = new Collector({ storage, transport: transport.send, fetchMessagesAfter: (c, a, l) => history.fetch(c, a, l), clock: time.clock, sleep: time.sleep, random: () => 0.5, pageDelayMs: 0 }, cfg);
    return { collector, storage, transport, history, time };
}

/** A snowflake created at `ms`. */
const idAt = (ms: number) => ((BigInt(ms) - 1_420_070_400_000n) << 22n).toString();

const ids = (t: FakeTransport) => t.delivered().map(e => `${e.type}:${e.message.id}`);

test("config validation names every problem", () => {
    assert.deepEqual(validateConfig(config), []);
    const problems = validateConfig({ enabled: true, ingestUrl: "nope", secret: "", guildId: "abc", channelIds: "" });
    assert.equal(problems.length, 4);
    assert.match(validateConfig({ ...config, secret: "whsec_!!" }).join(), /base64/);
});

test("an invalid config does not start, and says why", async () => {
    const { collector } = make(undefined, undefined, undefined, { ...config, channelIds: "" });
    await collector.start();
    assert.equal(collector.isRunning, false);
    assert.match(collector.status.get().lastError ?? "", /no channel ids/);
});

test("forwards create, update and delete of configured channels only; skips optimistic", async () => {
    const t = make();
    await t.collector.start();
    const a = message(CH_A, "BTCUSDT long 100-105 TP 110 SL 95");
    await t.collector.onMessageCreate(createPayload(message(CH_A, "not sent yet"), true));
    await t.collector.onMessageCreate(createPayload(a));
    await t.collector.onMessageCreate(createPayload(message(OTHER_CH, "chatter")));
    await t.collector.onMessageUpdate({ message: { ...a, content: "BTCUSDT long 100-105 TP 112 SL 95" } });
    await t.collector.onMessageUpdate({ message: { id: a.id, channel_id: a.channel_id, guild_id: GUILD, embeds: [{ url: "https://x.test" }] } });
    await t.collector.onMessageDelete({ id: a.id, channelId: CH_A, guildId: GUILD });
    await t.collector.onMessageDelete({ id: "5", channelId: OTHER_CH, guildId: GUILD });
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), [`message.create:${a.id}`, `message.update:${a.id}`, `message.update:${a.id}`, `message.delete:${a.id}`]);
    assert.equal(t.collector.status.get().outboxSize, 0);
    assert.ok(t.collector.status.get().lastDeliveryAt);
    await t.collector.stop();
});

test("events survive a restart while ingest is down, and go out in order afterwards", async () => {
    const storage = new MemoryStorage();
    const down = new FakeTransport();
    down.respond = () => new Error("connect ECONNREFUSED 127.0.0.1:8091");
    const first = make(storage, down);
    await first.collector.start();
    const ms = Array.from({ length: 5 }, (_, i) => message(i % 2 ? CH_B : CH_A, `signal ${i}`));
    for (const m of ms) await first.collector.onMessageCreate(createPayload(m));
    await first.collector.onMessageDelete({ id: ms[1]!.id, channelId: CH_B });
    assert.equal(first.collector.status.get().outboxSize, 6);
    await first.collector.stop();
    assert.match(first.collector.status.get().lastError ?? "", /ECONNREFUSED/);
    assert.equal(down.delivered().length, 0);

    // Discord restarts; ingest is back.
    const second = make(storage);
    await second.collector.start();
    await second.collector.whenIdle();
    assert.deepEqual(ids(second.transport), [...ms.map(m => `message.create:${m.id}`), `message.delete:${ms[1]!.id}`]);
    assert.equal(second.collector.status.get().outboxSize, 0);
    await second.collector.stop();
});

test("start-up backfill forwards what was posted while Discord was closed", async () => {
    const storage = new MemoryStorage();
    const history = new FakeHistory();
    const seen = message(CH_A, "seen live");
    history.post(seen);
    const first = make(storage, undefined, history);
    await first.collector.start();
    await first.collector.onMessageCreate(createPayload(seen));
    await first.collector.whenIdle();
    await first.collector.stop();

    const missed = Array.from({ length: 120 }, (_, i) => message(CH_A, `missed ${i}`));
    for (const m of missed) history.post(m);
    const second = make(storage, undefined, history);
    await second.collector.start();
    await second.collector.whenIdle();
    assert.deepEqual(ids(second.transport), missed.map(m => `message.create:${m.id}`));
    assert.ok(second.transport.delivered().every(e => e.message.guild_id === GUILD));
    await second.collector.stop();
});

test("a reconnect triggers backfill; a failed backfill is retried after a back-off", async () => {
    const t = make();
    await t.collector.start();
    await t.collector.whenIdle(); // first sight of both channels: cursors recorded
    const missed = message(CH_B, "posted during a gateway outage");
    t.history.post(missed);
    t.history.failNext = 1;
    t.collector.onReconnect();
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), [`message.create:${missed.id}`]);
    assert.ok(t.time.sleeps.length >= 1, "backed off before retrying the backfill");
    await t.collector.stop();
});

test("after a 401 a corrected secret resumes delivery without losing anything", async () => {
    const t = make();
    t.transport.respond = (events, n) => n === 1 ? { status: 401, body: "bad signature" } : { status: 200, body: `{"accepted":${events.length}}` };
    await t.collector.start();
    const m = message(CH_A, "keep me");
    await t.collector.onMessageCreate(createPayload(m));
    await t.collector.whenIdle();
    assert.equal(t.collector.status.get().state, "auth_failed");
    await t.collector.onMessageCreate(createPayload(message(CH_A, "and me")));
    assert.equal(t.collector.status.get().outboxSize, 2);
    await t.collector.configure({ ...config, secret: "whsec_bmV3LXNlY3JldC1ieXRlcw==" });
    await t.collector.whenIdle();
    assert.equal(t.transport.delivered().length, 2);
    assert.equal(t.collector.status.get().state, "idle");
    await t.collector.stop();
});

test("events arriving while the outbox is still loading are kept, in order", async () => {
    const t = make();
    const started = t.collector.start();
    const ms = Array.from({ length: 3 }, (_, i) => message(CH_A, `early ${i}`));
    const captured = ms.map(m => t.collector.onMessageCreate(createPayload(m)));
    await started;
    await Promise.all(captured);
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), ms.map(m => `message.create:${m.id}`));
    await t.collector.stop();
});

test("disabling stops collecting; events then are ignored", async () => {
    const t = make();
    await t.collector.start();
    await t.collector.configure({ ...config, enabled: false });
    assert.equal(t.collector.isRunning, false);
    await t.collector.onMessageCreate(createPayload(message(CH_A, "ignored")));
    assert.equal(t.transport.requests.length, 0);
    assert.equal(t.collector.status.get().state, "stopped");
});

test("rejected events can be re-queued once ingest is fixed", async () => {
    const t = make();
    let broken = true;
    t.transport.respond = events => broken ? { status: 400, body: "schema" } : { status: 200, body: `{"accepted":${events.length}}` };
    await t.collector.start();
    const ms = Array.from({ length: 3 }, (_, i) => message(CH_A, `r${i}`));
    for (const m of ms) await t.collector.onMessageCreate(createPayload(m));
    await t.collector.whenIdle();
    assert.equal((await t.collector.rejectedEvents()).length, 3);
    assert.equal(t.collector.status.get().rejected, 3);
    broken = false;
    assert.equal(await t.collector.requeueRejected(), 3);
    await t.collector.whenIdle();
    assert.deepEqual(t.transport.delivered().map(e => e.message.id), ms.map(m => m.id));
    assert.deepEqual(await t.collector.rejectedEvents(), []);
    await t.collector.stop();
});

test("a storage that cannot open keeps the collector stopped, with the reason", async () => {
    const storage = new MemoryStorage();
    storage.get = async () => { throw new Error("IndexedDB blocked"); };
    const t = make(storage);
    await assert.rejects(t.collector.start(), /blocked/);
    assert.equal(t.collector.isRunning, false);
    assert.match(t.collector.status.get().lastError ?? "", /outbox/);
});

test("a live message delivered right after a reconnect does not make backfill skip the gap", async () => {
    const t = make();
    const seen = message(CH_B, "before the outage");
    t.history.post(seen);
    await t.collector.start();
    await t.collector.whenIdle();
    await t.collector.onMessageCreate(createPayload(message(CH_B, "live, cursor moves")));
    await t.collector.whenIdle();

    t.collector.onDisconnect();
    const gap = Array.from({ length: 3 }, (_, i) => message(CH_B, `during outage ${i}`));
    for (const m of gap) t.history.post(m);
    // Reconnect, but hold the history fetch (channel A goes first) until a live message in
    // channel B has been delivered: B's cursor is read only after that.
    let release!: () => void;
    const gate = new Promise<void>(r => { release = r; });
    const fetch = t.history.fetch;
    (t.history as { fetch: typeof fetch }).fetch = async (...args) => { await gate; return fetch(...args); };
    const afterReconnect = message(CH_B, "first live after reconnect");
    t.history.post(afterReconnect);
    t.collector.onReconnect();
    await t.collector.onMessageCreate(createPayload(afterReconnect));
    await until(() => t.transport.delivered().some(e => e.message.id === afterReconnect.id), 2000, "live delivery");
    release();
    await t.collector.whenIdle();
    const delivered = t.transport.delivered().map(e => e.message.id);
    for (const m of gap) assert.ok(delivered.includes(m.id), `gap message ${m.content} delivered`);
    await t.collector.stop();
});

test("with pollMinutes, history is checked periodically even without a reconnect", async () => {
    const t = make(undefined, undefined, undefined, { ...config, pollMinutes: 5 });
    await t.collector.start();
    await t.collector.whenIdle();
    const quiet = message(CH_A, "no live event for this one (big guild, channel not open)");
    t.history.post(quiet);
    await until(() => t.transport.delivered().some(e => e.message.id === quiet.id), 5000, "poll");
    assert.ok(t.time.sleeps.includes(300_000));
    await t.collector.stop();
});

test("events that arrive before start() has even been called wait for it (Vencord does not await start)", async () => {
    const t = make();
    const m = message(CH_A, "before start");
    const captured = t.collector.onMessageCreate(createPayload(m));
    await t.collector.start();
    await captured;
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), [`message.create:${m.id}`]);
    await t.collector.stop();

    // A collector that is stopped (or never runs) drops them instead of holding them forever.
    const off = make(undefined, undefined, undefined, { ...config, enabled: false });
    const dropped = off.collector.onMessageCreate(createPayload(message(CH_A, "off")));
    await off.collector.start();
    await dropped;
    assert.equal(off.transport.requests.length, 0);
});

test("a re-dispatched copy of a forwarded message is not sent as an edit; a real edit is", async () => {
    const t = make();
    await t.collector.start();
    // Posted "just now", so only the memory of what was forwarded can tell a copy from news.
    const m = message(CH_A, "SOL long", idAt(t.time.now - 1000));
    await t.collector.onMessageCreate(createPayload(m));
    await t.collector.onMessageUpdate({ type: "MESSAGE_UPDATE", message: { ...m } });
    const edit = { ...m, content: "SOL long (moved SL)", edited_timestamp: new Date(t.time.now).toISOString() };
    await t.collector.onMessageUpdate({ message: edit });
    await t.collector.onMessageUpdate({ message: { ...edit } });
    await t.collector.onMessageUpdate({ message: { ...m } }); // the pre-edit copy, re-dispatched late
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), [`message.create:${m.id}`, `message.update:${m.id}`]);
    await t.collector.stop();
});

test("a backfilled message re-dispatched unchanged is not sent as an edit", async () => {
    const t = make();
    await t.collector.start();
    await t.collector.whenIdle(); // first sight: cursors recorded
    const missed = message(CH_A, "posted while away", idAt(t.time.now - 1000));
    t.history.post(missed);
    t.collector.onReconnect();
    await t.collector.whenIdle();
    await t.collector.onMessageUpdate({ message: { ...missed } });
    await t.collector.whenIdle();
    assert.deepEqual(ids(t.transport), [`message.create:${missed.id}`]);
    await t.collector.stop();
});
