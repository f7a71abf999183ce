/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Node side of the plugin (Electron main process). Vencord's build finds this file next to
 * index.ts and exposes its exports to the renderer as
 * `VencordNative.pluginHelpers.G3Collector.post(url, headers, body)`; the first parameter
 * (the IPC event) is filled in by Electron.
 *
 * Why it exists: the renderer may only fetch loopback URLs (Discord's CSP as patched by
 * Vencord) and is subject to CORS. The main process is not, so this is how the collector
 * reaches a non-loopback ingest URL, and the default transport on desktop.
 *
 * It posts only to http(s) URLs and returns errors as values (IPC flattens thrown errors).
 * Plain module: no Vencord or Electron imports, so the Node tests exercise it directly.
 */

/** Same shape as NativePostResult in core/transport.ts (kept local: this file must stand alone). */
export type PostResult = { ok: true; status: number; body: string } | { ok: false; error: string };

const TIMEOUT_MS = 30_000;
const MAX_REPLY_CHARS = 64 * 1024;

export async function post(_event: unknown, url: string, headers: Record<string, string>, body: string): Promise<PostResult> {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return { ok: false, error: `invalid ingest URL: ${url}` };
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        return { ok: false, error: `ingest URL must be http(s): ${url}` };
    }
    try {
        const res = await fetch(parsed, { method: "POST", headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
        const text = await res.text();
        return { ok: true, status: res.status, body: text.slice(0, MAX_REPLY_CHARS) };
    } catch (err) {
        // Node's fetch puts the real reason (ECONNREFUSED, ...) in `cause`.
        const message = err instanceof Error ? err.message : String(err);
        const cause = err instanceof Error && err.cause ? ` (${err.cause instanceof Error ? err.cause.message : String(err.cause)})` : "";
        return { ok: false, error: `${message}${cause}` };
    }
}
