/** Fake of Vencord's @utils/types: definePlugin, OptionType, PluginNative. */

export enum OptionType { STRING, NUMBER, BIGINT, BOOLEAN, SELECT, SLIDER, COMPONENT, CUSTOM }

export interface PluginAuthor { name: string; id: bigint; }

export interface PluginDef {
    name: string;
    description: string;
    authors: PluginAuthor[];
    start?(): void;
    stop?(): void;
    settings?: { pluginName: string; def: Record<string, unknown> };
    settingsAboutComponent?: () => unknown;
    toolboxActions?: Record<string, () => void>;
    flux?: Record<string, (event: any) => void | Promise<void>>;
}

/** Like Vencord's plugin loader, ties the settings to the plugin's name. */
export default function definePlugin<P extends PluginDef>(p: P): P & { started?: boolean } {
    if (p.settings) p.settings.pluginName = p.name;
    return p;
}

export type PluginNative<T extends Record<string, (event: any, ...args: any[]) => any>> = {
    [K in keyof T]: T[K] extends (event: any, ...args: infer A) => infer R
    ? (...args: A) => R extends Promise<any> ? R : Promise<R>
    : never;
};
