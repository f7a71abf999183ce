/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * What the user sees about the collector: state, outbox size, last delivery, last error.
 * Owned here so the sender, backfill and the settings panel share one picture of it.
 */

export type CollectorState =
    | "stopped" // not running (plugin disabled or not configured)
    | "idle" // running, outbox empty
    | "sending" // a request is in flight
    | "retrying" // ingest unreachable or busy: waiting out a back-off, events kept
    | "auth_failed"; // 401: wrong secret or clock skew; sending paused until settings change

export interface CollectorStatus {
    state: CollectorState;
    outboxSize: number;
    /** Epoch ms of the last acknowledged request. */
    lastDeliveryAt?: number;
    /** Events acknowledged by ingest since start. */
    delivered: number;
    /** Events ingest refused on their own (kept in the rejected log). */
    rejected: number;
    lastError?: string;
    lastErrorAt?: number;
}

export type StatusListener = (status: Readonly<CollectorStatus>) => void;

export class StatusBox {
    private status: CollectorStatus = { state: "stopped", outboxSize: 0, delivered: 0, rejected: 0 };
    private readonly listeners = new Set<StatusListener>();

    get(): Readonly<CollectorStatus> { return this.status; }

    update(patch: Partial<CollectorStatus>): void {
        // A new object each time so React-style consumers see a change.
        this.status = { ...this.status, ...patch };
        for (const listener of this.listeners) {
            try { listener(this.status); } catch { /* a broken listener must not break delivery */ }
        }
    }

    error(message: string, at: number): void {
        this.update({ lastError: message, lastErrorAt: at });
    }

    subscribe(listener: StatusListener): () => void {
        this.listeners.add(listener);
        return () => { this.listeners.delete(listener); };
    }
}

/** One line for logs and the settings panel. */
export function describeStatus(s: Readonly<CollectorStatus>, now: number): string {
    const parts = [`state: ${s.state}`, `outbox: ${s.outboxSize}`, `delivered: ${s.delivered}`];
    if (s.rejected) parts.push(`rejected: ${s.rejected}`);
    parts.push(s.lastDeliveryAt ? `last delivery: ${Math.round((now - s.lastDeliveryAt) / 1000)} s ago` : "last delivery: never");
    if (s.lastError) parts.push(`last error: ${s.lastError}`);
    return parts.join(" · ");
}
