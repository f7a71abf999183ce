/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * G3netic Signals collector: Vencord user plugin.
 *
 * Thin adapter between Vencord and the plain collector core (./core): it reads the plugin
 * settings, hands Flux message events to the core, gives the core Vencord's DataStore
 * (IndexedDB) as persistent storage, Discord's REST client for backfill, and the native.ts
 * POST (or renderer fetch) as transport, and shows the status in the settings panel.
 * No collector logic lives here; it is all in ./core, tested under Node.
 *
 * Install: copy this folder to src/userplugins/g3Collector/ of a Vencord source build
 * (see docs/collector.md).
 */

import * as DataStore from "@api/DataStore";
import { definePluginSettings } from "@api/Settings";
import { Logger } from "@utils/Logger";
import definePlugin, { OptionType, type PluginNative } from "@utils/types";
import { Constants, React, RestAPI } from "@webpack/common";

import { Collector, type CollectorConfig } from "./core/collector";
import { describeStatus } from "./core/status";
import { fetchTransport, isLoopbackUrl, nativeTransport } from "./core/transport";
import type { DiscordMessage, KeyValueStorage, Transport } from "./core/types";

const PLUGIN_NAME = "G3Collector";
const logger = new Logger(PLUGIN_NAME, "#f0b232");

// The master switch must not be called `enabled`: Settings.plugins[name].enabled is Vencord's own
// on/off switch of the plugin, kept in the same object as these settings.
const settings = definePluginSettings({
    collect: {
        type: OptionType.BOOLEAN,
        description: "Collect: forward messages from the source channels to ingest",
        default: false,
        onChange: () => scheduleReconfigure(),
    },
    ingestUrl: {
        type: OptionType.STRING,
        description: "Ingest endpoint, e.g. http://127.0.0.1:8091/ingest/v1/events",
        default: "http://127.0.0.1:8091/ingest/v1/events",
        onChange: () => scheduleReconfigure(),
    },
    secret: {
        type: OptionType.STRING,
        description: "Ingest signing secret (whsec_… or plain text), shared with the webhook service",
        default: "",
        componentProps: { type: "password", autoComplete: "off" },
        onChange: () => scheduleReconfigure(),
    },
    guildId: {
        type: OptionType.STRING,
        description: "Source guild (server) id",
        default: "",
        onChange: () => scheduleReconfigure(),
    },
    channelIds: {
        type: OptionType.STRING,
        description: "Source channel ids, comma-separated (threads count as channels)",
        default: "",
        onChange: () => scheduleReconfigure(),
    },
    pollMinutes: {
        type: OptionType.NUMBER,
        description: "Also re-check channel history every N minutes (0 = only on start-up and reconnect). Helps in large guilds",
        default: 5,
        onChange: () => scheduleReconfigure(),
    },
});

function readConfig(): CollectorConfig {
    const s = settings.store;
    return {
        enabled: s.collect === true,
        ingestUrl: s.ingestUrl ?? "",
        secret: s.secret ?? "",
        guildId: s.guildId ?? "",
        channelIds: s.channelIds ?? "",
        pollMinutes: Math.max(0, Number(s.pollMinutes) || 0),
    };
}

/** DataStore already has the exact shape (get/set/setMany/delMany over one IndexedDB store). */
const storage: KeyValueStorage = {
    get: key => DataStore.get(key),
    set: (key, value) => DataStore.set(key, value),
    setMany: entries => DataStore.setMany(entries),
    delMany: keys => DataStore.delMany(keys),
};

const native = (typeof VencordNative !== "undefined" ? VencordNative.pluginHelpers?.[PLUGIN_NAME] : undefined) as
    PluginNative<typeof import("./native")> | undefined;

/**
 * Main-process POST when available (desktop, Vesktop): free of the renderer's CSP and CORS.
 * Otherwise (browser build) renderer fetch, which only reaches loopback URLs and needs ingest
 * to answer the CORS preflight.
 */
const transport: Transport = native
    ? nativeTransport((url, headers, body) => native.post(url, headers, body))
    : async (url, headers, body) => {
        if (!isLoopbackUrl(url)) throw new Error("non-loopback ingest URL needs the desktop app (native.ts); the browser build can only reach 127.0.0.1/localhost");
        return fetchTransport(url, headers, body);
    };

