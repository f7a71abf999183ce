/**
 * Fake of Vencord's @api/Settings: `store` is `Settings.plugins[pluginName]`, the same object
 * that holds Vencord's own `enabled` switch; a missing key reads as the setting's default.
 */
import type { OptionType } from "../utils/types";
import { Settings } from "../vencord";

export interface SettingDef { type: OptionType; description: string; default?: unknown; componentProps?: Record<string, unknown>; onChange?(value: unknown): void; }

type ValueOf<D> = D extends { type: OptionType.BOOLEAN } ? boolean
    : D extends { type: OptionType.STRING } ? string
    : D extends { type: OptionType.NUMBER } ? number : unknown;

export function definePluginSettings<D extends Record<string, SettingDef>>(def: D) {
    const defined = {
        def,
        pluginName: "",
        get store(): { [K in keyof D]: ValueOf<D[K]> } {
            if (!defined.pluginName) throw new Error("Cannot access settings before plugin is initialized");
            const target = (Settings.plugins[defined.pluginName] ??= { enabled: false });
            return new Proxy(target, {
                get(t, key: string) {
                    if (key in t) return t[key];
                    const d = def[key];
                    if (d && "default" in d) return (t[key] = d.default);
                    return undefined;
                },
            }) as never;
        },
    };
    return defined;
}
