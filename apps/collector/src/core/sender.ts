/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * The delivery loop: takes batches from the front of the outbox, signs and POSTs them to ingest,
 * and reacts to the reply exactly as the ingest protocol says:
 *
 *   2xx          delivered: remove from the outbox, advance cursors
 *   401          bad secret or clock: stop sending (keep everything) until settings change
 *   400 / 413    the batch is bad: halve it and retry the halves; an event refused on its own
 *                is moved to the rejected log (it can never succeed, and must not block the rest)
 *   429 / 5xx /  transient: keep the batch, wait (exponential back-off with jitter, capped at
 *   network      60 s), try again; any other status is treated the same way, since retrying
 *                a misconfiguration is safer than dropping data
 *
 * One request in flight at a time, strictly in outbox order. Delivery is at-least-once: a
 * request whose reply was lost is sent again; ingest is idempotent.
 */
import { type BatchLimits, DEFAULT_LIMITS, encodeBody, takeBatch } from "./batch";
import type { Outbox } from "./outbox";
import { newWebhookId, signedHeaders } from "./sign";
import type { StatusBox } from "./status";
import { type Clock, errorText, type Log, type OutboxEntry, type Sleep, type Transport } from "./types";

export interface IngestTarget {
    url: string;
    secret: string;
}

export interface SenderOptions {
    outbox: Outbox;
    transport: Transport;
    /** Read on every request, so a settings change applies to the next attempt. */
    target: () => IngestTarget;
    status: StatusBox;
    clock: Clock;
    sleep: Sleep;
    random?: () => number;
    log: Log;
    limits?: BatchLimits;
    backoffBaseMs?: number;
    backoffCapMs?: number;
    /** Called after ingest acknowledged entries (the collector advances cursors here). */
    onDelivered?: (entries: readonly OutboxEntry[]) => Promise<void>;
    /** Called for an event refused on its own; it has already left the outbox. */
    onRejected?: (entry: OutboxEntry, status: number, reply: string) => Promise<void>;
    newId?: () => string;
}

type Outcome = "ok" | "retry" | "auth";

/**
 * Exponential back-off with "equal jitter": half the delay is fixed, half random, so clients that
 * failed together do not retry together, yet every wait is at least half the nominal delay.
 * `attempt` counts from 1.
 */
export function backoffDelay(attempt: number, random: () => number, baseMs = 1000, capMs = 60_000): number {
    const nominal = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
    return nominal / 2 + random() * (nominal / 2);
}

