/** Which MESSAGE_UPDATEs are real changes (forwarded) and which are re-dispatched copies (dropped). */
import assert from "node:assert/strict";
import { test } from "node:test";

import { EditTracker, LIVE_WINDOW_MS, parseStamp, snowflakeTime } from "../src/core/edits";
import type { DiscordMessage } from "../src/core/types";
import { CH_A, GUILD } from "./helpers";

const NOW = Date.parse("2026-12-01T12:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString().replace("Z", "000+00:00");
const idAt = (ms: number) => ((BigInt(ms) - 1_420_070_400_000n) << 22n).toString();

function msg(over: Partial<DiscordMessage> = {}): DiscordMessage {
    return { id: idAt(NOW - 60_000), channel_id: CH_A, guild_id: GUILD, content: "BTC long 100", embeds: [], attachments: [], edited_timestamp: null, ...over };
}

test("timestamps: Discord's microsecond ISO form and snowflake times are read", () => {
    assert.equal(parseStamp("2026-11-25T20:00:00.123456+00:00"), Date.parse("2026-11-25T20:00:00.123Z"));
    assert.equal(parseStamp(null), null);
    assert.equal(parseStamp("yesterday"), null);
    assert.equal(snowflakeTime(idAt(NOW)), NOW);
    assert.equal(snowflakeTime("x"), undefined);
});

test("a known message: a newer edited_timestamp is an edit; the same or an older one is not", () => {
    const t = new EditTracker();
    const m = msg();
    t.record(m);
    const e1 = { ...m, content: "BTC long 100 (TP 110)", edited_timestamp: iso(NOW - 10_000) };
    assert.equal(t.isChange(e1, NOW), true);
    t.record(e1);
    assert.equal(t.isChange({ ...e1 }, NOW), false, "the same version again");
    assert.equal(t.isChange({ ...e1, content: "older text", edited_timestamp: iso(NOW - 20_000) }, NOW), false, "an older version");
    assert.equal(t.isChange({ ...m }, NOW), false, "the original (edited_timestamp null) after an edit");
    assert.equal(t.isChange({ ...e1, content: "newest", edited_timestamp: iso(NOW) }, NOW), true);
});

test("a known message, same version: only a different body (an unfurl) is forwarded", () => {
    const t = new EditTracker();
    const m = msg();
    t.record(m);
    assert.equal(t.isChange({ ...m }, NOW), false, "identical re-dispatch");
    assert.equal(t.isChange({ ...m, pinned: true, flags: 2 }, NOW), false, "pin/flags only");
    const unfurl = { id: m.id, channel_id: CH_A, guild_id: GUILD, embeds: [{ type: "link", url: "https://x.test" }] };
    assert.equal(t.isChange(unfurl, NOW), true, "partial update adding embeds");
    t.record(unfurl);
    assert.equal(t.isChange({ ...m, embeds: unfurl.embeds }, NOW), false, "full copy with the same embeds");
    assert.equal(t.isChange({ ...m, embeds: unfurl.embeds, content: "changed without a stamp" }, NOW), true, "different content is passed on; ingest decides");
});

test("an unknown message: only a live edit, or an update of a just-posted message, is forwarded", () => {
    const t = new EditTracker();
    const old = msg({ id: idAt(NOW - 3 * 86_400_000) });
    assert.equal(t.isChange(old, NOW), false, "an old message re-dispatched unedited");
    assert.equal(t.isChange({ ...old, edited_timestamp: iso(NOW - 86_400_000) }, NOW), false, "an old edit re-dispatched");
    assert.equal(t.isChange({ ...old, content: "fresh edit", edited_timestamp: iso(NOW - 5_000) }, NOW), true, "a live edit of an old message");
    assert.equal(t.isChange(msg({ id: idAt(NOW - LIVE_WINDOW_MS + 1000) }), NOW), true, "posted just before start-up");
    assert.equal(t.isChange(msg({ id: idAt(NOW - LIVE_WINDOW_MS - 1000) }), NOW), false);
});

test("it remembers a bounded number of messages", () => {
    const t = new EditTracker();
    const first = msg({ id: idAt(NOW - 86_400_000) });
    t.record(first);
    for (let i = 1; i <= 5000; i++) t.record(msg({ id: (BigInt(first.id) + BigInt(i)).toString() }));
    // Forgotten: judged as unknown (an old message, unedited): dropped all the same.
    assert.equal(t.isChange({ ...first, content: "x" }, NOW), false);
});
