/**
 * Guards the few things Vencord's build requires of the plugin folder, which no type check sees:
 * entry and native file names, a literal plugin name found by Vencord's own regex (it keys
 * VencordNative.pluginHelpers), and no Node built-in imports in renderer code.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

// dist/test/ → apps/collector/src
const SRC = join(__dirname, "..", "..", "src");
// Copied from Vencord's scripts/build/common.mjs (resolvePluginName).
const PluginDefinitionNameMatcher = /definePlugin\(\{\s*(["'])?name\1:\s*(["'`])(.+?)\2/;

test("index.ts and native.ts sit at the top of the plugin folder", () => {
    const files = readdirSync(SRC);
    assert.ok(files.includes("index.ts"));
    assert.ok(files.includes("native.ts"));
});

test("Vencord's build can read the plugin name, and it matches the pluginHelpers key", () => {
    const index = readFileSync(join(SRC, "index.ts"), "utf8");
    assert.equal(PluginDefinitionNameMatcher.exec(index)?.[3], "G3Collector");
    assert.match(index, /const PLUGIN_NAME = "G3Collector";/);
});

test("renderer code imports no Node built-ins (Vencord's build bans them)", () => {
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
        .flatMap(d => d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]);
    for (const file of walk(SRC).filter(f => f.endsWith(".ts") && !f.endsWith("native.ts"))) {
        const text = readFileSync(file, "utf8");
        assert.doesNotMatch(text, /from\s+["'](node:|fs|path|http|https|crypto|net|electron)["'/]/, file);
    }
});

test("plugin files import nothing above their folder (Vencord's patched path-alias rule flags `../`)", () => {
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
        .flatMap(d => d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]);
    for (const file of walk(SRC).filter(f => f.endsWith(".ts"))) {
        assert.doesNotMatch(readFileSync(file, "utf8"), /from\s+["']\.\.\//, file);
    }
});
