/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Batch limits of the ingest protocol: at most 100 events and at most 1 MiB of body per request.
 * Owns the exact body encoding, so the size counted here is the size sent (and signed).
 */
import type { IngestEvent, OutboxEntry } from "./types";

export const MAX_BATCH_EVENTS = 100;
export const MAX_BATCH_BYTES = 1024 * 1024;

export interface BatchLimits {
    maxEvents: number;
    maxBytes: number;
}

export const DEFAULT_LIMITS: BatchLimits = { maxEvents: MAX_BATCH_EVENTS, maxBytes: MAX_BATCH_BYTES };

const encoder = new TextEncoder();
// `{"events":[` + `]}` around the comma-separated events.
const ENVELOPE_BYTES = encoder.encode('{"events":[]}').length;

/** UTF-8 size of one serialized event. */
export function eventBytes(event: IngestEvent): number {
    return encoder.encode(JSON.stringify(event)).length;
}

/** The request body for a batch. */
export function encodeBody(events: IngestEvent[]): string {
    // Same bytes as JSON.stringify({events}), built from the parts batch sizing counted.
    return `{"events":[${events.map(e => JSON.stringify(e)).join(",")}]}`;
}

/**
 * The longest prefix of `entries` that fits the limits. Always at least one entry when any
 * exist: an event too big on its own is still sent alone, and the server's 413 (or 400) then
 * moves it to the rejected list instead of blocking the outbox forever.
 */
export function takeBatch(entries: readonly OutboxEntry[], limits: BatchLimits = DEFAULT_LIMITS): OutboxEntry[] {
    const batch: OutboxEntry[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const entry of entries) {
        if (batch.length >= limits.maxEvents) break;
        const size = eventBytes(entry.event) + (batch.length > 0 ? 1 : 0);
        if (batch.length > 0 && bytes + size > limits.maxBytes) break;
        batch.push(entry);
        bytes += size;
    }
    return batch;
}
