/**
 * Type-only stand-ins for the slice of Vencord's API that src/index.ts uses, so the adapter is
 * type-checked here (tsconfig.plugin.json) without a Vencord checkout. Shapes follow Vencord's
 * src/api/DataStore, src/api/Settings, src/utils/types.ts, src/utils/Logger.ts and
 * @webpack/common. Inside a real Vencord build these shims are not used: Vencord's own types are.
 */

declare module "@api/DataStore" {
    export function get<T = unknown>(key: IDBValidKey): Promise<T | undefined>;
    export function set(key: IDBValidKey, value: unknown): Promise<void>;
    export function setMany(entries: [IDBValidKey, unknown][]): Promise<void>;
    export function delMany(keys: IDBValidKey[]): Promise<void>;
}

declare module "@utils/types" {
    export const enum OptionType { STRING, NUMBER, BIGINT, BOOLEAN, SELECT, SLIDER, COMPONENT, CUSTOM }
    export interface PluginAuthor { name: string; id: bigint; }
    export interface PluginSettingDef {
        type: OptionType;
        description: string;
        default?: unknown;
        placeholder?: string;
        componentProps?: Record<string, unknown>;
        onChange?(newValue: unknown): void;
    }
    export interface PluginDef {
        name: string;
        description: string;
        authors: PluginAuthor[];
        start?(): void | Promise<void>;
        stop?(): void | Promise<void>;
        settings?: unknown;
        settingsAboutComponent?: () => unknown;
        toolboxActions?: Record<string, () => void>;
        flux?: Record<string, (event: any) => void | Promise<void>>;
    }
    export default function definePlugin<P extends PluginDef>(p: P): P;
    export type PluginNative<T extends Record<string, (event: any, ...args: any[]) => any>> = {
        [K in keyof T]: T[K] extends (event: any, ...args: infer A) => infer R
        ? (...args: A) => R extends Promise<any> ? R : Promise<R>
        : never;
    };
}

declare module "@api/Settings" {
    import type { PluginSettingDef } from "@utils/types";
    type ValueOf<D> = D extends { type: import("@utils/types").OptionType.BOOLEAN } ? boolean
        : D extends { type: import("@utils/types").OptionType.STRING } ? string
        : D extends { type: import("@utils/types").OptionType.NUMBER } ? number : unknown;
    export function definePluginSettings<D extends Record<string, PluginSettingDef>>(def: D): {
        def: D;
        store: { [K in keyof D]: ValueOf<D[K]> | undefined };
    };
}

declare module "@utils/Logger" {
    export class Logger {
        constructor(name: string, color?: string);
        log(...args: unknown[]): void;
        info(...args: unknown[]): void;
        warn(...args: unknown[]): void;
        error(...args: unknown[]): void;
    }
}

declare module "@webpack/common" {
    export const RestAPI: {
        get(options: { url: string; query?: Record<string, string | number>; retries?: number }): Promise<{ ok?: boolean; status?: number; body?: unknown }>;
    };
    export const Constants: { Endpoints: { MESSAGES(channelId: string): string } };
    export const React: {
        useState<S>(initial: S | (() => S)): [S, (next: S | ((prev: S) => S)) => void];
        useEffect(effect: () => void | (() => void), deps?: unknown[]): void;
        createElement(type: string | ((props: any) => unknown), props: Record<string, unknown> | null, ...children: unknown[]): unknown;
    };
}

declare const VencordNative: { pluginHelpers: Record<string, Record<string, (...args: any[]) => Promise<any>>> };
