/** Fake of Vencord's @api/DataStore (IndexedDB key-value store) for the adapter tests. */
import { dataStore, hooks } from "../vencord";

async function check(): Promise<void> {
    await new Promise(resolve => setImmediate(resolve));
    if (hooks.failStorage) throw new Error("IndexedDB unavailable (simulated)");
}

export async function get<T = any>(key: IDBValidKey): Promise<T | undefined> {
    await check();
    const v = dataStore.get(String(key));
    return v === undefined ? undefined : structuredClone(v) as T;
}
export async function set(key: IDBValidKey, value: any): Promise<void> {
    await check();
    dataStore.set(String(key), structuredClone(value));
}
export async function setMany(entries: [IDBValidKey, any][]): Promise<void> {
    await check();
    for (const [k, v] of entries) dataStore.set(String(k), structuredClone(v));
}
export async function delMany(keys: IDBValidKey[]): Promise<void> {
    await check();
    for (const k of keys) dataStore.delete(String(k));
}
