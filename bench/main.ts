import { mkdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';

import * as Database from './database.ts';
import * as MemoryLimit from './memory-limit.ts';
import type { Summary } from './load.ts';
import * as OtlpSink from './otlp-sink.ts';
import * as Processes from './processes.ts';
import * as Report from './report.ts';
import * as Variants from './variants.ts';
import type { Variant } from './variants.ts';


// GET /items/{id} throughput of the real service, next to a bare node:http + pg handler measured in
// the same run, on the same rows of the same PostgreSQL. Prints numbers; asserts only that every
// variant served requests without errors (exit 1 otherwise), which is what CI checks with --quick.
//
// On a 2-core machine the load generator, the server and PostgreSQL compete for CPU: absolute
// req/s understate what the server would do alone, and only ratios within one run are comparable.
// With taskset available every server runs on CPU 0 and the load generator on CPU 1, the same for
// every variant; PostgreSQL is left unpinned and takes what is free on either.

interface Options {
    readonly quick: boolean;
    readonly pin: boolean;
    readonly connections: number;
    readonly warmupSeconds: number;
    readonly durationSeconds: number;
    readonly items: number;
    readonly only: string[] | null;
    readonly rounds: number;
    readonly nodeOptions: string | undefined;
    readonly memoryLimit: string;
}


const internals = {
    root: new URL('..', import.meta.url),
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    out: fileURLToPath(new URL('../.out/bench/', import.meta.url)),

    options(): Options {

        const { values } = parseArgs({
            options: {
                quick: { type: 'boolean', default: false },
                'no-pin': { type: 'boolean', default: false },
                connections: { type: 'string', default: '50' },
                warmup: { type: 'string' },
                duration: { type: 'string' },
                items: { type: 'string', default: '1000' },
                only: { type: 'string' },
                rounds: { type: 'string', default: '1' },
                // NODE_OPTIONS for the servers only: heap limits to try, or --cpu-prof to see where time goes
                'node-options': { type: 'string' },
                // The servers' memory cgroup: the chart's resources.limits.memory, none, or a quantity (512Mi)
                'memory-limit': { type: 'string', default: 'chart' }
            }
        });

        return {
            quick: values.quick,
            pin: !values['no-pin'],
            connections: Number(values.connections),
            warmupSeconds: Number(values.warmup ?? (values.quick ? 0 : 3)),
            durationSeconds: Number(values.duration ?? (values.quick ? 1 : 10)),
            items: Number(values.items),
            only: values.only?.split(',') ?? null,
            rounds: Number(values.rounds),
            nodeOptions: values['node-options'],
            memoryLimit: values['memory-limit']
        };
    },

    // One request before the load: the variant must answer with the seeded row, the agreed fields
    // and a strong ETag of its version, or its throughput is not comparable to the others'.
    async check(url: string, id: string, reference: { body: unknown } | null, scenario: Variant['scenario']): Promise<unknown> {

        if (scenario !== 'get') {
            const res = scenario === 'list' ?
                await fetch(`${url}/items?limit=20`) :
                await fetch(`${url}/items`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `bench-check-${Date.now()}-${Math.random()}` }, body: JSON.stringify({ name: 'bench check' }) });
            const body = await res.json() as Record<string, unknown>;
            if (res.status !== (scenario === 'list' ? 200 : 201) || (scenario === 'list' && !Array.isArray(body.items))) {
                throw new Error(`unexpected response ${res.status}: ${JSON.stringify(body)}`);
            }

            return reference?.body;
        }

        const res = await fetch(`${url}/items/${id}`);
        const body = await res.json() as Record<string, unknown>;
        const fields = Object.keys(body).sort().join(',');
        if (res.status !== 200 || body.id !== id || fields !== 'createdAt,description,id,name,quantity,updatedAt,version' || res.headers.get('etag') !== `"${body.version}"`) {
            throw new Error(`unexpected response ${res.status} etag=${res.headers.get('etag')}: ${JSON.stringify(body)}`);
        }

        if (reference && !isDeepStrictEqual(body, reference.body)) {
            throw new Error(`response differs from the baseline's: ${JSON.stringify(body)}`);
        }

        return body;
    },

    /**
     * The servers' memory limit in bytes (null: none asked for, or no memory cgroup can be made here)
     * and, with the chart's limit, the chart's NODE_OPTIONS for the service (app.nodeOptions).
     */
    async memoryLimit(option: string): Promise<{ bytes: number | null; serviceNodeOptions: string; note: string }> {

        if (option === 'none') {
            return { bytes: null, serviceNodeOptions: '', note: 'memory: no limit (--memory-limit none); V8 sizes its heap from the machine\'s memory' };
        }

        const chart = option === 'chart' ? await MemoryLimit.chart(fileURLToPath(new URL('../charts/item-api', import.meta.url))) : null;
        const bytes = chart?.limitBytes ?? MemoryLimit.bytes(option);
        const probe = await MemoryLimit.create(bytes);
        await probe?.remove();
        const serviceNodeOptions = chart?.nodeOptions ?? '';
        return probe ?
            {
                bytes, serviceNodeOptions,
                note: `memory: each server starts in a memory cgroup limited to ${bytes / 2 ** 20} MiB${chart ? ` (the chart's resources.limits.memory), the service with the chart's NODE_OPTIONS "${serviceNodeOptions}"` : ''}, as the kubelet runs it`
            } :
            { bytes: null, serviceNodeOptions: '', note: 'memory: no limit (a memory cgroup needs root); V8 sizes its heap from the machine\'s memory' };
    },

    nodeOptions: (value: string) => (value ? { NODE_OPTIONS: value } : {}),

    async measure(variant: Variant, context: { databaseUrl: string; ids: string[]; options: Options; pinning: Processes.Pinning | null; reference: { body: unknown } | null; memoryLimitBytes: number | null; serviceNodeOptions: string }): Promise<Omit<Report.Outcome, 'otlpExports'> & { body: unknown }> {

        const { options, pinning } = context;
        const port = await Processes.freePort();
        const url = `http://127.0.0.1:${port}`;
        const logFile = join(internals.out, 'logs', `${variant.name}.log`);

        const server = await Processes.startServer({
            argv: variant.argv,
            cpus: pinning?.server,
            cwd: internals.cwd,
            logFile,
            readyUrl: `${url}${variant.readyPath}`,
            memoryLimit: context.memoryLimitBytes ? await MemoryLimit.create(context.memoryLimitBytes) : null,
            env: {
                PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: context.databaseUrl, HOST: '127.0.0.1', PORT: String(port),
                ...internals.nodeOptions(options.nodeOptions ?? (variant.chartNodeOptions ? context.serviceNodeOptions : '')), ...variant.env
            }
        });

        try {
            const body = await internals.check(url, context.ids[0]!, context.reference, variant.scenario);
            const logBefore = statSync(logFile).size;
            const output = await Processes.run({
                argv: [process.execPath, 'bench/load.ts'],
                cpus: pinning?.load,
                cwd: internals.cwd,
                input: JSON.stringify({ url, scenario: variant.scenario, ids: context.ids, connections: options.connections, warmupSeconds: options.warmupSeconds, durationSeconds: options.durationSeconds, serverPid: server.pid })
            });

            const summary = JSON.parse(output) as Summary;
            const logBytes = statSync(logFile).size - logBefore;
            const served = summary.requests + summary.warmupRequests;
            return { name: variant.name, description: variant.description, scenario: variant.scenario, readyMs: server.readyMs, summary, logBytesPerRequest: served ? logBytes / served : null, loadAverage: loadavg()[0]!, failure: null, body };
        }
        finally {
            await server.stop();
        }
    },

    async runAll(variants: Variant[], context: { database: Database.Database; options: Options; sink: OtlpSink.Sink }): Promise<Report.Outcome[]> {

        const { database, options, sink } = context;
        const pinning = Processes.pinning(options.pin);
        const baseline = variants.find((variant) => variant.baseline)?.name ?? 'bare';
        const memoryLimit = await internals.memoryLimit(options.memoryLimit);
        mkdirSync(join(internals.out, 'logs'), { recursive: true });

        const header = [
            `${variants.length} variants (GET /items/{id} unless the request column says otherwise), node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'})`,
            `database: ${database.source} PostgreSQL, ${database.ids.length} seeded rows, each request reads a random one`,
            `load: autocannon in its own process, ${options.connections} connections, pipelining 1, ${options.warmupSeconds} s warm-up + ${options.durationSeconds} s measured per variant${options.rounds > 1 ? `, ${options.rounds} rounds in turn, median round shown` : ''}`,
            memoryLimit.note,
            pinning ? `pinning: servers on CPU ${pinning.server}, load generator on CPU ${pinning.load}, PostgreSQL and the OTLP sink unpinned` : 'pinning: none (taskset unavailable or --no-pin)',
            'note: load generator, server and PostgreSQL share the CPUs, so absolute req/s understate the server alone; compare ratios within a run,',
            '      and CPU µs/req (server process CPU time per request), which moves least when something else also runs on the machine'
        ];

        console.log(`${header.join('\n')}\n`);

        // Rounds run every variant in turn, so a burst of other work on the machine hits all of them
        // alike; each variant then reports its median round.
        const rounds = new Map<string, Report.Outcome[]>(variants.map((variant) => [variant.name, []]));
        let reference: { body: unknown } | null = null;
        for (let round = 1; round <= options.rounds; ++round) {
            for (const variant of variants) {
                const startedAt = Date.now();
                const exportsBefore = sink.received().exports;
                const label = `${variant.name.padEnd(18)}${options.rounds > 1 ? ` round ${round}` : ''}`;
                try {
                    const { body, ...outcome } = await internals.measure(variant, { databaseUrl: database.url, ids: database.ids, options, pinning, reference, memoryLimitBytes: memoryLimit.bytes, serviceNodeOptions: memoryLimit.serviceNodeOptions });
                    reference ??= { body };
                    rounds.get(variant.name)!.push({ ...outcome, otlpExports: variant.exportsTraces ? sink.received().exports - exportsBefore : null });
                    console.log(`${label} ${Math.round(outcome.summary!.requestsPerSecond)} req/s  (${variant.description}; ${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
                }
                catch (err) {
                    rounds.get(variant.name)!.push({ name: variant.name, description: variant.description, scenario: variant.scenario, readyMs: null, summary: null, logBytesPerRequest: null, loadAverage: loadavg()[0]!, otlpExports: null, failure: (err as Error).message });
                    console.log(`${label} FAILED: ${(err as Error).message}`);
                }
            }
        }

        const outcomes = [...rounds.values()].map(Report.median);
        console.log(`\n${Report.table(outcomes, baseline)}`);
        const ratios = Report.ratios(rounds, baseline);
        if (options.rounds > 1) {
            console.log(`\n${Report.spread(ratios)}`);
        }

        const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, database: database.source, rows: database.ids.length, baseline, pinning, ...options };
        await Report.write(join(internals.out, 'results.json'), { meta, header, outcomes, ratios, rounds: Object.fromEntries(rounds) });
        await writeFile(join(internals.out, 'results.md'), `${Report.markdown(outcomes, ratios)}\n`);
        console.log(`\nresults: ${join(internals.out, 'results.json')} (README table: results.md), server output: ${join(internals.out, 'logs')}`);
        return outcomes;
    }
};


const main = async function (): Promise<number> {

    const options = internals.options();
    const sink = await OtlpSink.start();
    try {
        const known = Variants.all({ otlpEndpoint: sink.url });
        const unknown = options.only?.filter((name) => !known.some((variant) => variant.name === name)) ?? [];
        if (unknown.length || !(options.items > 0) || !(options.connections > 0) || !(options.durationSeconds > 0) || !(options.rounds >= 1)) {
            console.error(`usage: npm run bench -- [--quick] [--no-pin] [--connections 50] [--warmup 3] [--duration 10] [--rounds 1] [--items 1000] [--node-options '...'] [--memory-limit chart|none|256Mi] [--only ${known.map((variant) => variant.name).join(',')}]`);
            return 2;
        }

        const variants = known.filter((variant) => !options.only || options.only.includes(variant.name));
        const database = await Database.prepare({ items: options.items });
        try {
            const outcomes = await internals.runAll(variants, { database, options, sink });
            const failures = Report.failures(outcomes);
            for (const failure of failures) {
                console.error(`FAIL ${failure}`);
            }

            return failures.length ? 1 : 0;
        }
        finally {
            await database.stop();
        }
    }
    finally {
        await sink.stop();
    }
};


process.exitCode = await main();
