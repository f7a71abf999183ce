/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * The persistent outbox and the other small pieces of persistent state (per-channel delivery
 * cursors, the list of events ingest rejected). Owns the storage layout:
 *
 *   {prefix}outbox:meta        {head, tail}: sequence numbers of the oldest pending entry and the next one to assign
 *   {prefix}outbox:{seq}       one pending IngestEvent
 *   {prefix}cursor:{channelId} newest message id delivered (acknowledged by ingest) in that channel
 *   {prefix}rejected           the last events ingest refused on their own (400/413), for an operator to look at
 *
 * One key per entry (not one big array) so an append or an ack writes a few small records
 * instead of rewriting the whole backlog, which matters when ingest was down for hours.
 *
 * Invariant: an event is in storage before the sender can see it, and leaves storage only
 * after ingest acknowledged it (the sender calls `ack` after a 200).
 */
import { compareSnowflakes } from "./snowflake";
import type { IngestEvent, KeyValueStorage, OutboxEntry } from "./types";

interface OutboxMeta {
    head: number;
    tail: number;
}

/** Runs async operations one at a time, in call order: storage writes must not interleave. */
export class Serial {
    private chain: Promise<unknown> = Promise.resolve();

    run<T>(op: () => Promise<T>): Promise<T> {
        const result = this.chain.then(op, op);
        // Keep the chain alive after a failure; the caller still sees the error via `result`.
        this.chain = result.catch(() => undefined);
        return result;
    }
}

export class Outbox {
    private readonly serial = new Serial();
    /** Pending entries in delivery order (a mirror of storage, so peeking costs nothing). */
    private entries: OutboxEntry[] = [];
    private head = 0;
    private tail = 0;
    /** Set when a write failed: events are then still delivered from memory this session. */
    lastStorageError: string | undefined;

    private constructor(private readonly storage: KeyValueStorage, private readonly prefix: string) { }

    /** Loads what a previous run left behind. */
    static async open(storage: KeyValueStorage, prefix: string): Promise<Outbox> {
        const box = new Outbox(storage, prefix);
        const meta = await storage.get<OutboxMeta>(box.metaKey);
        if (meta && Number.isSafeInteger(meta.head) && Number.isSafeInteger(meta.tail) && meta.tail >= meta.head) {
            box.head = meta.head;
            box.tail = meta.tail;
            const seqs: number[] = [];
            for (let seq = meta.head; seq < meta.tail; seq++) seqs.push(seq);
            const events = await Promise.all(seqs.map(seq => storage.get<IngestEvent>(box.entryKey(seq))));
            events.forEach((event, i) => {
                // A hole is an entry whose ack was persisted half-way (meta written, delete not): skip.
                if (event) box.entries.push({ seq: seqs[i]!, event });
            });
        }
        return box;
    }

    private get metaKey() { return `${this.prefix}outbox:meta`; }
    private entryKey(seq: number) { return `${this.prefix}outbox:${seq}`; }

    get size(): number { return this.entries.length; }

    /** Pending entries, oldest first. Read-only view; use `ack` to remove. */
    peek(): readonly OutboxEntry[] { return this.entries; }

    /**
     * Appends events, persisting them (one atomic write) before they become visible to the sender.
     * If storage fails the events are still queued in memory, so they are delivered unless the
     * client also restarts before ingest is reachable; the failure is reported via `lastStorageError`.
     */
    append(events: readonly IngestEvent[]): Promise<void> {
        if (events.length === 0) return Promise.resolve();
        return this.serial.run(async () => {
            const added = events.map((event, i) => ({ seq: this.tail + i, event }));
            const tail = this.tail + added.length;
            try {
                await this.storage.setMany([
                    ...added.map((e): [string, unknown] => [this.entryKey(e.seq), e.event]),
                    [this.metaKey, { head: this.head, tail } satisfies OutboxMeta],
                ]);
                this.lastStorageError = undefined;
            } catch (err) {
                this.lastStorageError = `outbox write failed: ${String(err)}`;
            }
            this.tail = tail;
            this.entries.push(...added);
        });
    }

    /** Removes the oldest `count` entries after ingest acknowledged them. */
    ack(count: number): Promise<void> {
        return this.serial.run(async () => {
            const removed = this.entries.splice(0, count);
            if (removed.length === 0) return;
            this.head = removed[removed.length - 1]!.seq + 1;
            try {
                // Meta first: if we stop between the two writes, the entries left behind are
                // below `head` and ignored on load (a small leak, never a resend of acked data).
                await this.storage.set(this.metaKey, { head: this.head, tail: this.tail } satisfies OutboxMeta);
                await this.storage.delMany(removed.map(e => this.entryKey(e.seq)));
            } catch (err) {
                // Worst case after a restart: these events are sent again, which ingest dedupes.
                this.lastStorageError = `outbox ack write failed: ${String(err)}`;
            }
        });
    }

    /** Waits until every queued write has finished (tests use it to simulate a clean stop). */
    flush(): Promise<void> {
        return this.serial.run(async () => undefined);
    }
}

/**
 * Per-channel cursor: the newest message id ingest has acknowledged in a channel. Backfill
 * resumes after it. Only ever moves forward.
 */
export class Cursors {
    private readonly serial = new Serial();
    private readonly cache = new Map<string, string | undefined>();

    constructor(private readonly storage: KeyValueStorage, private readonly prefix: string) { }

    private key(channelId: string) { return `${this.prefix}cursor:${channelId}`; }

    async get(channelId: string): Promise<string | undefined> {
        if (!this.cache.has(channelId)) {
            const stored = await this.storage.get<string>(this.key(channelId));
            // Another call may have advanced it meanwhile; the cache wins then.
            if (!this.cache.has(channelId)) this.cache.set(channelId, typeof stored === "string" ? stored : undefined);
        }
        return this.cache.get(channelId);
    }

    /** Moves the cursor forward to `messageId` if that is newer. */
    advance(channelId: string, messageId: string): Promise<void> {
        return this.serial.run(async () => {
            const current = await this.get(channelId);
            if (current !== undefined && compareSnowflakes(messageId, current) <= 0) return;
            this.cache.set(channelId, messageId);
            await this.storage.set(this.key(channelId), messageId);
        });
    }
}

export interface RejectedEvent {
    at: number;
    status: number;
    reply: string;
    event: IngestEvent;
}

// Generous: if ingest wrongly refuses a run of events (a bad deploy), they can be re-queued.
const MAX_REJECTED = 500;

/** Keeps the last few events ingest refused, so "dropped" never means "vanished without trace". */
export class RejectedLog {
    private readonly serial = new Serial();

    constructor(private readonly storage: KeyValueStorage, private readonly prefix: string) { }

    private get key() { return `${this.prefix}rejected`; }

    add(item: RejectedEvent): Promise<void> {
        return this.serial.run(async () => {
            const list = (await this.storage.get<RejectedEvent[]>(this.key)) ?? [];
            list.push(item);
            await this.storage.set(this.key, list.slice(-MAX_REJECTED));
        });
    }

    async list(): Promise<RejectedEvent[]> {
        return (await this.storage.get<RejectedEvent[]>(this.key)) ?? [];
    }

    /** Removes the oldest `count` items (those a caller has just re-queued; newer ones stay). */
    removeOldest(count: number): Promise<void> {
        return this.serial.run(async () => {
            const list = (await this.storage.get<RejectedEvent[]>(this.key)) ?? [];
            await this.storage.set(this.key, list.slice(count));
        });
    }
}
