/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Backfill: messages posted while Discord was closed or disconnected never arrive as events, so
 * on start-up and after every reconnect the collector reads each channel's history after its
 * cursor and queues what it missed as message.create.
 *
 * The resume point is the channel's cursor: the newest message id such that everything up to it
 * was delivered or is waiting in the persistent outbox (the collector keeps it that way, see
 * collector.ts). Messages already waiting in the outbox are not queued again. A channel seen
 * for the first time only records its newest id: the collector forwards what is posted from
 * now on, not the whole history.
 *
 * Known limit: edits and deletes of older messages made while the client was away are not
 * recovered (history returns current content only when it is newer than the cursor).
 */
import { fromHistory, type SourceFilter } from "./events";
import type { Cursors, Outbox } from "./outbox";
import { compareSnowflakes, isSnowflake } from "./snowflake";
import type { DiscordMessage, FetchMessagesAfter, IngestEvent, Sleep } from "./types";

export const PAGE_LIMIT = 100;

export interface BackfillOptions {
    fetchMessagesAfter: FetchMessagesAfter;
    cursors: Cursors;
    outbox: Outbox;
    filter: SourceFilter;
    sleep: Sleep;
    /** Pause between history pages: a user account paging fast looks like a bot. */
    pageDelayMs?: number;
    /** Called after each page is queued, so delivery starts while paging continues. */
    onQueued?: (events: IngestEvent[]) => void;
    signal?: AbortSignal;
}

/** Ids of the channel's message.create events already waiting in the outbox. */
function pendingCreates(outbox: Outbox, channelId: string): Set<string> {
    const ids = new Set<string>();
    for (const { event } of outbox.peek()) {
        if (event.type === "message.create" && event.message.channel_id === channelId) ids.add(event.message.id);
    }
    return ids;
}

/** Backfills one channel; returns how many messages it queued. Throws if a fetch fails. */
export async function backfillChannel(o: BackfillOptions, channelId: string): Promise<number> {
    // Not max(cursor, newest pending): a live message captured right after a reconnect is newer
    // than the gap we are here to fill.
    let after = await o.cursors.get(channelId);
    const pending = pendingCreates(o.outbox, channelId);

    if (after === undefined) {
        // First sight of this channel: remember where "now" is, forward nothing old.
        const newest = await o.fetchMessagesAfter(channelId, undefined, 1);
        const ids = newest.map(m => m.id).filter(isSnowflake).sort(compareSnowflakes);
        // "0" for an empty channel: everything that appears later is new.
        await o.cursors.advance(channelId, ids[ids.length - 1] ?? "0");
        return 0;
    }

    let queued = 0;
    for (let page = 0; !o.signal?.aborted; page++) {
        if (page > 0 && o.pageDelayMs) await o.sleep(o.pageDelayMs, o.signal);
        const batch: DiscordMessage[] = await o.fetchMessagesAfter(channelId, after, PAGE_LIMIT);
        const from: string = after;
        // Discord returns newest first; deliver oldest first. Drop anything not after the cursor
        // (defensive: a fake or a changed API must not make us loop).
        const messages = batch
            .filter(m => typeof m.id === "string" && isSnowflake(m.id) && compareSnowflakes(m.id, from) > 0)
            .sort((a, b) => compareSnowflakes(a.id, b.id));
        if (messages.length === 0) break;

        const fresh = messages.filter(m => !pending.has(m.id) && (m.channel_id === undefined || m.channel_id === channelId));
        const events = fresh.map(m => fromHistory(o.filter, { ...m, channel_id: channelId }));
        await o.outbox.append(events);
        for (const m of fresh) pending.add(m.id);
        queued += events.length;
        if (events.length) o.onQueued?.(events);

        after = messages[messages.length - 1]!.id;
        if (batch.length < PAGE_LIMIT) break;
    }
    return queued;
}
