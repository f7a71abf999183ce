/** Fake of Vencord's @utils/Logger: records lines for the tests to assert on. */
import { log } from "../vencord";

export class Logger {
    constructor(public name: string, public color = "white") { }
    log(...args: any[]) { log("log", this.name, args); }
    info(...args: any[]) { log("info", this.name, args); }
    warn(...args: any[]) { log("warn", this.name, args); }
    error(...args: any[]) { log("error", this.name, args); }
    debug(...args: any[]) { log("debug", this.name, args); }
}
