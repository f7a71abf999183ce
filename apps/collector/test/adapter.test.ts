/**
 * The real Vencord adapter (src/index.ts), loaded with fake Vencord modules and driven the way
 * Vencord drives plugins (test/fake-vencord): start()/stop() not awaited, Flux subscribed right
 * after start, the plugin card flipping `Settings.plugins[name].enabled` after start/stop, and
 * other plugins dispatching synthetic Flux events. Ingest is a fake HTTP server on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, test } from "node:test";

import { type LoadedPlugin, loadPlugin } from "./fake-vencord/load";
import { FluxDispatcher, hooks, isPluginEnabled, logText, returned, Settings, startPlugin, stopPlugin, togglePlugin } from "./fake-vencord/vencord";
import { CH_A, createPayload, FakeIngest, GUILD, message, until } from "./helpers";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NAME = "G3Collector";

/** A snowflake of "now", so the message looks freshly posted. */
function freshId(offset = 0): string {
    return ((BigInt(Date.now() - 1_420_070_400_000) << 22n) + BigInt(offset)).toString();
}

let plugin: LoadedPlugin | undefined;
let ingest: FakeIngest | undefined;
const unhandled: unknown[] = [];
process.on("unhandledRejection", reason => { unhandled.push(reason); });

afterEach(async () => {
    if (plugin?.started) stopPlugin(plugin);
    // Let the not-awaited stop finish before the next test loads a fresh plugin.
    await new Promise(resolve => setTimeout(resolve, 50));
    plugin = undefined;
    await ingest?.close();
    ingest = undefined;
});

async function setup(userSettings: Record<string, unknown>) {
    plugin = loadPlugin();
    ingest = new FakeIngest(SECRET);
    await ingest.listen();
    Settings.plugins[NAME] = { enabled: false, ingestUrl: ingest.url, secret: SECRET, guildId: GUILD, channelIds: CH_A, pollMinutes: 0, ...userSettings };
    return { plugin, ingest };
}

const sent = (i: FakeIngest) => i.events.map(e => `${e.type}:${e.message.id}`);

test("the master switch is the plugin's own setting, not Vencord's `enabled`, and defaults to off", async () => {
    const p = loadPlugin();
    const def = p.settings.def as Record<string, { type?: number; default?: unknown }>;
    assert.equal("enabled" in def, false, "`enabled` is Vencord's on/off switch of the plugin itself");
    assert.equal(def.collect?.default, false);
    Settings.plugins[NAME] = { enabled: true };
    assert.equal(p.settings.store.collect, false, "the default applies although Vencord set `enabled`");
    // Turning the master switch off leaves the plugin enabled.
    p.settings.store.collect = false;
    assert.equal(isPluginEnabled(NAME), true);
});

test("at boot with the plugin on but the master switch never set, nothing is forwarded", async () => {
    const { plugin: p, ingest: i } = await setup({ enabled: true });
    assert.ok(startPlugin(p));
    const m = message(CH_A, "must not leave", freshId());
    FluxDispatcher.dispatch(createPayload(m));
    await new Promise(resolve => setTimeout(resolve, 300));
    assert.deepEqual(i.events, []);
});

test("enabled from the plugin card (start runs before Vencord sets `enabled`): the first event is forwarded", async () => {
    const { plugin: p, ingest: i } = await setup({ collect: true });
    assert.ok(togglePlugin(p));
    // Vencord subscribed Flux right after calling start(), which has not finished yet.
    const m = message(CH_A, "BTC long", freshId());
    FluxDispatcher.dispatch(createPayload(m));
    await until(() => i.events.length >= 1, 5000, "the first message");
    assert.deepEqual(sent(i), [`message.create:${m.id}`]);
});

test("start() and stop() return nothing to Vencord; a failing start is logged, never an unhandled rejection", async () => {
    const { plugin: p } = await setup({ collect: true });
    hooks.failStorage = true;
    const before = unhandled.length;
    assert.ok(togglePlugin(p));
    await until(() => logText("error").some(l => /start/.test(l)), 5000, "the start failure in the log");
    assert.ok(togglePlugin(p));
    await new Promise(resolve => setTimeout(resolve, 50));
    assert.deepEqual(returned.map(r => [r.fn, r.value]), [["start", undefined], ["stop", undefined]]);
    assert.equal(unhandled.length, before);
});

