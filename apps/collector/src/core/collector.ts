/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * The collector: wires Discord events, the persistent outbox, the sender and backfill together
 * behind one small API that the Vencord adapter (index.ts) drives and the tests drive directly.
 *
 *   Discord event ─► filter (guild/channels) ─► outbox.append (persisted) ─► sender (signed POST)
 *   start / reconnect ─► backfill each channel after its cursor ─► outbox.append ─► sender
 *   sender 200 ─► outbox.ack + cursor advance
 *
 * Every dependency that touches the outside world (storage, HTTP, Discord history, clock,
 * sleep, randomness, logging) is injected.
 *
 * Cursor rule: a channel's cursor may only move past messages that are delivered or durably
 * queued. After start-up or a (re)connect a channel is "unsynced" until its backfill has caught
 * up; while unsynced, delivering a live message does NOT advance its cursor, because messages
 * posted during the outage (older than that live one) may not be captured yet. Without this, a
 * live message delivered just after a reconnect would make backfill skip the whole gap.
 *
 * Events that arrive after construction but before start() has run (Vencord subscribes Flux
 * right after calling start(), without awaiting it) wait for start() and are then captured, or
 * dropped if the collector does not run. MESSAGE_UPDATEs that only re-dispatch a known version
 * are dropped (see edits.ts).
 */
import { backfillChannel } from "./backfill";
import type { BatchLimits } from "./batch";
import { EditTracker } from "./edits";
import { fromCreate, fromDelete, fromDeleteBulk, fromUpdate, makeFilter, type SourceFilter } from "./events";
import { Cursors, Outbox, RejectedLog } from "./outbox";
import { backoffDelay, Sender } from "./sender";
import { secretKeyBytes } from "./sign";
import { isSnowflake } from "./snowflake";
import { StatusBox } from "./status";
import { type Clock, errorText, type FetchMessagesAfter, type IngestEvent, type KeyValueStorage, type Log, realSleep, silentLog, type Sleep, type Transport } from "./types";

/** The user's settings, as the plugin stores them. */
export interface CollectorConfig {
    enabled: boolean;
    ingestUrl: string;
    secret: string;
    guildId: string;
    /** Comma-separated channel ids. */
    channelIds: string;
    /**
     * Also backfill every N minutes (0 = only on start and reconnect). A safety net for large
     * guilds, where Discord may not push message events for channels the client is not viewing.
     */
    pollMinutes?: number;
}

export interface CollectorDeps {
    storage: KeyValueStorage;
    transport: Transport;
    fetchMessagesAfter: FetchMessagesAfter;
    clock?: Clock;
    sleep?: Sleep;
    random?: () => number;
    log?: Log;
    /** Namespace for storage keys, so several collectors (or tests) can share one store. */
    keyPrefix?: string;
    limits?: BatchLimits;
    backoffBaseMs?: number;
    backoffCapMs?: number;
    pageDelayMs?: number;
}

/** Problems that keep the collector from running; empty when the config is usable. */
export function validateConfig(c: CollectorConfig): string[] {
    const problems: string[] = [];
    try {
        const url = new URL(c.ingestUrl);
        if (url.protocol !== "http:" && url.protocol !== "https:") problems.push("ingest URL must be http(s)");
    } catch {
        problems.push("ingest URL is missing or not a URL");
    }
    if (!c.secret) problems.push("secret is empty");
    else {
        try {
            if (secretKeyBytes(c.secret).length === 0) problems.push("secret is empty");
        } catch (err) {
            problems.push(String(err instanceof Error ? err.message : err));
        }
    }
    if (!isSnowflake(c.guildId.trim())) problems.push("source guild id is not a Discord id");
    if (makeFilter(c.guildId, c.channelIds).channelIds.size === 0) problems.push("no channel ids configured");
    return problems;
}

