/**
 * A small stand-in for the parts of Vencord that drive a plugin, so the Node tests can load the
 * real adapter (src/index.ts) and drive it the way Vencord does. Written from Vencord's
 * behaviour (src/api/PluginManager.ts, src/api/Settings.ts,
 * src/components/settings/tabs/plugins/PluginCard.tsx), not copied from it:
 *
 * - `Settings.plugins[name]` holds the plugin's on/off switch under the key `enabled` AND the
 *   plugin's own settings, in one object; a missing setting reads as its declared default.
 * - `startPlugin` calls `start()` without awaiting it, then subscribes the Flux handlers at once;
 *   `stopPlugin` calls `stop()` without awaiting it; both refuse when already started/stopped.
 * - The plugin card calls startPlugin/stopPlugin first and only then flips `enabled`.
 * - Flux handlers are called synchronously on dispatch; a rejected handler promise is logged.
 */

export interface FakePlugin {
    name: string;
    started?: boolean;
    start?(): unknown;
    stop?(): unknown;
    settings?: { pluginName: string; def: Record<string, { default?: unknown }> };
    flux?: Record<string, (event: unknown) => unknown>;
}

export const Settings: { plugins: Record<string, Record<string, unknown>> } = { plugins: {} };
/** The DataStore (IndexedDB) contents. */
export const dataStore = new Map<string, unknown>();
export const logs: { level: string; name: string; args: unknown[] }[] = [];
/** Every value `start()` / `stop()` returned (Vencord ignores them). */
export const returned: { fn: "start" | "stop"; value: unknown }[] = [];
export const hooks: {
    /** Makes every DataStore call fail (IndexedDB blocked). */
    failStorage: boolean;
    /** History answers for RestAPI.get, by channel id. */
    history: Map<string, unknown[]>;
} = { failStorage: false, history: new Map() };

const subscribers = new Map<string, Set<(event: unknown) => unknown>>();
const wrapped = new Map<string, [string, (event: unknown) => unknown][]>();

export function reset(): void {
    Settings.plugins = {};
    dataStore.clear();
    logs.length = 0;
    returned.length = 0;
    hooks.failStorage = false;
    hooks.history = new Map();
    subscribers.clear();
    wrapped.clear();
}

export function log(level: string, name: string, args: unknown[]): void {
    logs.push({ level, name, args });
}

/** Log lines as text, e.g. for asserting on warnings. */
export function logText(level?: string): string[] {
    return logs.filter(l => level === undefined || l.level === level)
        .map(l => `${l.name}: ${l.args.map(a => a instanceof Error ? a.message : String(a)).join(" ")}`);
}

export function isPluginEnabled(name: string): boolean {
    return Boolean(Settings.plugins[name]?.enabled);
}

function subscribe(p: FakePlugin): void {
    if (!p.flux || wrapped.has(p.name)) return;
    const list: [string, (event: unknown) => unknown][] = [];
    for (const [type, handler] of Object.entries(p.flux)) {
        const w = (event: unknown) => {
            try {
                const r = handler.call(p, event);
                return r instanceof Promise ? r.catch(e => log("error", "PluginManager", [`${p.name}: Error while handling ${type}`, e])) : r;
            } catch (e) {
                log("error", "PluginManager", [`${p.name}: Error while handling ${type}`, e]);
            }
        };
        list.push([type, w]);
        if (!subscribers.has(type)) subscribers.set(type, new Set());
        subscribers.get(type)!.add(w);
    }
    wrapped.set(p.name, list);
}

function unsubscribe(p: FakePlugin): void {
    for (const [type, w] of wrapped.get(p.name) ?? []) subscribers.get(type)?.delete(w);
    wrapped.delete(p.name);
}

export function startPlugin(p: FakePlugin): boolean {
    if (p.start) {
        if (p.started) {
            log("warn", "PluginManager", [`${p.name} already started`]);
            return false;
        }
        try {
            returned.push({ fn: "start", value: p.start() });
        } catch (e) {
            log("error", "PluginManager", [`Failed to start ${p.name}`, e]);
            return false;
        }
    }
    p.started = true;
    subscribe(p);
    return true;
}

export function stopPlugin(p: FakePlugin): boolean {
    if (p.stop) {
        if (!p.started) {
            log("warn", "PluginManager", [`${p.name} already stopped`]);
            return false;
        }
        try {
            returned.push({ fn: "stop", value: p.stop() });
        } catch (e) {
            log("error", "PluginManager", [`Failed to stop ${p.name}`, e]);
            return false;
        }
    }
    p.started = false;
    unsubscribe(p);
    return true;
}

/** The plugin card's on/off toggle: start/stop first, then flip `enabled`. */
export function togglePlugin(p: FakePlugin): boolean {
    const s = (Settings.plugins[p.name] ??= { enabled: false });
    const wasEnabled = isPluginEnabled(p.name);
    if (wasEnabled && !p.started) {
        s.enabled = false;
        return true;
    }
    const ok = wasEnabled ? stopPlugin(p) : startPlugin(p);
    if (!ok) {
        s.enabled = false;
        return false;
    }
    s.enabled = !wasEnabled;
    return true;
}

/** Vencord at boot: plugins whose switch is on are started, then Flux is subscribed. */
export function bootPlugin(p: FakePlugin): boolean {
    return isPluginEnabled(p.name) ? startPlugin(p) : false;
}

export const FluxDispatcher = {
    dispatch(event: { type: string;[key: string]: unknown }): void {
        for (const handler of [...subscribers.get(event.type) ?? []]) handler(event);
    },
};
