import { mkdir } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as Database from './database.ts';
import * as Processes from './processes.ts';


// What a process just become ready serves, with and without its warm-up (src/warmup.ts): the service
// started as the chart starts it, pinned to one core, then an open loop of GETs by id from the moment
// readiness first answers 200. Prints, per variant and run, the latency by 500 ms and the service's CPU
// per request over the first seconds. `node bench/cold-start.ts [--rate 300] [--seconds 4] [--runs 3]`.


const internals = {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    out: fileURLToPath(new URL('../.out/bench/', import.meta.url)),
    binMs: 500,

    get(agent: Agent, port: number, path: string): Promise<number> {

        const startedAt = performance.now();
        return new Promise((resolve, reject) => {

            const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {

                res.resume();
                res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - startedAt) : reject(new Error(`status ${res.statusCode}`))));
            });
            req.on('error', reject);
            req.end();
        });
    },

    percentile(sorted: number[], p: number): number {

        return sorted.length ? Math.round(sorted[Math.ceil(p * sorted.length) - 1]! * 10) / 10 : 0;
    }
};


const main = async function (): Promise<void> {

    const { values: args } = parseArgs({ options: { rate: { type: 'string', default: '300' }, seconds: { type: 'string', default: '4' }, runs: { type: 'string', default: '3' } } });
    const rate = Number(args.rate);
    const seconds = Number(args.seconds);
    const pinning = Processes.pinning(true);
    await mkdir(internals.out, { recursive: true });
    const database = await Database.prepare({ items: 1000 });
    try {
        for (let run = 1; run <= Number(args.runs); ++run) {
            for (const warmup of [0, 2000]) {
                const port = await Processes.freePort();
                const server = await Processes.startServer({
                    argv: [process.execPath, '--import', './src/instrument.ts', 'src/main.ts'],
                    cpus: pinning?.server,
                    cwd: internals.cwd,
                    logFile: join(internals.out, 'cold-start.log'),
                    readyUrl: `http://127.0.0.1:${port}/health/ready`,
                    env: {
                        PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port),
                        OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'warn', WARMUP_REQUESTS: String(warmup)
                    }
                });

                try {
                    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
                    const cpuSeconds = Processes.cpuSeconds(server.pid)!;
                    const cpuAtReady = cpuSeconds();
                    const startedAt = performance.now();
                    const sent: Promise<{ at: number; ms: number | null }>[] = [];
                    for (let i = 0; i < rate * seconds; ++i) {
                        const due = startedAt + i * 1000 / rate;
                        const wait = due - performance.now();
                        if (wait > 1) {
                            await new Promise((resolve) => setTimeout(resolve, wait));
                        }

                        const at = performance.now() - startedAt;
                        sent.push(internals.get(agent, port, `/items/${database.ids[i % database.ids.length]}`).then((ms) => ({ at, ms }), () => ({ at, ms: null })));
                    }

                    const samples = await Promise.all(sent);
                    const cpuMs = (cpuSeconds() - cpuAtReady) * 1000;
                    agent.destroy();
                    const bins = [];
                    for (let from = 0; from < seconds * 1000; from += internals.binMs) {
                        const latencies = samples.filter((sample) => sample.at >= from && sample.at < from + internals.binMs && sample.ms !== null).map((sample) => sample.ms!).sort((a, b) => a - b);
                        bins.push(`${internals.percentile(latencies, 0.5)}/${internals.percentile(latencies, 0.99)}`);
                    }

                    const failed = samples.filter((sample) => sample.ms === null).length;
                    console.log(`warm-up ${warmup}, run ${run}: ready after ${Math.round(server.readyMs)} ms; ${rate} req/s for ${seconds} s, ${failed} failed, CPU ${(cpuMs / samples.length).toFixed(2)} ms per request; p50/p99 ms per ${internals.binMs} ms: ${bins.join(' ')}`);
                }
                finally {
                    await server.stop();
                }
            }
        }
    }
    finally {
        await database.stop();
    }
};


await main();
