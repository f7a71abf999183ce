/** Signing: the Standard Webhooks test vector, plain secrets, and header layout. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { newWebhookId, secretKeyBytes, sign, signedHeaders } from "../src/core/sign";
import { verifySignature } from "./helpers";

test("matches the Standard Webhooks test vector", async () => {
    const sig = await sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    assert.equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
});

test("a secret without whsec_ is used as UTF-8 bytes", async () => {
    assert.deepEqual([...secretKeyBytes("ké")], [0x6b, 0xc3, 0xa9]);
    const headers = await signedHeaders("plain-secret", "col_1", 1700000000, '{"events":[]}');
    assert.ok(verifySignature("plain-secret", headers, '{"events":[]}'));
    assert.ok(!verifySignature("other-secret", headers, '{"events":[]}'));
    assert.ok(!verifySignature("plain-secret", headers, '{"events":[ ]}'));
});

test("signed headers carry id, unix-seconds timestamp, content type", async () => {
    const h = await signedHeaders("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    assert.deepEqual(h, {
        "content-type": "application/json",
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    });
});

test("non-ASCII bodies are signed as UTF-8", async () => {
    const body = JSON.stringify({ events: [{ type: "message.create", message: { id: "1", channel_id: "2", content: "🚀 BTC long ✅" } }] });
    const headers = await signedHeaders("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "col_x", 1700000000, body);
    assert.ok(verifySignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body));
});

test("webhook ids are unique and prefixed", () => {
    const ids = new Set(Array.from({ length: 1000 }, newWebhookId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^col_[0-9a-f]{32}$/);
});

test("a whsec_ secret with invalid base64 is reported", () => {
    assert.throws(() => secretKeyBytes("whsec_***"), /not valid base64/);
});