export class Collector {
    readonly status = new StatusBox();
    private readonly d: Required<Omit<CollectorDeps, "limits" | "backoffBaseMs" | "backoffCapMs">> & Pick<CollectorDeps, "limits" | "backoffBaseMs" | "backoffCapMs">;
    private config: CollectorConfig;
    private filter: SourceFilter;
    private outbox: Outbox | undefined;
    private cursors: Cursors;
    private rejected: RejectedLog;
    private sender: Sender | undefined;
    private ready: Promise<void> | undefined;
    private running = false;
    private lifecycle = new AbortController();
    private backfillRun: Promise<void> | undefined;
    private backfillAgain = false;
    /** Channels whose backfill has not caught up since the last start/reconnect, with a generation. */
    private readonly unsynced = new Map<string, number>();
    private generation = 0;
    /** Open until the first start() (or stop()) has finished: early events wait for it. */
    private gate: { promise: Promise<void>; open: () => void } | undefined;
    private readonly edits = new EditTracker();

    constructor(deps: CollectorDeps, config: CollectorConfig) {
        // `??` rather than spreading defaults: an explicit `undefined` must not erase a default.
        this.d = {
            ...deps,
            clock: deps.clock ?? Date.now,
            sleep: deps.sleep ?? realSleep,
            random: deps.random ?? Math.random,
            log: deps.log ?? silentLog,
            keyPrefix: deps.keyPrefix ?? "g3collector:",
            pageDelayMs: deps.pageDelayMs ?? 500,
        };
        this.config = { ...config };
        this.filter = makeFilter(config.guildId, config.channelIds);
        this.cursors = new Cursors(this.d.storage, this.d.keyPrefix);
        this.rejected = new RejectedLog(this.d.storage, this.d.keyPrefix);
        let open = () => { };
        const promise = new Promise<void>(resolve => { open = resolve; });
        this.gate = { promise, open };
    }

    private openGate(): void {
        this.gate?.open();
        this.gate = undefined;
    }

    get isRunning(): boolean { return this.running; }

    /** Opens the outbox, starts delivery of whatever is pending, then backfills. */
    async start(): Promise<void> {
        try {
            await this.startOnce();
        } finally {
            this.openGate();
        }
    }

    private async startOnce(): Promise<void> {
        if (this.running) return;
        const problems = validateConfig(this.config);
        if (!this.config.enabled || problems.length) {
            this.status.update({ state: "stopped" });
            if (problems.length && this.config.enabled) this.status.error(`not started: ${problems.join("; ")}`, this.d.clock());
            return;
        }
        this.running = true;
        this.lifecycle = new AbortController();
        this.markUnsynced();
        this.ready = this.open();
        try {
            await this.ready;
        } catch (err) {
            // Storage unusable (e.g. IndexedDB blocked): do not pretend to run.
            this.running = false;
            this.ready = undefined;
            this.status.update({ state: "stopped" });
            this.status.error(`could not open the outbox: ${errorText(err)}`, this.d.clock());
            throw err;
        }
        this.requestBackfill();
        void this.pollLoop(this.lifecycle.signal);
    }

    private async open(): Promise<void> {
        this.outbox ??= await Outbox.open(this.d.storage, this.d.keyPrefix);
        const { outbox } = this;
        this.sender = new Sender({
            outbox,
            transport: this.d.transport,
            target: () => ({ url: this.config.ingestUrl.trim(), secret: this.config.secret }),
            status: this.status,
            clock: this.d.clock,
            sleep: this.d.sleep,
            random: this.d.random,
            log: this.d.log,
            limits: this.d.limits,
            backoffBaseMs: this.d.backoffBaseMs,
            backoffCapMs: this.d.backoffCapMs,
            onDelivered: async entries => {
                for (const { event } of entries) await this.advanceCursor(event);
            },
            onRejected: async (entry, status, reply) => {
                await this.rejected.add({ at: this.d.clock(), status, reply: reply.slice(0, 2000), event: entry.event });
                // A refused create is still "handled": do not fetch it again on every backfill.
                await this.advanceCursor(entry.event);
            },
        });
        this.status.update({ state: "idle", outboxSize: outbox.size });
        if (outbox.size) this.d.log.info(`resuming with ${outbox.size} pending event(s) in the outbox`);
        this.sender.start();
    }

