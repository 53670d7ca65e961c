import type { ChildProcess } from 'node:child_process';


// The service writes one JSON line per log record on stdout. A test follows a process (the
// service itself, or podman attached to its container) through them: every parsed line with the
// time it arrived, the raw output for failure messages, the exit, and waits for a line.

export type LogLine = Record<string, unknown> & { readonly time: string; readonly msg: string; readonly receivedAt: number };


export interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
    readonly at: number;                            // Date.now() in the test when the child was seen exiting
}


export interface LogStream {
    readonly lines: LogLine[];
    readonly exited: Promise<Exit>;
    exit(): Exit | null;
    output(): string;
    waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}


/** `what` names the process in failure messages ("process", "container"). */
export const follow = function (child: ChildProcess, what: string): LogStream {

    const lines: LogLine[] = [];
    const raw: string[] = [];
    const waiters = new Set<() => void>();
    const wakeAll = () => waiters.forEach((wake) => wake());
    let exit: Exit | null = null;
    let pending = '';

    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {

        const receivedAt = Date.now();
        pending += chunk;
        const complete = pending.split('\n');
        pending = complete.pop() ?? '';
        for (const line of complete) {
            raw.push(line);
            try {
                lines.push({ ...JSON.parse(line), receivedAt });
            }
            catch {
                // Not a log line (the service writes only JSON): kept in output() for the failure message
            }
        }

        wakeAll();
    });

    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => raw.push(`[stderr] ${chunk.trimEnd()}`));

    const exited = new Promise<Exit>((resolve) => {

        child.once('exit', (code, signal) => {

            exit = { code, signal, at: Date.now() };
            wakeAll();
            resolve(exit);
        });
    });

    const output = () => raw.slice(-40).join('\n');

    const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {

        return new Promise((resolve, reject) => {

            const check = () => {

                const found = lines.find(match);
                if (found) {
                    done();
                    resolve(found);
                }
                else if (exit) {
                    done();
                    reject(new Error(`${what} exited (${exit.code ?? exit.signal}) before the expected log line; output:\n${output()}`));
                }
            };

            const timer = setTimeout(() => {

                done();
                reject(new Error(`expected log line not seen within ${timeoutMs} ms; output:\n${output()}`));
            }, timeoutMs);

            const done = () => {

                clearTimeout(timer);
                waiters.delete(check);
            };

            waiters.add(check);
            check();
        });
    };

    return { lines, exited, exit: () => exit, output, waitForLog };
};
