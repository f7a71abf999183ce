/**
 * End to end over real HTTP: the collector against a fake ingest service on 127.0.0.1:0 that
 * verifies signatures exactly as the protocol says. Ingest answers 503, then disappears
 * (connection refused), the plugin restarts meanwhile, then ingest comes back: every event
 * must arrive at least once, in order. Run once with renderer `fetch`, once with native.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Collector, type CollectorConfig } from "../src/core/collector";
import { fetchTransport, isLoopbackUrl, nativeTransport } from "../src/core/transport";
import { type IngestEvent, realSleep, type Sleep, type Transport } from "../src/core/types";
import { post } from "../src/native";
import { drive } from "../tools/drive";
import { CH_A, CH_B, createPayload, FakeHistory, FakeIngest, GUILD, message, MemoryStorage, until } from "./helpers";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
// Real timers, but back-off shortened so the test takes a second, not minutes.
const quickSleep: Sleep = (ms, signal) => realSleep(Math.min(ms, 25), signal);
const key = (e: IngestEvent) => `${e.type}:${e.message.id}:${e.message.content ?? ""}`;
const tick = () => new Promise(r => setTimeout(r, 1));

const transports: [string, Transport][] = [
    ["renderer fetch", fetchTransport],
    ["native.ts", nativeTransport((url, headers, body) => post(undefined, url, headers, body))],
];

for (const [name, transport] of transports) {
    test(`ingest down (503, then refused) across a plugin restart, then up: nothing lost, order kept (${name})`, async () => {
        const ingest = new FakeIngest(SECRET);
        await ingest.listen();
        const storage = new MemoryStorage();
        const history = new FakeHistory();
        const config: CollectorConfig = { enabled: true, ingestUrl: ingest.url, secret: SECRET, guildId: GUILD, channelIds: `${CH_A},${CH_B}` };
        const make = () => new Collector({ storage, transport, fetchMessagesAfter: history.fetch, sleep: quickSleep, pageDelayMs: 0, backoffBaseMs: 5, backoffCapMs: 40 }, config);

        const produced: string[] = [];
        let collector = make();
        await collector.start();
        let n = 0;
        async function produce(count: number) {
            for (let i = 0; i < count; i++, n++) {
                const m = message(n % 2 ? CH_A : CH_B, `signal ${n}`);
                await collector.onMessageCreate(createPayload(m));
                produced.push(`message.create:${m.id}:${m.content}`);
                if (n % 5 === 0) {
                    const edited = { ...m, content: `signal ${n} (edited)` };
                    await collector.onMessageUpdate({ message: edited });
                    produced.push(`message.update:${m.id}:${edited.content}`);
                }
                if (n % 7 === 0) {
                    await collector.onMessageDelete({ id: m.id, channelId: m.channel_id, guildId: GUILD });
                    produced.push(`message.delete:${m.id}:`);
                }
                await tick();
            }
        }

        await produce(40);
        ingest.failWith = 503;
        await produce(40);
        await until(() => ingest.statuses.includes(503), 5000, "a 503");
        await ingest.close();
        await produce(40);
        // Discord restarts while ingest is unreachable.
        await collector.stop();
        assert.ok(collector.status.get().outboxSize > 0, "events were waiting");
        collector = make();
        await collector.start();
        await produce(40);
        ingest.failWith = undefined;
        await ingest.listen(ingest.port);
        await produce(40);

        await until(() => new Set(ingest.events.map(key)).size >= produced.length, 15000, "all events at ingest");
        await collector.whenIdle();
        const firstSeen: string[] = [];
        const seen = new Set<string>();
        for (const k of ingest.events.map(key)) if (!seen.has(k)) { seen.add(k); firstSeen.push(k); }
        assert.deepEqual(firstSeen, produced, "every event at least once, in production order");
        assert.equal(collector.status.get().outboxSize, 0);
        assert.ok(collector.status.get().lastDeliveryAt);
        await collector.stop();
        await ingest.close();
    });
}

test("large messages are batched under 1 MiB and accepted by a strict server", async () => {
    const ingest = new FakeIngest(SECRET);
    await ingest.listen();
    const collector = new Collector({ storage: new MemoryStorage(), transport: fetchTransport, fetchMessagesAfter: new FakeHistory().fetch, pageDelayMs: 0 },
        { enabled: true, ingestUrl: ingest.url, secret: SECRET, guildId: GUILD, channelIds: CH_A });
    await collector.start();
    const ms = Array.from({ length: 120 }, (_, i) => message(CH_A, `${i} ${"x".repeat(30_000)}`));
    for (const m of ms) await collector.onMessageCreate(createPayload(m));
    await until(() => ingest.events.length >= ms.length, 10000, "all large events");
    await collector.whenIdle();
    assert.deepEqual(ingest.events.map(e => e.message.id), ms.map(m => m.id));
    assert.ok(!ingest.statuses.includes(413));
    assert.ok(ingest.statuses.length >= 4, "split by size, not only by count");
    await collector.stop();
    await ingest.close();
});

test("a wrong secret gets 401 from a real server: sending pauses, events kept", async () => {
    const ingest = new FakeIngest(SECRET);
    await ingest.listen();
    const collector = new Collector({ storage: new MemoryStorage(), transport: fetchTransport, fetchMessagesAfter: new FakeHistory().fetch, pageDelayMs: 0 },
        { enabled: true, ingestUrl: ingest.url, secret: "not-the-secret", guildId: GUILD, channelIds: CH_A });
    await collector.start();
    await collector.onMessageCreate(createPayload(message(CH_A, "x")));
    await until(() => collector.status.get().state === "auth_failed", 5000, "auth_failed");
    assert.deepEqual(ingest.statuses, [401]);
    assert.equal(collector.status.get().outboxSize, 1);
    await collector.stop();
    await ingest.close();
});

test("native post: returns statuses, reports network errors and refuses non-http URLs as values", async () => {
    const ingest = new FakeIngest(SECRET);
    await ingest.listen();
    const ok = await post(undefined, ingest.url, { "content-type": "application/json" }, "{}");
    assert.deepEqual(ok.ok && ok.status, 401); // unsigned
    const url = ingest.url;
    await ingest.close();
    const down = await post(undefined, url, {}, "{}");
    assert.equal(down.ok, false);
    assert.equal((await post(undefined, "file:///etc/passwd", {}, "")).ok, false);
    assert.equal((await post(undefined, "not a url", {}, "")).ok, false);
});

test("loopback detection decides whether the renderer may fetch", () => {
    assert.ok(isLoopbackUrl("http://127.0.0.1:8091/ingest/v1/events"));
    assert.ok(isLoopbackUrl("http://localhost:8091/x"));
    assert.ok(isLoopbackUrl("http://[::1]:8091/x"));
    assert.ok(!isLoopbackUrl("https://ingest.example.com/ingest/v1/events"));
    assert.ok(!isLoopbackUrl("http://127.0.0.1.evil.test/x"));
    assert.ok(!isLoopbackUrl("ftp://127.0.0.1/x"));
    assert.ok(!isLoopbackUrl("garbage"));
});

test("the drive tool delivers its generated events to a signed ingest and reports it", async () => {
    const ingest = new FakeIngest(SECRET);
    await ingest.listen();
    const { produced, drained } = await drive({ url: ingest.url, secret: SECRET, guild: GUILD, channels: [CH_A, CH_B], count: 12, timeoutMs: 10_000, quiet: true });
    assert.ok(drained);
    assert.equal(produced.length, 12 + 2 + 1);
    assert.deepEqual(ingest.events.map(key), produced.map(key));
    await ingest.close();
});
