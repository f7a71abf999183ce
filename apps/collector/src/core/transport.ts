/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * HTTP transports for the sender, and the rule for choosing one.
 *
 * - `fetchTransport`: `fetch` from wherever the core runs. In Discord's renderer this is bound
 *   by the page's CSP (Vencord allows only loopback hosts in connect-src) and by CORS (the
 *   request carries `webhook-*` headers, so the browser sends a preflight that ingest must answer).
 * - native.ts: the same POST from Electron's main process, where neither CSP nor CORS applies.
 *   The plugin prefers it whenever it exists (Discord desktop, Vesktop).
 */
import { errorText, type Transport } from "./types";

export const REQUEST_TIMEOUT_MS = 30_000;

/** POST with `fetch`; a network failure or timeout throws, any HTTP status is returned. */
export const fetchTransport: Transport = async (url, headers, body) => {
    let res: Response;
    try {
        res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
        // Node's "fetch failed" hides the reason (ECONNREFUSED, ...) in `cause`: surface it.
        throw new Error(errorText(err));
    }
    return { status: res.status, body: await res.text() };
};

/** True for URLs Discord's renderer may fetch: http(s) to localhost, 127.0.0.0/8 or [::1]. */
export function isLoopbackUrl(url: string): boolean {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return false;
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return false;
    const host = parsed.hostname.toLowerCase();
    return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The shape native.ts returns across IPC (errors as values: thrown errors lose detail over IPC). */
export type NativePostResult = { ok: true; status: number; body: string } | { ok: false; error: string };

/** Adapts a native `post` (already bound to IPC) to a Transport. */
export function nativeTransport(post: (url: string, headers: Record<string, string>, body: string) => Promise<NativePostResult>): Transport {
    return async (url, headers, body) => {
        const result = await post(url, headers, body);
        if (!result.ok) throw new Error(result.error);
        return { status: result.status, body: result.body };
    };
}
