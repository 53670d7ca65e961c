import { readFileSync } from 'node:fs';

import autocannon from 'autocannon';
import type { RawRequest, Result } from 'autocannon';

import * as Processes from './processes.ts';


// The load generator, run as its own process (pinned to its own CPU when pinning is on) so it
// never shares an event loop, or a core, with the server it measures. Reads its job as JSON on
// stdin, writes the summary as JSON on stdout.


// What each request does: read one row by id, read the first page of 20, or create a row with an
// Idempotency-Key of its own (a transaction that claims the key, inserts and stores the response).
export type Scenario = 'get' | 'list' | 'create';


export interface Job {
    readonly url: string;
    readonly scenario: Scenario;
    readonly ids: string[];
    readonly connections: number;
    readonly warmupSeconds: number;
    readonly durationSeconds: number;
    readonly serverPid?: number;
}


export interface Summary {
    readonly requestsPerSecond: number;
    readonly requests: number;
    readonly warmupRequests: number;
    readonly warmupErrors: number;
    readonly latencyMs: { readonly p50: number; readonly p99: number; readonly mean: number };
    readonly errors: number;
    readonly timeouts: number;
    readonly non2xx: number;
    readonly errorKinds: Record<string, number>;
    readonly durationSeconds: number;
    readonly server: { readonly cpuPercent: number; readonly cpuMicrosPerRequest: number; readonly rssMB: number | null } | null;
}


const internals = {

    // Resident memory at the end of the measured load, what a container's memory limit is held against.
    rssMB(pid: number | undefined): number | null {

        try {
            const kB = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
            return kB ? Number(kB) / 1024 : null;
        }
        catch {
            return null;
        }
    },

    // Every create carries a key of its own, so each one is a first request, never a replay.
    request(job: Job, paths: string[]): RawRequest & { setupRequest: (request: RawRequest) => RawRequest } {

        let next = 0;
        if (job.scenario === 'list') {
            return { method: 'GET', setupRequest: (request) => ({ ...request, path: '/items?limit=20' }) };
        }

        if (job.scenario === 'create') {
            const run = `${process.pid}-${Date.now().toString(36)}`;
            return {
                method: 'POST',
                setupRequest: (request) => ({
                    ...request,
                    path: '/items',
                    headers: { 'content-type': 'application/json', 'idempotency-key': `bench-${run}-${next++}` },
                    body: JSON.stringify({ name: `bench create ${next}`, quantity: next % 100 })
                })
            };
        }

        return {
            method: 'GET',
            setupRequest: (request) => {

                request.path = paths[next++ % paths.length]!;
                return request;
            }
        };
    },

    shuffle<T>(values: T[]): T[] {

        const result = [...values];
        for (let i = result.length - 1; i > 0; --i) {
            const j = Math.floor(Math.random() * (i + 1));
            [result[i], result[j]] = [result[j]!, result[i]!];
        }

        return result;
    },

    // A shuffled cycle rather than a random pick per request: every seeded row is read equally
    // often, and the generator spends nothing on randomness while it runs.
    async attack(job: Job, durationSeconds: number): Promise<Result & { errorKinds: Record<string, number> }> {

        const paths = internals.shuffle(job.ids).map((id) => `/items/${id}`);
        const errorKinds: Record<string, number> = {};

        const instance = autocannon({
            url: job.url,
            connections: job.connections,
            pipelining: 1,
            duration: durationSeconds,
            requests: [internals.request(job, paths)]
        });

        // A count alone does not say whether the server refused, reset or stalled.
        instance.on('reqError', (err) => {

            const kind = err.code ?? err.message;
            errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        });

        return { ...await instance, errorKinds };
    },

    async stdin(): Promise<string> {

        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) {
            chunks.push(chunk as Buffer);
        }

        return Buffer.concat(chunks).toString();
    }
};


export const measure = async function (job: Job): Promise<Summary> {

    const cpu = Processes.cpuSeconds(job.serverPid);
    const warmup = job.warmupSeconds > 0 ? await internals.attack(job, job.warmupSeconds) : null;
    const cpuBefore = cpu?.();
    const result = await internals.attack(job, job.durationSeconds);
    const cpuUsed = cpu && cpuBefore !== undefined ? cpu() - cpuBefore : null;
    const requests = result['2xx'] + result.non2xx;

    return {
        requestsPerSecond: result.requests.average,
        requests,
        warmupRequests: warmup ? warmup['2xx'] + warmup.non2xx : 0,
        warmupErrors: warmup ? warmup.errors + warmup.non2xx : 0,
        latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average },
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        errorKinds: result.errorKinds,
        durationSeconds: result.duration,
        server: cpuUsed === null ? null : { cpuPercent: 100 * cpuUsed / result.duration, cpuMicrosPerRequest: requests ? 1e6 * cpuUsed / requests : 0, rssMB: internals.rssMB(job.serverPid) }
    };
};


if (import.meta.main) {
    const job = JSON.parse(await internals.stdin()) as Job;
    process.stdout.write(JSON.stringify(await measure(job)));
}
