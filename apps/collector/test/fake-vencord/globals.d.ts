/** Vencord's renderer global (absent in the Node tests, as in a browser build). */
declare var VencordNative: { pluginHelpers: Record<string, Record<string, (...args: any[]) => Promise<any>>> } | undefined;