    /** Stops sending and backfilling; pending events stay in storage for the next start. */
    async stop(): Promise<void> {
        this.openGate();
        if (!this.running) return;
        this.running = false;
        this.lifecycle.abort();
        await this.ready?.catch(() => undefined);
        await this.sender?.stop();
        await this.backfillRun?.catch(() => undefined);
        await this.outbox?.flush();
        this.sender = undefined;
        this.status.update({ state: "stopped" });
    }

    /**
     * Applies new settings. A different URL or secret clears a 401 pause; a different source or
     * enabling/disabling restarts the collector (backfill then runs for new channels).
     */
    async configure(next: CollectorConfig): Promise<void> {
        const prev = this.config;
        this.config = { ...next };
        this.filter = makeFilter(next.guildId, next.channelIds);
        const sourceChanged = prev.guildId !== next.guildId || prev.channelIds !== next.channelIds || prev.enabled !== next.enabled
            || (prev.pollMinutes ?? 0) !== (next.pollMinutes ?? 0);
        const targetChanged = prev.ingestUrl !== next.ingestUrl || prev.secret !== next.secret;
        if (sourceChanged || (targetChanged && validateConfig(next).length)) {
            await this.stop();
            await this.start();
        } else if (targetChanged) {
            if (!this.running) await this.start();
            else this.sender?.resume();
        }
    }

    // ---- Discord events (Flux payloads). Each returns once the event is safely persisted. ----

    onMessageCreate(payload: unknown): Promise<void> {
        const event = fromCreate(this.filter, payload);
        if (event) this.edits.record(event.message);
        return this.enqueue(event);
    }

    /** An update is forwarded only if it changes the message (edits.ts): not a re-dispatched copy. */
    onMessageUpdate(payload: unknown): Promise<void> {
        const event = fromUpdate(this.filter, payload);
        if (!event || !this.edits.isChange(event.message, this.d.clock())) return Promise.resolve();
        this.edits.record(event.message);
        return this.enqueue(event);
    }

    onMessageDelete(payload: unknown): Promise<void> { return this.enqueue(fromDelete(this.filter, payload)); }
    onMessageDeleteBulk(payload: unknown): Promise<void> { return this.enqueue(fromDeleteBulk(this.filter, payload)); }

    /**
     * The gateway (re)connected: catch up on what was posted meanwhile. Must be called
     * synchronously from the connect event, before the new session's messages are handled.
     */
    onReconnect(): void {
        if (!this.running) return;
        this.markUnsynced();
        this.requestBackfill();
    }

    /** The gateway dropped: whatever is posted until the reconnect must come from backfill. */
    onDisconnect(): void {
        if (this.running) this.markUnsynced();
    }

    private markUnsynced(): void {
        this.generation++;
        for (const channelId of this.filter.channelIds) this.unsynced.set(channelId, this.generation);
    }

    private async advanceCursor(event: IngestEvent): Promise<void> {
        if (event.type !== "message.create") return;
        if (this.unsynced.has(event.message.channel_id)) return;
        await this.cursors.advance(event.message.channel_id, event.message.id);
    }

    private async enqueue(events: IngestEvent | IngestEvent[] | undefined): Promise<void> {
        const list = events === undefined ? [] : Array.isArray(events) ? events : [events];
        if (list.length === 0) return;
        // Before the first start() has finished: wait for it, then capture if it runs.
        if (!this.running && this.gate) await this.gate.promise;
        if (!this.running) return;
        // Events that arrive while the outbox is still loading wait for it, in arrival order.
        await this.ready;
        const outbox = this.outbox!;
        await outbox.append(list);
        if (outbox.lastStorageError) this.status.error(outbox.lastStorageError, this.d.clock());
        this.status.update({ outboxSize: outbox.size });
        this.sender?.kick();
    }

