import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import type pg from 'pg';

import { freePort } from '../../../src/embedded-db.ts';
import * as Command from '../../support/command.ts';
import * as LogStream from '../../support/log-stream.ts';
import type { Exit, LogLine } from '../../support/log-stream.ts';


export { freePort };


// The service as the container runs it: `npm start`'s command line, read from package.json so there is
// one source of truth, started as a real child process with its environment, its stdout parsed as the
// JSON log lines it writes. Every process started here is killed by killAll(), whatever a test did.


export type { Exit, LogLine } from '../../support/log-stream.ts';


export interface App {
    readonly pid: number;
    readonly port: number;
    readonly url: string;
    readonly spawnedAt: number;
    readonly exited: Promise<Exit>;
    readonly exit: Exit | null;
    logs(): LogLine[];
    lifecycle(phase: string): LogLine | undefined;
    waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
    waitForPhase(phase: string, timeoutMs?: number): Promise<LogLine>;
    signal(name: NodeJS.Signals): number;           // Returns Date.now() just before the signal was sent
    output(): string;
}


/** An App over a followed process; `signal` delivers the signal however the process is reached. */
export const handle = function (options: { pid: number; port: number; spawnedAt: number; stream: LogStream.LogStream; signal: (name: NodeJS.Signals) => void }): App {

    const { stream } = options;
    const lifecycle = (phase: string) => stream.lines.find((line) => line.component === 'lifecycle' && line.phase === phase);
    return {
        pid: options.pid,
        port: options.port,
        url: `http://127.0.0.1:${options.port}`,
        spawnedAt: options.spawnedAt,
        exited: stream.exited,
        get exit() {

            return stream.exit();
        },
        logs: () => stream.lines,
        lifecycle,
        waitForLog: stream.waitForLog,
        waitForPhase: (phase, timeoutMs) => stream.waitForLog((line) => line.component === 'lifecycle' && line.phase === phase, timeoutMs),
        signal(name) {

            const at = Date.now();
            options.signal(name);
            return at;
        },
        output: stream.output
    };
};


export interface StartOptions {
    readonly env?: Record<string, string | undefined>;
    readonly preload?: string[];                    // Extra `--import` modules, loaded before the service's own
    readonly waitFor?: 'listening' | 'started' | 'none';
    readonly port?: number;
}


const internals = {
    root: fileURLToPath(new URL('../../../', import.meta.url)),
    children: new Set<{ child: ChildProcess; exited: Promise<Exit> }>(),

    // Small budgets keep the suite fast; the tests that measure a budget set their own.
    defaults: {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        OTEL_SDK_DISABLED: 'true',
        SHUTDOWN_DELAY_MS: '300',
        SHUTDOWN_DRAIN_TIMEOUT_MS: '1000',
        SHUTDOWN_CLEANUP_TIMEOUT_MS: '1500',
        DB_START_RETRY_MAX_MS: '500',
        WARMUP_REQUESTS: '0'                        // Seconds of CPU per start; test/lifecycle/warmup.test.ts turns it on
    } as Record<string, string>
};


export const root = internals.root;




// The name the service's pool connections carry in pg_stat_activity (see src/db.ts).
export const applicationName = function (pid: number): string {

    return `item-api:${hostname()}:${pid}`.slice(0, 63);
};


export const start = async function (options: StartOptions = {}): Promise<App> {

    const port = options.port ?? await freePort();
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' };
    for (const [key, value] of Object.entries({ ...internals.defaults, PORT: String(port), ...options.env })) {
        if (value !== undefined) {
            env[key] = value;
        }
    }

    const [command, ...args] = Command.argv();
    const preload = (options.preload ?? []).flatMap((file) => ['--import', file]);
    const spawnedAt = Date.now();
    const child = spawn(command, [...preload, ...args], { cwd: internals.root, env, stdio: ['ignore', 'pipe', 'pipe'] });

    const stream = LogStream.follow(child, 'process');
    const { exited, waitForLog } = stream;
    const entry = { child, exited };
    internals.children.add(entry);
    void exited.then(() => internals.children.delete(entry));

    const app = handle({ pid: child.pid!, port, spawnedAt, stream, signal: (name) => child.kill(name) });

    const waitFor = options.waitFor ?? 'started';
    if (waitFor !== 'none') {
        await waitForLog((line) => line.component === 'lifecycle' && line.msg === waitFor, 15_000);
    }

    return app;
};


// For afterEach: whatever a test left running is killed and reaped.
export const killAll = async function (): Promise<void> {

    const running = [...internals.children];
    for (const { child } of running) {
        child.kill('SIGKILL');
    }

    await Promise.all(running.map(({ exited }) => exited));
};


// Resolves once a statement of this app waits on a row lock in Postgres: the request is in flight,
// inside the database.

export const waitForLockWait = async function (client: pg.Client, pid: number): Promise<void> {

    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
        const { rows } = await client.query(`select count(*)::int as n from pg_stat_activity where starts_with(application_name, $1) and wait_event_type = 'Lock'`, [applicationName(pid)]);
        if (rows[0].n > 0) {
            return;
        }

        await sleep(20);
    }

    throw new Error('the request never waited on the row lock');
};