test("toggled off and on while a request is in flight: no 'already started', one request at a time, nothing lost", async () => {
    // An ingest that holds its first request until released and counts concurrent requests.
    let inFlight = 0;
    let maxInFlight = 0;
    let release: () => void = () => undefined;
    const held = new Promise<void>(resolve => { release = resolve; });
    const received: string[] = [];
    let first = true;
    const server: Server = createServer(async (req, res) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const events = (JSON.parse(Buffer.concat(chunks).toString()) as { events: { type: string; message: { id: string } }[] }).events;
        if (first) { first = false; await held; }
        received.push(...events.map(e => `${e.type}:${e.message.id}`));
        inFlight--;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ accepted: events.length }));
    });
    await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
    try {
        const { plugin: p } = await setup({ collect: true });
        Settings.plugins[NAME]!.ingestUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest/v1/events`;
        assert.ok(togglePlugin(p));
        const m1 = message(CH_A, "one", freshId());
        FluxDispatcher.dispatch(createPayload(m1));
        await until(() => inFlight === 1, 5000, "the first request in flight");
        assert.ok(togglePlugin(p), "switched off");
        assert.ok(togglePlugin(p), "switched on again");
        const m2 = message(CH_A, "two", freshId(1));
        FluxDispatcher.dispatch(createPayload(m2));
        await new Promise(resolve => setTimeout(resolve, 200));
        release();
        await until(() => received.length >= 2, 5000, "both messages");
        await new Promise(resolve => setTimeout(resolve, 200));
        assert.deepEqual(received, [`message.create:${m1.id}`, `message.create:${m2.id}`]);
        assert.equal(maxInFlight, 1, "the restarted collector waited for the old one to stop");
        assert.deepEqual(logText("warn").filter(l => /already/.test(l)), []);
    } finally {
        release();
        server.closeAllConnections();
        await new Promise(resolve => server.close(resolve));
    }
});

test("synthetic Flux events from other plugins are not forwarded; real ones are", async () => {
    const { plugin: p, ingest: i } = await setup({ collect: true });
    assert.ok(togglePlugin(p));
    const m = message(CH_A, "ETH short", freshId());
    FluxDispatcher.dispatch(createPayload(m));
    await until(() => i.events.length >= 1, 5000, "the create");

    // MessageLogger / MessageClickActions: "remove the logged deleted message" from the view.
    FluxDispatcher.dispatch({ type: "MESSAGE_DELETE", id: m.id, channelId: CH_A, mlDeleted: true });
    FluxDispatcher.dispatch({ type: "MESSAGE_DELETE_BULK", ids: [m.id], channelId: CH_A, mlDeleted: true });
    // ValidReply: a replied-to message fetched over REST and re-dispatched, unchanged or old.
    FluxDispatcher.dispatch({ type: "MESSAGE_UPDATE", message: { ...m } });
    const old = message(CH_A, "posted in 2022, never edited");
    FluxDispatcher.dispatch({ type: "MESSAGE_UPDATE", message: old });
    FluxDispatcher.dispatch({ type: "MESSAGE_UPDATE", message: { ...old, edited_timestamp: "2022-07-01T10:00:00.000000+00:00" } });
    // ValidReply's "reply target is gone" (no `id`, the id is in `message`).
    FluxDispatcher.dispatch({ type: "MESSAGE_DELETE", channelId: CH_A, message: m.id });
    // A local bot reply (Vencord's sendBotMessage): ephemeral, never in the channel.
    FluxDispatcher.dispatch(createPayload({ ...message(CH_A, "Clyde says hi", freshId(7)), flags: 64, author: { id: "1", username: "Clyde" } }));

    // Then a real edit and a real delete.
    const edited = { ...m, content: "ETH short (edited)", edited_timestamp: new Date().toISOString() };
    FluxDispatcher.dispatch({ type: "MESSAGE_UPDATE", message: edited });
    FluxDispatcher.dispatch({ type: "MESSAGE_DELETE", id: m.id, channelId: CH_A, guildId: GUILD });
    await until(() => i.events.length >= 3, 5000, "the edit and the delete");
    await new Promise(resolve => setTimeout(resolve, 200));
    assert.deepEqual(sent(i), [`message.create:${m.id}`, `message.update:${m.id}`, `message.delete:${m.id}`]);
    assert.equal(i.events[1]!.message.content, "ETH short (edited)");
});
