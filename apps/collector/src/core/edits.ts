/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Which MESSAGE_UPDATE events are real changes of a message, and which are re-dispatches.
 *
 * Other plugins dispatch MESSAGE_UPDATE themselves with an old copy of a message (Vencord's
 * ValidReply re-dispatches a replied-to message fetched over REST, for instance). Forwarded,
 * such an event would make ingest create or revert a signal from a message nobody changed.
 * Discord stamps every content edit with a new `edited_timestamp`, so the rule is:
 *
 * For a message forwarded before (create or update, live or backfill; remembered in memory,
 * last 5000 messages):
 * - a newer `edited_timestamp` than the last forwarded one: an edit, forwarded;
 * - an older one (or an explicit `null` after an edited version): a stale copy, dropped;
 * - the same version (same `edited_timestamp`, or none in a partial update): forwarded only if
 *   its content, embeds or attachments differ from what was last forwarded (an embed unfurl);
 *   an identical copy is dropped.
 * For a message not forwarded before (posted before the collector started, or forgotten):
 * - with an `edited_timestamp`: forwarded if that is at most 10 minutes old (a live edit);
 * - without: forwarded if the message itself is at most 10 minutes old (an unfurl of a message
 *   posted just before start-up); an older message re-dispatched without an edit is dropped.
 *
 * Pin and flag changes (same version, same content) are therefore not forwarded: ingest does not
 * use them. Clock: the collector's; ingest already requires it within 5 minutes of real time.
 */
import { type DiscordMessage, type Json } from "./types";

/** How recent an edit (or message) not seen before must be to count as live. */
export const LIVE_WINDOW_MS = 10 * 60_000;
const REMEMBERED = 5000;
const DISCORD_EPOCH = 1_420_070_400_000n;

interface Version {
    /** ms since the epoch; null = never edited (as posted). */
    edited: number | null;
    content: string | undefined;
    embeds: string | undefined;
    attachments: string | undefined;
}

/** Milliseconds since the epoch of a Discord ISO timestamp; null when absent or unreadable. */
export function parseStamp(value: unknown): number | null {
    if (typeof value !== "string") return null;
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : null;
}

/** Creation time of a snowflake, in ms since the epoch. */
export function snowflakeTime(id: string): number | undefined {
    try {
        return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
    } catch {
        return undefined;
    }
}

function json(value: Json | undefined): string | undefined {
    return value === undefined ? undefined : JSON.stringify(value);
}

export class EditTracker {
    private readonly seen = new Map<string, Version>();

    /** Remembers what was forwarded for a message (a create, or an update that was let through). */
    record(message: DiscordMessage): void {
        const prev = this.seen.get(message.id);
        const next: Version = {
            edited: "edited_timestamp" in message ? parseStamp(message.edited_timestamp) : prev?.edited ?? null,
            content: typeof message.content === "string" ? message.content : prev?.content,
            embeds: "embeds" in message ? json(message.embeds) : prev?.embeds,
            attachments: "attachments" in message ? json(message.attachments) : prev?.attachments,
        };
        this.seen.delete(message.id);
        this.seen.set(message.id, next);
        if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
    }

    /** True if the update is a real change that should be forwarded (see the module comment). */
    isChange(update: DiscordMessage, now: number): boolean {
        const hasStamp = "edited_timestamp" in update;
        const stamp = parseStamp(update.edited_timestamp);
        const last = this.seen.get(update.id);
        if (!last) {
            const when = stamp ?? snowflakeTime(update.id);
            return when !== undefined && when >= now - LIVE_WINDOW_MS;
        }
        if (stamp !== null && (last.edited === null || stamp > last.edited)) return true;
        if (stamp !== null && last.edited !== null && stamp < last.edited) return false;
        if (hasStamp && stamp === null && last.edited !== null) return false;
        // The same version: only a different body (an unfurl adding embeds) is news.
        return (typeof update.content === "string" && update.content !== last.content)
            || ("embeds" in update && json(update.embeds) !== last.embeds)
            || ("attachments" in update && json(update.attachments) !== last.attachments);
    }
}
