/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Turns Discord client events (Flux MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE /
 * MESSAGE_DELETE_BULK payloads) and REST history into ingest events, and decides which ones the
 * collector cares about: only the configured source guild and channels.
 *
 * Messages are snapshotted (deep-copied through JSON) when captured: Discord keeps mutating its
 * own objects, and the outbox must hold exactly what was seen, in a form IndexedDB and the wire
 * both accept.
 *
 * Not every Flux event is Discord's: other plugins dispatch their own. Those are not forwarded:
 * - MESSAGE_DELETE / MESSAGE_DELETE_BULK with `mlDeleted: true` (MessageLogger and
 *   MessageClickActions removing an already deleted, logged message from the view);
 * - a MESSAGE_DELETE without an `id` (ValidReply's "reply target gone" puts it in `message`);
 * - ephemeral messages (flag 64), e.g. the local bot replies of Vencord's sendBotMessage, which
 *   only this client ever sees;
 * - re-dispatched MESSAGE_UPDATEs of a version already forwarded or of an old message: decided
 *   in edits.ts, which needs to remember what was forwarded.
 */
import type { DiscordMessage, IngestEvent } from "./types";

/** The source the collector watches. An empty channel list watches nothing (explicit is safer). */
export interface SourceFilter {
    guildId: string;
    channelIds: ReadonlySet<string>;
}

/** Parses the "channel ids" setting: comma, space or newline separated snowflakes. */
export function parseChannelIds(text: string | undefined): string[] {
    if (!text) return [];
    const ids = text.split(/[\s,;]+/).map(s => s.trim()).filter(s => /^[0-9]{1,20}$/.test(s));
    return [...new Set(ids)];
}

export function makeFilter(guildId: string | undefined, channelIdsText: string | undefined): SourceFilter {
    return { guildId: (guildId ?? "").trim(), channelIds: new Set(parseChannelIds(channelIdsText)) };
}

/**
 * True if a message in `channelId` (guild `guildId`, when known) belongs to the source. Channel
 * ids are globally unique, so the channel list decides; a known guild id that differs is still
 * refused in case the list holds a wrong id.
 */
export function inSource(filter: SourceFilter, channelId: unknown, guildId: unknown): boolean {
    if (typeof channelId !== "string" || !filter.channelIds.has(channelId)) return false;
    if (typeof guildId === "string" && guildId !== "" && filter.guildId !== "" && guildId !== filter.guildId) return false;
    return true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep copy to plain JSON, adding `guild_id` when the source lacks it (REST history does). */
function snapshot(message: Record<string, unknown>, guildId: string): DiscordMessage {
    const copy = JSON.parse(JSON.stringify(message)) as DiscordMessage;
    if (typeof copy.guild_id !== "string" || copy.guild_id === "") copy.guild_id = guildId;
    return copy;
}

/** Discord's EPHEMERAL message flag: visible only to this user, never part of the channel. */
const EPHEMERAL = 1 << 6;

function isEphemeral(message: Record<string, unknown>): boolean {
    return typeof message.flags === "number" && (message.flags & EPHEMERAL) !== 0;
}

/** A delete that a plugin dispatched to tidy its own view (MessageLogger's `mlDeleted`). */
function isPluginDelete(payload: Record<string, unknown>): boolean {
    return Boolean(payload.mlDeleted);
}

function hasIds(message: Record<string, unknown>): message is Record<string, unknown> & { id: string; channel_id: string } {
    return typeof message.id === "string" && typeof message.channel_id === "string";
}

/** Flux MESSAGE_CREATE: `{message, optimistic, guildId?}`. Optimistic (not yet sent) ones are skipped. */
export function fromCreate(filter: SourceFilter, payload: unknown): IngestEvent | undefined {
    if (!isRecord(payload) || payload.optimistic === true || !isRecord(payload.message)) return undefined;
    const { message } = payload;
    if (!hasIds(message) || isEphemeral(message)) return undefined;
    const guildId = message.guild_id ?? payload.guildId;
    if (!inSource(filter, message.channel_id, guildId)) return undefined;
    return { type: "message.create", message: snapshot(message, filter.guildId) };
}

/**
 * Flux MESSAGE_UPDATE: `{message}`, possibly partial (an embed unfurl); sent as is, ingest
 * decides. Whether it is a change at all (not a re-dispatched copy) is decided by edits.ts.
 */
export function fromUpdate(filter: SourceFilter, payload: unknown): IngestEvent | undefined {
    if (!isRecord(payload) || !isRecord(payload.message)) return undefined;
    const { message } = payload;
    if (!hasIds(message) || isEphemeral(message)) return undefined;
    const guildId = message.guild_id ?? payload.guildId;
    if (!inSource(filter, message.channel_id, guildId)) return undefined;
    return { type: "message.update", message: snapshot(message, filter.guildId) };
}

function deleteEvent(filter: SourceFilter, id: string, channelId: string): IngestEvent {
    return { type: "message.delete", message: { id, channel_id: channelId, guild_id: filter.guildId } };
}

/** Flux MESSAGE_DELETE: `{id, channelId, guildId?}`. */
export function fromDelete(filter: SourceFilter, payload: unknown): IngestEvent | undefined {
    if (!isRecord(payload) || typeof payload.id !== "string" || isPluginDelete(payload)) return undefined;
    if (!inSource(filter, payload.channelId, payload.guildId)) return undefined;
    return deleteEvent(filter, payload.id, payload.channelId as string);
}

/** Flux MESSAGE_DELETE_BULK (a moderator purge): `{ids, channelId, guildId?}` → one delete each. */
export function fromDeleteBulk(filter: SourceFilter, payload: unknown): IngestEvent[] {
    if (!isRecord(payload) || !Array.isArray(payload.ids) || isPluginDelete(payload)) return [];
    if (!inSource(filter, payload.channelId, payload.guildId)) return [];
    const channelId = payload.channelId as string;
    return payload.ids.filter((id): id is string => typeof id === "string").map(id => deleteEvent(filter, id, channelId));
}

/** A message fetched by backfill (REST history) becomes a create event. */
export function fromHistory(filter: SourceFilter, message: DiscordMessage): IngestEvent {
    return { type: "message.create", message: snapshot(message as unknown as Record<string, unknown>, filter.guildId) };
}
