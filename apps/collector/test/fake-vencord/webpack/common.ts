/** Fake of the @webpack/common exports the adapter uses: RestAPI, Constants, React. */
import { hooks } from "../vencord";

export const Constants = { Endpoints: { MESSAGES: (channelId: string) => `/channels/${channelId}/messages` } };

export const RestAPI = {
    async get(options: { url: string; query?: Record<string, string | number>; retries?: number }): Promise<{ ok: boolean; status: number; body: unknown }> {
        const channelId = /^\/channels\/(\d+)\/messages$/.exec(options.url)?.[1] ?? "";
        return { ok: true, status: 200, body: structuredClone(hooks.history.get(channelId) ?? []) };
    },
};

export const React = {
    useState<S>(initial: S | (() => S)): [S, (next: S | ((prev: S) => S)) => void] {
        return [typeof initial === "function" ? (initial as () => S)() : initial, () => undefined];
    },
    useEffect(_effect: () => void | (() => void), _deps?: unknown[]): void { },
    createElement(type: unknown, props: unknown, ...children: unknown[]) { return { type, props, children }; },
};