    // ---- Backfill ----

    /** Runs backfill now, or once more after the current run if one is in progress. */
    requestBackfill(): void {
        if (!this.running) return;
        if (this.backfillRun) {
            this.backfillAgain = true;
            return;
        }
        this.backfillRun = this.backfillLoop().finally(() => { this.backfillRun = undefined; });
    }

    private async pollLoop(signal: AbortSignal): Promise<void> {
        const minutes = this.config.pollMinutes ?? 0;
        if (!(minutes > 0)) return;
        while (!signal.aborted) {
            await this.d.sleep(minutes * 60_000, signal);
            if (!signal.aborted) this.requestBackfill();
        }
    }

    /** Resolves when delivery has nothing left to do (outbox empty, paused or stopped). */
    async whenIdle(): Promise<void> {
        await this.idleBackfill();
        await this.sender?.whenIdle();
    }

    /** Resolves when no backfill is running (tests use it). */
    async idleBackfill(): Promise<void> {
        while (this.backfillRun) await this.backfillRun;
    }

    private async backfillLoop(): Promise<void> {
        let attempt = 0;
        do {
            this.backfillAgain = false;
            await this.ready;
            const { signal } = this.lifecycle;
            let failed = false;
            for (const channelId of this.filter.channelIds) {
                if (signal.aborted) return;
                const generation = this.unsynced.get(channelId);
                try {
                    const n = await backfillChannel({
                        fetchMessagesAfter: this.d.fetchMessagesAfter,
                        cursors: this.cursors,
                        outbox: this.outbox!,
                        filter: this.filter,
                        sleep: this.d.sleep,
                        pageDelayMs: this.d.pageDelayMs,
                        signal,
                        onQueued: events => {
                            for (const e of events) this.edits.record(e.message);
                            this.status.update({ outboxSize: this.outbox!.size });
                            this.sender?.kick();
                        },
                    }, channelId);
                    if (n) this.d.log.info(`backfill queued ${n} message(s) from channel ${channelId}`);
                    // Caught up: live deliveries may move the cursor again, unless a newer
                    // disconnect happened meanwhile (then the next pass handles it).
                    if (this.unsynced.get(channelId) === generation) this.unsynced.delete(channelId);
                } catch (err) {
                    failed = true;
                    this.status.error(`backfill of channel ${channelId} failed: ${errorText(err)}`, this.d.clock());
                    this.d.log.warn(`backfill of channel ${channelId} failed, will retry:`, err);
                }
            }
            if (failed && !signal.aborted) {
                // Retry the whole pass (channels already caught up cost one request each).
                attempt++;
                await this.d.sleep(backoffDelay(attempt, this.d.random, this.d.backoffBaseMs, this.d.backoffCapMs), signal);
                this.backfillAgain = true;
            } else {
                attempt = 0;
            }
        } while (this.backfillAgain && this.running);
    }

    /** The events ingest refused on their own (most recent last). */
    rejectedEvents() { return this.rejected.list(); }

    /**
     * Puts every rejected event back into the outbox (after ingest was fixed, say) and removes
     * them from the log; events rejected again meanwhile land at its end and stay. Returns how
     * many were queued.
     */
    async requeueRejected(): Promise<number> {
        if (!this.running) throw new Error("collector is not running");
        const list = await this.rejected.list();
        // Queue first, then forget: a crash in between re-sends, never loses.
        await this.enqueue(list.map(r => r.event));
        await this.rejected.removeOldest(list.length);
        return list.length;
    }

    /** Pending events, oldest first (for diagnostics). */
    pending(): readonly IngestEvent[] { return (this.outbox?.peek() ?? []).map(e => e.event); }
}