/** Discord REST history, via Discord's own client (it carries auth and handles rate limits). */
async function fetchMessagesAfter(channelId: string, afterId: string | undefined, limit: number): Promise<DiscordMessage[]> {
    const query: Record<string, string | number> = { limit };
    if (afterId !== undefined) query.after = afterId;
    let res: { body?: unknown; status?: number };
    try {
        res = await RestAPI.get({ url: Constants.Endpoints.MESSAGES(channelId), query, retries: 2 });
    } catch (err) {
        // Discord's client rejects with the response object on HTTP errors: make it readable.
        const status = (err as { status?: number } | null)?.status;
        throw new Error(status ? `GET messages of ${channelId}: HTTP ${status}` : String(err));
    }
    if (!Array.isArray(res.body)) throw new Error(`GET messages of ${channelId}: unexpected reply`);
    return res.body as DiscordMessage[];
}

let collector: Collector | undefined;
let reconfigureTimer: ReturnType<typeof setTimeout> | undefined;
/** Start, stop and reconfigure, one after the other (Vencord does not await start/stop). */
let lifecycle: Promise<void> = Promise.resolve();

/**
 * Runs `step` after every earlier start/stop/reconfigure has finished, so a collector never
 * starts on the outbox while the previous one is still stopping. Never rejects: Vencord ignores
 * what start()/stop() return, so a failure must be logged here or it would go unhandled.
 */
function inTurn(what: string, step: () => Promise<void>): void {
    lifecycle = lifecycle.then(step).catch(err => logger.error(`${what} failed`, err));
}

/** Settings fire onChange per keystroke: apply them once typing pauses. */
function scheduleReconfigure() {
    clearTimeout(reconfigureTimer);
    reconfigureTimer = setTimeout(() => {
        const c = collector;
        if (c) inTurn("reconfigure", () => c.configure(readConfig()));
    }, 1500);
}

function StatusPanel() {
    const [status, setStatus] = React.useState(() => collector?.status.get());
    const [, tick] = React.useState(0);
    React.useEffect(() => {
        const unsubscribe = collector?.status.subscribe(s => setStatus(s));
        // Re-render every few seconds so "last delivery: N s ago" stays true.
        const timer = setInterval(() => tick(n => n + 1), 5000);
        return () => { unsubscribe?.(); clearInterval(timer); };
    }, []);
    const text = status ? describeStatus(status, Date.now()) : "not running";
    return React.createElement("div", { style: { color: "var(--text-normal)", userSelect: "text" } },
        React.createElement("strong", null, "Collector status: "), text);
}

// `name` must be a string literal, the first property, with no comment before it: Vencord's
// build finds it with a regex to key native.ts under VencordNative.pluginHelpers. Keep it equal
// to PLUGIN_NAME.
export default definePlugin({
    name: "G3Collector",
    description: "G3netic Signals: forwards messages of the source channels to the signed ingest endpoint, with a persistent outbox and backfill",
    authors: [{ name: "G3netic Signals", id: 0n }],
    settings,
    settingsAboutComponent: StatusPanel,

    toolboxActions: {
        // After ingest was fixed, push events it had refused (400/413) through again.
        "G3 Collector: re-send rejected events"() {
            collector?.requeueRejected()
                .then(n => logger.info(`re-queued ${n} rejected event(s)`))
                .catch(err => logger.error("re-queue failed", err));
        },
    },

    // Vencord calls start() and stop() without awaiting them and subscribes the Flux handlers
    // right after start(): both return at once and queue their work (inTurn). The collector
    // exists from the first line, so events arriving before it has started wait for it.
    start() {
        const c = new Collector({ storage, transport, fetchMessagesAfter, log: logger }, readConfig());
        collector = c;
        c.status.subscribe(s => {
            if (s.state === "auth_failed") logger.error(describeStatus(s, Date.now()));
        });
        inTurn("start", async () => {
            try {
                await c.start();
            } finally {
                logger.info(describeStatus(c.status.get(), Date.now()));
            }
        });
    },

    stop() {
        clearTimeout(reconfigureTimer);
        const c = collector;
        collector = undefined;
        if (c) inTurn("stop", () => c.stop());
    },

    // Flux handlers: the core filters by guild/channel and persists before returning.
    flux: {
        MESSAGE_CREATE(e: unknown) { void collector?.onMessageCreate(e).catch(err => logger.error("capture failed", err)); },
        MESSAGE_UPDATE(e: unknown) { void collector?.onMessageUpdate(e).catch(err => logger.error("capture failed", err)); },
        MESSAGE_DELETE(e: unknown) { void collector?.onMessageDelete(e).catch(err => logger.error("capture failed", err)); },
        MESSAGE_DELETE_BULK(e: unknown) { void collector?.onMessageDeleteBulk(e).catch(err => logger.error("capture failed", err)); },
        // Gateway (re)connected: events sent while we were away never arrive, so backfill.
        CONNECTION_OPEN() { collector?.onReconnect(); },
        CONNECTION_RESUMED() { collector?.onReconnect(); },
        CONNECTION_CLOSED() { collector?.onDisconnect(); },
    },
});
