import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import type * as MemoryLimit from './memory-limit.ts';


// Every process under measurement is a real child with its own event loop; the benchmark's parent
// only orchestrates and stays idle while load runs.

const internals = {
    readyTimeoutMs: 30_000,
    stopTimeoutMs: 15_000,
    pollMs: 20,                                     // The resolution of the start-to-ready time

    exited(child: ChildProcess): Promise<number | null> {

        return child.exitCode !== null || child.signalCode !== null ?
            Promise.resolve(child.exitCode) :
            new Promise((resolve) => child.once('close', (code) => resolve(code)));      // close, not exit: stdout is complete
    },

    tail(file: string): string {

        return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
    },

    clockTicks: 0,                                  // /proc's CPU time unit, read once

    // utime + stime from a /proc/<pid>/stat line, in seconds.
    statCpuSeconds(stat: string): number {

        internals.clockTicks ||= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(fields[11]) + Number(fields[12])) / internals.clockTicks;
    }
};


export interface Pinning {
    readonly server: string;
    readonly load: string;
}


// taskset exec()s the command, so the child's pid is the pinned process itself.
export const pinning = function (enabled: boolean): Pinning | null {

    if (!enabled || spawnSync('taskset', ['-c', '0', 'true']).status !== 0) {
        return null;
    }

    return { server: '0', load: '1' };
};


export const command = function (cpus: string | undefined, argv: string[]): [string, string[]] {

    const full = cpus === undefined ? argv : ['taskset', '-c', cpus, ...argv];
    return [full[0]!, full.slice(1)];
};


export { freePort } from '../src/embedded-db.ts';


// CPU time of a process in seconds, from /proc (Linux only): a reader, or null where there is none.
// When other work on the machine steals cycles, req/s drops with it but CPU per request moves far
// less: the steadier comparison.
export const cpuSeconds = function (pid: number | undefined): (() => number) | null {

    if (pid === undefined) {
        return null;
    }

    try {
        const read = () => internals.statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
        read();
        return read;
    }
    catch {
        return null;
    }
};


// CPU time, in seconds, of every process whose command is `name` (all of PostgreSQL's, say) that is
// running now: what those that exited since the last call used is not counted. Asynchronous: it reads
// every process's stat, and its caller may be a load generator whose event loop times requests.
export const commandCpuSeconds = async function (name: string): Promise<number> {

    const seconds = await Promise.all((await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(async (entry) => {

        const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');           // '' once exited
        return stat && stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === name ? internals.statCpuSeconds(stat) : 0;
    }));

    return seconds.reduce((sum, value) => sum + value, 0);
};


export interface Server {
    readonly pid: number;
    readonly readyMs: number;                       // From spawn to the first successful readiness answer
    stop(): Promise<void>;
}


// Output goes to a file, as a container runtime would take it: the service's synchronous log
// writes cost what they cost in production, and no pipe back to this process competes for CPU.

export const startServer = async function (options: { argv: string[]; cpus: string | undefined; cwd: string; env: NodeJS.ProcessEnv; logFile: string; readyUrl: string; memoryLimit?: MemoryLimit.Limit | null }): Promise<Server> {

    const fd = openSync(options.logFile, 'w');
    const [file, args] = command(options.cpus, options.argv);
    const spawnedAt = performance.now();
    const child = spawn(...(options.memoryLimit ? options.memoryLimit.wrap(file, args) : [file, args] as const), { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
    closeSync(fd);

    const stop = async () => {

        if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), internals.stopTimeoutMs);
            await internals.exited(child);
            clearTimeout(timer);
        }

        await options.memoryLimit?.remove();
    };

    const deadline = Date.now() + internals.readyTimeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`${options.argv.join(' ')} exited before it was ready:\n${internals.tail(options.logFile)}`);
        }

        const ready = await fetch(options.readyUrl, { signal: AbortSignal.timeout(1000) }).then((res) => res.ok, () => false);
        if (ready) {
            return { pid: child.pid!, readyMs: performance.now() - spawnedAt, stop };
        }

        await sleep(internals.pollMs);
    }

    await stop();
    throw new Error(`${options.argv.join(' ')} not ready within ${internals.readyTimeoutMs} ms:\n${internals.tail(options.logFile)}`);
};


// Runs a node script to completion with `input` on its stdin and returns its stdout.
export const run = async function (options: { argv: string[]; cpus: string | undefined; cwd: string; input: string }): Promise<string> {

    const [file, args] = command(options.cpus, options.argv);
    const child = spawn(file, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdin!.end(options.input);

    const code = await internals.exited(child);
    if (code !== 0) {
        throw new Error(`${options.argv.join(' ')} exited with ${code}`);
    }

    return Buffer.concat(chunks).toString();
};
