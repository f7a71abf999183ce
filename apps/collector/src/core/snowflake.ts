/*
 * Vencord, a Discord client mod
 * Copyright (c) 2026 G3netic Signals
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

/**
 * Discord snowflake ordering. Snowflakes are 64-bit integers sent as decimal strings; they
 * exceed Number's exact range, so compare them as BigInt (or by length, then lexically).
 */

/** Negative if a < b, zero if equal, positive if a > b. */
export function compareSnowflakes(a: string, b: string): number {
    // Canonical snowflakes have no leading zeros, so a longer string is a bigger number.
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
}

/** The larger of two optional snowflakes. */
export function maxSnowflake(a: string | undefined, b: string | undefined): string | undefined {
    if (a === undefined) return b;
    if (b === undefined) return a;
    return compareSnowflakes(a, b) >= 0 ? a : b;
}

export function isSnowflake(text: string): boolean {
    return /^(0|[1-9][0-9]{0,19})$/.test(text);
}