/** Trims a reply body for logs and the status line. */
function excerpt(text: string, max = 200): string {
    const flat = text.replace(/\s+/g, " ").trim();
    return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

export class Sender {
    private readonly o: SenderOptions;
    private readonly limits: BatchLimits;
    private readonly random: () => number;
    private running: Promise<void> | undefined;
    private again = false;
    private stopped = true;
    private authFailed = false;
    private wake = new AbortController();
    private attempt = 0;

    constructor(options: SenderOptions) {
        this.o = options;
        this.limits = options.limits ?? DEFAULT_LIMITS;
        this.random = options.random ?? Math.random;
    }

    start(): void {
        this.stopped = false;
        this.kick();
    }

    /** Stops after the request in flight (if any); resolves when the loop has exited. */
    async stop(): Promise<void> {
        this.stopped = true;
        this.wake.abort();
        await this.running;
    }

    /** New events are waiting: send them now unless a back-off is in progress. */
    kick(): void {
        if (this.stopped) return;
        if (this.running) {
            this.again = true;
            return;
        }
        this.running = this.loop().finally(() => {
            this.running = undefined;
            if (this.again && !this.stopped) this.kick();
        });
    }

    /** Settings changed (new secret, URL): clear a 401 stop and retry right away. */
    resume(): void {
        this.authFailed = false;
        this.attempt = 0;
        this.wake.abort();
        this.kick();
    }

    get isAuthFailed(): boolean { return this.authFailed; }

    /** Resolves once the loop has nothing left to do (outbox empty, paused, or stopped). */
    async whenIdle(): Promise<void> {
        while (this.running) await this.running;
    }

    private async loop(): Promise<void> {
        const { outbox, status } = this.o;
        do {
            this.again = false;
            while (!this.stopped && !this.authFailed) {
                const batch = takeBatch(outbox.peek(), this.limits);
                if (batch.length === 0) break;
                status.update({ state: "sending" });
                let outcome: Outcome;
                try {
                    outcome = await this.deliver(batch);
                } catch (err) {
                    // A bug or a storage failure must not kill the loop: keep the events, retry later.
                    status.error(`delivery failed: ${errorText(err)}`, this.o.clock());
                    this.o.log.error("delivery failed unexpectedly, will retry:", err);
                    outcome = "retry";
                }
                if (outcome === "auth") {
                    this.authFailed = true;
                    status.update({ state: "auth_failed", outboxSize: outbox.size });
                    this.o.log.error("ingest refused the signature (401): check the secret and the clock; sending paused");
                    return;
                }
                if (outcome === "retry") {
                    this.attempt++;
                    const delay = backoffDelay(this.attempt, this.random, this.o.backoffBaseMs, this.o.backoffCapMs);
                    status.update({ state: "retrying", outboxSize: outbox.size });
                    this.wake = new AbortController();
                    await this.o.sleep(delay, this.wake.signal);
                    continue;
                }
                this.attempt = 0;
            }
        } while (this.again && !this.stopped && !this.authFailed);
        if (!this.stopped && !this.authFailed) status.update({ state: "idle", outboxSize: outbox.size });
    }

    /** Sends `entries` (the current front of the outbox), splitting on 400/413. */
    private async deliver(entries: OutboxEntry[]): Promise<Outcome> {
        const { outbox, status, clock, log } = this.o;
        let reply: { status: number; body: string };
        try {
            reply = await this.post(entries);
        } catch (err) {
            // Network failure (refused, reset, timeout), or the CSP blocked a non-loopback URL.
            status.error(`ingest unreachable: ${errorText(err)}`, clock());
            log.warn("ingest unreachable, will retry:", errorText(err));
            return "retry";
        }

        if (reply.status >= 200 && reply.status < 300) {
            // Guard the invariant the recursion relies on: we only ever send the outbox front.
            if (outbox.peek()[0]?.seq !== entries[0]!.seq) throw new Error("outbox front changed during delivery");
            await outbox.ack(entries.length);
            const s = status.get();
            status.update({ lastDeliveryAt: clock(), delivered: s.delivered + entries.length, outboxSize: outbox.size });
            await this.o.onDelivered?.(entries);
            return "ok";
        }

        if (reply.status === 401) {
            status.error(`401 from ingest: ${excerpt(reply.body)}`, clock());
            return "auth";
        }

        if (reply.status === 400 || reply.status === 413) {
            if (entries.length > 1) {
                const half = Math.ceil(entries.length / 2);
                log.warn(`ingest refused a batch of ${entries.length} (${reply.status}); splitting`);
                const first = await this.deliver(entries.slice(0, half));
                if (first !== "ok") return first;
                return this.deliver(entries.slice(half));
            }
            const entry = entries[0]!;
            await outbox.ack(1);
            const s = status.get();
            status.update({ rejected: s.rejected + 1, outboxSize: outbox.size });
            status.error(`ingest rejected ${entry.event.type} ${entry.event.message.id} (${reply.status}): ${excerpt(reply.body)}`, clock());
            log.error(`ingest rejected one event (${reply.status}), moved to the rejected log:`, entry.event, reply.body);
            await this.o.onRejected?.(entry, reply.status, reply.body);
            return "ok";
        }

        status.error(`ingest replied ${reply.status}: ${excerpt(reply.body)}`, clock());
        log.warn(`ingest replied ${reply.status}, will retry`);
        return "retry";
    }

    private async post(entries: readonly OutboxEntry[]): Promise<{ status: number; body: string }> {
        const { url, secret } = this.o.target();
        const body = encodeBody(entries.map(e => e.event));
        const id = (this.o.newId ?? newWebhookId)();
        // A fresh timestamp per attempt: ingest only accepts ±5 minutes, and a retry may come much later.
        const headers = await signedHeaders(secret, id, Math.floor(this.o.clock() / 1000), body);
        return this.o.transport(url, headers, body);
    }
}
