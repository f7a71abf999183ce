/**
 * Loads the real adapter (dist/src/index.js) with Vencord's module aliases (@api/…, @utils/…,
 * @webpack/common) resolved to the fakes next to this file, fresh for every call.
 */
import Module from "node:module";
import { join } from "node:path";

import { type FakePlugin, reset } from "./vencord";

const ALIASES: Record<string, string> = {
    "@api/DataStore": "api/DataStore",
    "@api/Settings": "api/Settings",
    "@utils/Logger": "utils/Logger",
    "@utils/types": "utils/types",
    "@webpack/common": "webpack/common",
};

type Resolve = (request: string, ...rest: unknown[]) => string;
const M = Module as unknown as { _resolveFilename: Resolve };
const original = M._resolveFilename;
M._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    const alias = ALIASES[request];
    return original.call(this, alias ? join(__dirname, alias) : request, ...rest);
} as Resolve;

// dist/test/fake-vencord/ → dist/src/index.js
const INDEX = join(__dirname, "..", "..", "src", "index.js");

export interface LoadedPlugin extends FakePlugin {
    settings: FakePlugin["settings"] & { store: Record<string, unknown> };
    flux: Record<string, (event: unknown) => unknown>;
}

/** Resets the fake Vencord and loads a fresh copy of the plugin module. */
export function loadPlugin(): LoadedPlugin {
    reset();
    delete require.cache[require.resolve(INDEX)];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(INDEX) as { default: LoadedPlugin }).default;
}
