/** Capturing Discord events: source filtering, optimistic skip, delete mapping, snapshots. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { fromCreate, fromDelete, fromDeleteBulk, fromHistory, fromUpdate, makeFilter, parseChannelIds } from "../src/core/events";
import { CH_A, CH_B, createPayload, GUILD, message, OTHER_CH } from "./helpers";

const filter = makeFilter(GUILD, `${CH_A}, ${CH_B}`);

test("channel ids setting accepts commas, spaces and newlines, ignores junk and duplicates", () => {
    assert.deepEqual(parseChannelIds(` ${CH_A},${CH_B}\n${CH_A} ; nope, 12x `), [CH_A, CH_B]);
    assert.deepEqual(parseChannelIds(""), []);
    assert.deepEqual(parseChannelIds(undefined), []);
});

test("creates in configured channels become message.create; others are ignored", () => {
    const m = message(CH_A, "BTC long");
    assert.deepEqual(fromCreate(filter, createPayload(m)), { type: "message.create", message: m });
    assert.equal(fromCreate(filter, createPayload(message(OTHER_CH, "chatter"))), undefined);
    // Right channel id but another guild: refused (a wrong id in the list must not leak another server).
    assert.equal(fromCreate(filter, createPayload(message(CH_A, "x", undefined, "123456789012345678"))), undefined);
});

test("optimistic creates (our own unsent messages) are skipped", () => {
    assert.equal(fromCreate(filter, createPayload(message(CH_A, "pending"), true)), undefined);
});

test("an empty channel list collects nothing", () => {
    assert.equal(fromCreate(makeFilter(GUILD, ""), createPayload(message(CH_A, "x"))), undefined);
});

test("guild_id is filled in when the client omits it", () => {
    const m = message(CH_A, "no guild", undefined, null);
    const e = fromCreate(filter, { message: m, optimistic: false });
    assert.equal(e?.message.guild_id, GUILD);
    assert.equal(m.guild_id, undefined, "Discord's object is not mutated");
});

test("the captured message is a snapshot, not a live reference", () => {
    const m = message(CH_A, "before");
    const e = fromCreate(filter, createPayload(m));
    m.content = "after";
    assert.equal(e?.message.content, "before");
});

test("partial updates (embed unfurls) are forwarded as they are", () => {
    const partial = { id: "1000000000000000001", channel_id: CH_A, guild_id: GUILD, embeds: [{ type: "link", url: "https://x.test" }] };
    assert.deepEqual(fromUpdate(filter, { type: "MESSAGE_UPDATE", message: partial }), { type: "message.update", message: partial });
    assert.equal(fromUpdate(filter, { message: { ...partial, channel_id: OTHER_CH } }), undefined);
});

test("deletes map {id, channelId, guildId} to a message.delete", () => {
    assert.deepEqual(fromDelete(filter, { type: "MESSAGE_DELETE", id: "55", channelId: CH_B, guildId: GUILD }), {
        type: "message.delete", message: { id: "55", channel_id: CH_B, guild_id: GUILD },
    });
    assert.deepEqual(fromDelete(filter, { id: "55", channelId: CH_B })?.message.guild_id, GUILD);
    assert.equal(fromDelete(filter, { id: "55", channelId: OTHER_CH, guildId: GUILD }), undefined);
});

test("bulk deletes become one delete each", () => {
    const events = fromDeleteBulk(filter, { ids: ["1", "2"], channelId: CH_A, guildId: GUILD });
    assert.deepEqual(events.map(e => [e.type, e.message.id]), [["message.delete", "1"], ["message.delete", "2"]]);
    assert.deepEqual(fromDeleteBulk(filter, { ids: ["1"], channelId: OTHER_CH }), []);
});

test("malformed payloads are ignored, not thrown", () => {
    for (const p of [null, undefined, 1, "x", {}, { message: null }, { message: { id: 1 } }]) {
        assert.equal(fromCreate(filter, p), undefined);
        assert.equal(fromUpdate(filter, p), undefined);
        assert.equal(fromDelete(filter, p), undefined);
        assert.deepEqual(fromDeleteBulk(filter, p), []);
    }
});

test("history messages become creates with the guild id", () => {
    const { guild_id: _g, ...rest } = message(CH_A, "old");
    assert.equal(fromHistory(filter, rest as ReturnType<typeof message>).message.guild_id, GUILD);
});

test("plugin-made deletes are not forwarded: MessageLogger's mlDeleted, ValidReply's id-less delete", () => {
    assert.equal(fromDelete(filter, { type: "MESSAGE_DELETE", id: "55", channelId: CH_A, mlDeleted: true }), undefined);
    assert.deepEqual(fromDeleteBulk(filter, { ids: ["1", "2"], channelId: CH_A, guildId: GUILD, mlDeleted: true }), []);
    assert.equal(fromDelete(filter, { type: "MESSAGE_DELETE", channelId: CH_A, message: "55" }), undefined);
    // A real delete with mlDeleted false (or absent) still goes through.
    assert.equal(fromDelete(filter, { id: "55", channelId: CH_A, mlDeleted: false })?.type, "message.delete");
});

test("ephemeral messages (local bot replies only this client sees) are not forwarded", () => {
    const clyde = { ...message(CH_A, "Only you can see this"), flags: 64, author: { id: "1", username: "Clyde" } };
    assert.equal(fromCreate(filter, createPayload(clyde)), undefined);
    assert.equal(fromUpdate(filter, { message: clyde }), undefined);
    // Other flags (e.g. 4 = SUPPRESS_EMBEDS) do not matter.
    assert.equal(fromCreate(filter, createPayload({ ...message(CH_A, "x"), flags: 4 }))?.type, "message.create");
});
