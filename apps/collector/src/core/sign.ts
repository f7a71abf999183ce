/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the collector signs every
 * ingest request so the webhook service can reject forged or replayed traffic.
 *
 *   signature = "v1," + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`))
 *   key       = base64-decode(secret without "whsec_") if the secret has that prefix,
 *               otherwise the secret's UTF-8 bytes.
 *
 * WebCrypto (`crypto.subtle`) only, never Node's `crypto` module: the same code runs in Discord's
 * renderer and in Node 20, where `crypto` is a global.
 */

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

/** Turns the configured secret into HMAC key bytes, as the protocol defines. */
export function secretKeyBytes(secret: string): Uint8Array<ArrayBuffer> {
    if (secret.startsWith("whsec_")) return base64Decode(secret.slice("whsec_".length));
    return encoder.encode(secret);
}

function hmacKey(secret: string): Promise<CryptoKey> {
    // importKey is comparatively slow and the secret rarely changes: cache per secret.
    let key = keyCache.get(secret);
    if (!key) {
        const bytes = secretKeyBytes(secret);
        key = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        keyCache.set(secret, key);
        // A failed import (bad base64 is caught earlier; this is belt and braces) must not stick.
        key.catch(() => keyCache.delete(secret));
    }
    return key;
}

/** Computes the `webhook-signature` header value for one request. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
    const key = await hmacKey(secret);
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${timestamp}.${body}`));
    return `v1,${base64Encode(new Uint8Array(mac))}`;
}

/** Builds all headers of a signed ingest request. */
export async function signedHeaders(secret: string, id: string, timestampSeconds: number, body: string): Promise<Record<string, string>> {
    return {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestampSeconds),
        "webhook-signature": await sign(secret, id, timestampSeconds, body),
    };
}

/** A fresh `webhook-id`: "col_" + 16 random bytes in hex. Unique per request (the server dedupes on it). */
export function newWebhookId(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    let hex = "";
    for (const b of bytes) hex += b.toString(16).padStart(2, "0");
    return `col_${hex}`;
}

export function base64Encode(bytes: Uint8Array): string {
    // btoa wants a "binary string"; chunk to stay clear of argument-count limits.
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
}

export function base64Decode(text: string): Uint8Array<ArrayBuffer> {
    let binary: string;
    try {
        binary = atob(text);
    } catch {
        throw new Error("secret starts with whsec_ but the rest is not valid base64");
    }
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
}
