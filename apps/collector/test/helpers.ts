/**
 * Test doubles shared by the collector tests: storage, clock/sleep, Discord messages and
 * history, and a fake ingest HTTP server that checks signatures the way the protocol says
 * (with Node's own crypto, independently of the code under test).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { compareSnowflakes } from "../src/core/snowflake";
import type { DiscordMessage, IngestEvent, KeyValueStorage, Sleep, Transport, TransportResponse } from "../src/core/types";

/** In-memory KeyValueStorage with IndexedDB-like copy semantics and optional failures. */
export class MemoryStorage implements KeyValueStorage {
    readonly data = new Map<string, unknown>();
    failWrites = false;
    writes = 0;

    async get<T>(key: string): Promise<T | undefined> {
        const v = this.data.get(key);
        return v === undefined ? undefined : structuredClone(v) as T;
    }
    async set(key: string, value: unknown): Promise<void> {
        this.check();
        this.data.set(key, structuredClone(value));
    }
    async setMany(entries: [string, unknown][]): Promise<void> {
        this.check();
        for (const [k, v] of entries) this.data.set(k, structuredClone(v));
    }
    async delMany(keys: string[]): Promise<void> {
        this.check();
        for (const k of keys) this.data.delete(k);
    }
    private check() {
        this.writes++;
        if (this.failWrites) throw new Error("disk full (simulated)");
    }
    keysWith(prefix: string): string[] {
        return [...this.data.keys()].filter(k => k.startsWith(prefix));
    }
}

/** A clock that only moves when the code under test sleeps; sleeps resolve at once. */
export class FakeTime {
    now = 1_700_000_000_000;
    readonly sleeps: number[] = [];
    readonly clock = () => this.now;
    readonly sleep: Sleep = async (ms, signal) => {
        this.sleeps.push(ms);
        if (signal?.aborted) return;
        this.now += ms;
        // Yield to the event loop so other async work (e.g. a server coming back) can happen.
        await new Promise(resolve => setImmediate(resolve));
    };
}

/** Waits until `cond` holds, polling the event loop; fails after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise(resolve => setTimeout(resolve, 2));
    }
}

export const GUILD = "900000000000000001";
export const CH_A = "900000000000000010";
export const CH_B = "900000000000000020";
export const OTHER_CH = "900000000000000099";

let nextId = 1_000_000_000_000_000_000n;
/** A fresh, increasing snowflake. */
export function snowflake(): string {
    nextId += 1000n;
    return nextId.toString();
}

export function message(channelId: string, content: string, id = snowflake(), guildId: string | null = GUILD): DiscordMessage {
    const m: DiscordMessage = {
        id,
        channel_id: channelId,
        author: { id: "42", username: "caller", global_name: "Caller" },
        content,
        embeds: [],
        attachments: [],
        timestamp: "2026-11-25T20:00:00.000000+00:00",
        edited_timestamp: null,
    };
    if (guildId) m.guild_id = guildId;
    return m;
}

export function createPayload(m: DiscordMessage, optimistic = false) {
    return { type: "MESSAGE_CREATE", channelId: m.channel_id, guildId: m.guild_id, message: m, optimistic, isPushNotification: false };
}

/** A fake Discord channel history for backfill: newest-first pages, like the REST API. */
export class FakeHistory {
    readonly channels = new Map<string, DiscordMessage[]>();
    readonly calls: { channelId: string; afterId: string | undefined; limit: number }[] = [];
    failNext = 0;

    post(m: DiscordMessage) {
        const list = this.channels.get(m.channel_id) ?? [];
        // REST history has no guild_id; the collector must add it.
        const { guild_id: _drop, ...rest } = m;
        list.push(rest as DiscordMessage);
        this.channels.set(m.channel_id, list);
    }

    readonly fetch = async (channelId: string, afterId: string | undefined, limit: number): Promise<DiscordMessage[]> => {
        this.calls.push({ channelId, afterId, limit });
        if (this.failNext > 0) {
            this.failNext--;
            throw new Error("HTTP 502 (simulated)");
        }
        const all = [...(this.channels.get(channelId) ?? [])].sort((a, b) => compareSnowflakes(a.id, b.id));
        const page = afterId === undefined
            ? all.slice(-limit) // newest
            : all.filter(m => compareSnowflakes(m.id, afterId) > 0).slice(0, limit); // oldest after the cursor
        return structuredClone(page).reverse(); // newest first, as Discord returns them
    };
}

