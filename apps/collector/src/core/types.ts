/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Shared types of the collector core: the wire format of the ingest protocol, the Discord
 * message shape we rely on, and the injectable seams (storage, transport, clock, sleep,
 * history fetch) that let the same core run inside Discord (Vencord) and under Node tests.
 *
 * Nothing here imports Vencord or Node: the core must run in Discord's renderer unchanged.
 */

/** A JSON value, as stored in the outbox and sent on the wire. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The raw Discord message object, snake_case, as the gateway and REST API deliver it. Only the
 * fields the collector reads are typed; everything else is carried through untouched because
 * ingest (not the collector) decides what matters.
 */
export interface DiscordMessage {
    id: string;
    channel_id: string;
    guild_id?: string;
    content?: string;
    [key: string]: Json | undefined;
}

export type EventType = "message.create" | "message.update" | "message.delete";

/** One ingest event. For deletes `message` is just `{id, channel_id, guild_id}`. */
export interface IngestEvent {
    type: EventType;
    message: DiscordMessage;
}

/** An outbox entry: the event plus a sequence number that fixes its delivery order. */
export interface OutboxEntry {
    seq: number;
    event: IngestEvent;
}

/**
 * Persistent key-value storage. Mirrors the subset of Vencord's `@api/DataStore` (IndexedDB)
 * we need, so the plugin passes DataStore straight through and tests pass a map or a file.
 * `setMany` must be atomic (DataStore's is: one IndexedDB transaction).
 */
export interface KeyValueStorage {
    get<T>(key: string): Promise<T | undefined>;
    set(key: string, value: unknown): Promise<void>;
    setMany(entries: [string, unknown][]): Promise<void>;
    delMany(keys: string[]): Promise<void>;
}

/** What the transport saw. Any status is a response; a thrown error is a network failure. */
export interface TransportResponse {
    status: number;
    body: string;
}

/**
 * Sends one HTTP POST. Throws on network failure (refused, reset, timeout). The renderer uses
 * `fetch` (loopback only, Discord's CSP); a non-loopback URL goes through native.ts.
 */
export type Transport = (url: string, headers: Record<string, string>, body: string) => Promise<TransportResponse>;

/**
 * Fetches up to `limit` messages of a channel posted after `afterId` (Discord REST
 * `GET /channels/{id}/messages?after=..&limit=..`), in any order. With `afterId` undefined it
 * returns the newest messages. Throws on failure.
 */
export type FetchMessagesAfter = (channelId: string, afterId: string | undefined, limit: number) => Promise<DiscordMessage[]>;

/** Wall clock in milliseconds since the epoch (injectable so tests control time). */
export type Clock = () => number;

/**
 * Waits `ms` milliseconds. Resolves early (without error) when `signal` aborts, so stopping the
 * collector never waits out a back-off.
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Minimal logger; Vencord's Logger and `console` both fit. */
export interface Log {
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
}

export const realSleep: Sleep = (ms, signal) =>
    new Promise(resolve => {
        if (signal?.aborted) return resolve();
        const timer = setTimeout(done, ms);
        function done() {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve();
        }
        signal?.addEventListener("abort", done, { once: true });
    });

export const silentLog: Log = { info() { }, warn() { }, error() { } };

/** Readable one-line text of a thrown value (no "Error: " prefix, cause included). */
export function errorText(err: unknown): string {
    if (!(err instanceof Error)) return String(err);
    const cause = err.cause instanceof Error ? err.cause.message : err.cause !== undefined ? String(err.cause) : "";
    return cause && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
}
