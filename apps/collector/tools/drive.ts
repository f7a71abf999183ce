/**
 * Drives the real collector core from the command line against any ingest URL, with Discord
 * replaced by generated events. For end-to-end tests against the Rust webhook service and for
 * smoke tests of a deployment:
 *
 *   node dist/tools/drive.js --url http://127.0.0.1:8091/ingest/v1/events --secret whsec_... \
 *        --guild 900000000000000001 --channel 900000000000000010 --count 50 [--timeout-ms 30000]
 *
 * Each generated message gets a create; every 5th also an edit, every 7th also a delete. The
 * outbox lives in memory (or in --state FILE, a JSON file, to exercise restarts). Prints one
 * JSON line: {"produced": n, "delivered": n, "status": {...}, "events": [...]} and exits 0 when
 * the outbox drained, 1 on timeout, 2 on bad arguments.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

import { Collector } from "../src/core/collector";
import { fetchTransport } from "../src/core/transport";
import type { IngestEvent, KeyValueStorage } from "../src/core/types";

export interface DriveOptions {
    url: string;
    secret: string;
    guild: string;
    channels: string[];
    count: number;
    timeoutMs: number;
    state?: string;
    /** First snowflake to use (ids increase by 4096 from there). */
    firstId?: bigint;
    quiet?: boolean;
}

// Logs go to stderr: stdout carries the one JSON result line.
const stderrLog = { info: console.error, warn: console.error, error: console.error };

/** A KeyValueStorage in one JSON file, rewritten atomically on every change (fine for a tool). */
export class JsonFileStorage implements KeyValueStorage {
    private data: Record<string, unknown>;
    constructor(private readonly path: string) {
        this.data = existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown> : {};
    }
    private save() {
        writeFileSync(`${this.path}.tmp`, JSON.stringify(this.data));
        renameSync(`${this.path}.tmp`, this.path);
    }
    async get<T>(key: string) { return this.data[key] as T | undefined; }
    async set(key: string, value: unknown) { this.data[key] = value; this.save(); }
    async setMany(entries: [string, unknown][]) { for (const [k, v] of entries) this.data[k] = v; this.save(); }
    async delMany(keys: string[]) { for (const k of keys) delete this.data[k]; this.save(); }
}

class MapStorage implements KeyValueStorage {
    private readonly map = new Map<string, unknown>();
    async get<T>(key: string) { return structuredClone(this.map.get(key)) as T | undefined; }
    async set(key: string, value: unknown) { this.map.set(key, structuredClone(value)); }
    async setMany(entries: [string, unknown][]) { for (const [k, v] of entries) this.map.set(k, structuredClone(v)); }
    async delMany(keys: string[]) { for (const k of keys) this.map.delete(k); }
}

export async function drive(o: DriveOptions): Promise<{ produced: IngestEvent[]; drained: boolean; collector: Collector }> {
    const storage = o.state ? new JsonFileStorage(o.state) : new MapStorage();
    const collector = new Collector(
        // No Discord here: history is always empty, so backfill only records cursors.
        { storage, transport: fetchTransport, fetchMessagesAfter: async () => [], log: o.quiet ? undefined : stderrLog, pageDelayMs: 0 },
        { enabled: true, ingestUrl: o.url, secret: o.secret, guildId: o.guild, channelIds: o.channels.join(",") },
    );
    await collector.start();
    const produced: IngestEvent[] = [];
    // Snowflakes from "now", so they look like fresh messages to ingest.
    let id = o.firstId ?? (BigInt(Date.now() - 1_420_070_400_000) << 22n);
    for (let i = 0; i < o.count; i++) {
        id += 4096n;
        const channel = o.channels[i % o.channels.length]!;
        const message = {
            id: id.toString(), channel_id: channel, guild_id: o.guild,
            author: { id: "100000000000000001", username: "drive", global_name: "Drive" },
            content: `BTCUSDT LONG\nEntry: ${100 + i}\nTP1: ${110 + i}\nSL: ${90 + i}\n(drive ${i})`,
            embeds: [], attachments: [], timestamp: new Date().toISOString(), edited_timestamp: null,
        };
        await collector.onMessageCreate({ message, optimistic: false });
        produced.push({ type: "message.create", message });
        if (i % 5 === 4) {
            const edited = { ...message, content: `${message.content} (edited)`, edited_timestamp: new Date().toISOString() };
            await collector.onMessageUpdate({ message: edited });
            produced.push({ type: "message.update", message: edited });
        }
        if (i % 7 === 6) {
            await collector.onMessageDelete({ id: message.id, channelId: channel, guildId: o.guild });
            produced.push({ type: "message.delete", message: { id: message.id, channel_id: channel, guild_id: o.guild } });
        }
    }
    const deadline = Date.now() + o.timeoutMs;
    while (collector.status.get().outboxSize > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
    const drained = collector.status.get().outboxSize === 0;
    await collector.stop();
    return { produced, drained, collector };
}

function parseArgs(argv: string[]): DriveOptions | string {
    const args = new Map<string, string[]>();
    for (let i = 0; i < argv.length; i += 2) {
        const k = argv[i];
        const v = argv[i + 1];
        if (!k?.startsWith("--") || v === undefined) return `bad argument near ${k ?? "(end)"}`;
        args.set(k.slice(2), [...(args.get(k.slice(2)) ?? []), v]);
    }
    const one = (k: string) => args.get(k)?.[0];
    const url = one("url");
    const secret = one("secret");
    const guild = one("guild");
    const channels = (args.get("channel") ?? []).flatMap(c => c.split(","));
    if (!url || !secret || !guild || channels.length === 0) return "need --url, --secret, --guild and at least one --channel";
    return {
        url, secret, guild, channels,
        count: Number(one("count") ?? 20),
        timeoutMs: Number(one("timeout-ms") ?? 30_000),
        state: one("state"),
        firstId: one("first-id") ? BigInt(one("first-id")!) : undefined,
    };
}

if (require.main === module) {
    const parsed = parseArgs(process.argv.slice(2));
    if (typeof parsed === "string") {
        console.error(`drive: ${parsed}`);
        process.exit(2);
    }
    drive(parsed).then(({ produced, drained, collector }) => {
        const s = collector.status.get();
        process.stdout.write(`${JSON.stringify({ produced: produced.length, delivered: s.delivered, drained, status: s, events: produced.map(e => `${e.type}:${e.message.id}`) })}\n`);
        process.exit(drained ? 0 : 1);
    }, err => {
        console.error("drive failed:", err);
        process.exit(1);
    });
}