/** A scripted transport: records requests (with the status it answered; 0 = network error). */
export class FakeTransport {
    readonly requests: { url: string; headers: Record<string, string>; body: string; events: IngestEvent[]; status: number }[] = [];
    respond: (events: IngestEvent[], n: number) => TransportResponse | Error = events => ({ status: 200, body: JSON.stringify({ accepted: events.length }) });

    readonly send: Transport = async (url, headers, body) => {
        const events = (JSON.parse(body) as { events: IngestEvent[] }).events;
        const r = this.respond(events, this.requests.length + 1);
        this.requests.push({ url, headers, body, events, status: r instanceof Error ? 0 : r.status });
        if (r instanceof Error) throw r;
        return r;
    };

    /** Events of the requests answered 2xx, in order. */
    delivered(): IngestEvent[] {
        return this.requests.filter(r => r.status >= 200 && r.status < 300).flatMap(r => r.events);
    }
}

/** Verifies a Standard Webhooks signature with Node's crypto (independent of src/core/sign.ts). */
export function verifySignature(secret: string, headers: Record<string, string | string[] | undefined>, body: string): boolean {
    const id = headers["webhook-id"];
    const ts = headers["webhook-timestamp"];
    const sig = headers["webhook-signature"];
    if (typeof id !== "string" || typeof ts !== "string" || typeof sig !== "string") return false;
    const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
    const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
    return sig.split(" ").some(part => {
        const [version, value] = part.split(",");
        if (version !== "v1" || value === undefined) return false;
        const a = Buffer.from(value);
        const b = Buffer.from(expected);
        return a.length === b.length && timingSafeEqual(a, b);
    });
}

/**
 * A fake ingest service on 127.0.0.1:0. Checks method, path, content type, timestamp window,
 * webhook-id uniqueness and the signature; records accepted events in arrival order.
 */
export class FakeIngest {
    readonly events: IngestEvent[] = [];
    readonly seenIds = new Set<string>();
    readonly statuses: number[] = [];
    /** Answer with this status instead of accepting (e.g. 503), while set. */
    failWith: number | undefined;
    port = 0;
    private server: Server | undefined;

    constructor(readonly secret: string, readonly now: () => number = Date.now) { }

    get url() { return `http://127.0.0.1:${this.port}/ingest/v1/events`; }

    async listen(port = this.port): Promise<void> {
        const server = createServer((req, res) => { void this.handle(req, res); });
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, "127.0.0.1", () => resolve());
        });
        this.port = (server.address() as AddressInfo).port;
        this.server = server;
    }

    /** Goes away completely: connections are refused until `listen()` again. */
    async close(): Promise<void> {
        const server = this.server;
        this.server = undefined;
        if (!server) return;
        server.closeAllConnections();
        await new Promise<void>(resolve => server.close(() => resolve()));
    }

    private reply(res: ServerResponse, status: number, body: unknown) {
        this.statuses.push(status);
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
    }

    private async handle(req: IncomingMessage, res: ServerResponse) {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = Buffer.concat(chunks).toString("utf8");
        if (req.method !== "POST" || req.url !== "/ingest/v1/events") return this.reply(res, 404, { error: "not found" });
        if (this.failWith !== undefined) return this.reply(res, this.failWith, { error: "unavailable" });
        if (req.headers["content-type"] !== "application/json") return this.reply(res, 400, { error: "content-type" });
        if (!verifySignature(this.secret, req.headers, body)) return this.reply(res, 401, { error: "bad signature" });
        const ts = Number(req.headers["webhook-timestamp"]);
        if (!Number.isFinite(ts) || Math.abs(this.now() / 1000 - ts) > 300) return this.reply(res, 401, { error: "timestamp outside window" });
        const id = String(req.headers["webhook-id"]);
        if (this.seenIds.has(id)) return this.reply(res, 200, { accepted: 0, replay: true });
        if (Buffer.byteLength(body) > 1024 * 1024) return this.reply(res, 413, { error: "too large" });
        let parsed: { events?: IngestEvent[] };
        try { parsed = JSON.parse(body) as { events?: IngestEvent[] }; } catch { return this.reply(res, 400, { error: "json" }); }
        if (!Array.isArray(parsed.events) || parsed.events.length === 0 || parsed.events.length > 100) return this.reply(res, 400, { error: "batch" });
        this.seenIds.add(id);
        this.events.push(...parsed.events);
        this.reply(res, 200, { accepted: parsed.events.length });
    }
}
