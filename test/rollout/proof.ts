import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Cluster from '../support/cluster.ts';
import * as Database from './database.ts';
import * as Ingress from './ingress.ts';
import * as Load from './load.ts';
import * as Pods from './pods.ts';
import * as Report from './report.ts';
import * as Svg from './svg.ts';


// The rolling-deploy proof on the real cluster: the chart installed with helm, `kubectl rollout
// restart` + `kubectl rollout status` under open-loop load that reaches the pods through the real
// Service (kube-proxy's iptables rules) and through HAProxy kept in step with the EndpointSlices,
// then the database read for lost or duplicated acknowledged writes, and the pods' own statuses
// read for SIGKILLs. The same run with one thing broken must fail (the negative controls).

export interface Scenario {
    readonly key: 'good' | 'noDelay' | 'naiveShutdown';
    readonly description: string;
    readonly values: Record<string, unknown>;          // Chart values on top of the run's own
    readonly rollouts: number;
}


export interface Options {
    readonly cluster: Cluster.Cluster;
    readonly helm: string;
    readonly namespace: string;
    readonly release: string;
    readonly chart: string;
    readonly values: Record<string, unknown>;           // Chart values of every scenario
    readonly out: string;
    readonly rate: number;
    readonly short: boolean;
}


export interface Result {
    readonly summary: Report.Summary;
    readonly series: Report.Series;
}


const internals = {
    ingressListen: { host: '127.0.0.1', port: 18080 },
    timeoutMs: 5000,
    mix: { get: 45, list: 10, post: 25, patch: 20 } as Record<Load.Op, number>,

    // A preload given through NODE_OPTIONS (so nothing in the image changes) that exits as soon as
    // SIGTERM arrives, as a server with no shutdown handling does. Percent-encoded: NODE_OPTIONS
    // strips double quotes.
    naivePreload: `data:text/javascript,${encodeURIComponent('process.prependListener("SIGTERM", () => process.exit(0));')}`,

    // Whole-machine CPU from /proc/stat, to tell a saturated machine from a misbehaving service.
    async machineCpu(): Promise<{ busy: number; total: number }> {

        const line = (await readFile('/proc/stat', 'utf8').catch(() => 'cpu 0 0 0 0')).split('\n')[0]!;
        const fields = line.trim().split(/\s+/).slice(1).map(Number);
        const total = fields.reduce((sum, value) => sum + value, 0);
        return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
    },

    merge(...sets: Record<string, unknown>[]): Record<string, unknown> {

        const out: Record<string, unknown> = {};
        for (const set of sets) {
            for (const [key, value] of Object.entries(set)) {
                const existing = out[key];
                out[key] = existing && value && typeof existing === 'object' && typeof value === 'object' && !Array.isArray(value) ?
                    internals.merge(existing as Record<string, unknown>, value as Record<string, unknown>) : value;
            }
        }

        return out;
    },

};


export const merge = internals.merge;


export interface ClientMeter {
    /** Starts measuring; resolves the time it started (performance.now()). */
    start(): Promise<number>;
    stop(): Promise<void>;
    /** Over start() to stop(): the clients' event-loop delay and CPU, the machine's busy share and load average. */
    report(stoppedAt: number): Report.ScenarioRecord['machine'];
    /** When the clients' event loop was held 20 ms or more (performance.now()), and for how long: a request in flight then waited in the client. */
    stalls(): readonly { at: number; ms: number }[];
}


/** How busy this process (the clients) and the whole machine were: on two shared cores a slow client is part of what is measured. */
export const clientMeter = function (): ClientMeter {

    const delay = monitorEventLoopDelay({ resolution: 10 });
    const stalls: { at: number; ms: number }[] = [];
    const loadAverage = { start: 0, end: 0 };
    let ticker: NodeJS.Timeout | undefined;
    let startedAt = 0;
    let cpu = process.cpuUsage();
    let machine = { busy: 0, total: 0 };
    return {
        async start() {

            startedAt = performance.now();
            delay.enable();
            let tick = startedAt;
            ticker = setInterval(() => {

                const now = performance.now();
                if (now - tick >= 30) {
                    stalls.push({ at: tick, ms: Math.round(now - tick - 10) });
                }

                tick = now;
            }, 10);
            cpu = process.cpuUsage();
            machine = await internals.machineCpu();
            loadAverage.start = loadavg()[0]!;
            return startedAt;
        },

        async stop() {

            cpu = process.cpuUsage(cpu);
            const after = await internals.machineCpu();
            machine = { busy: after.busy - machine.busy, total: after.total - machine.total };
            loadAverage.end = loadavg()[0]!;
            delay.disable();
            clearInterval(ticker);
        },

        stalls: () => stalls,

        report: (stoppedAt) => ({
            eventLoopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
            cpuPercent: Math.round((cpu.user + cpu.system) / 10 / (stoppedAt - startedAt)),
            machineBusyPercent: Math.round(machine.busy / Math.max(machine.total, 1) * 100),
            loadAverage
        })
    };
};


export const scenarios = function (rollouts: { good: number; controls: number }): Scenario[] {

    return [
        { key: 'good', description: 'the chart\'s shutdown settings', values: {}, rollouts: rollouts.good },
        { key: 'noDelay', description: 'negative control: shutdown.delayMs=0', values: { shutdown: { delayMs: 0 } }, rollouts: rollouts.controls },
        { key: 'naiveShutdown', description: 'negative control: exit at once on SIGTERM (a preload through NODE_OPTIONS)', values: { env: [{ name: 'NODE_OPTIONS', value: `--import=${internals.naivePreload}` }] }, rollouts: rollouts.controls }
    ];
};


/** Installs or upgrades the release with the scenario's values, and waits for the rollout. */
export const apply = async function (options: Options, values: Record<string, unknown>): Promise<void> {

    const file = join(options.out, `values-${Date.now()}.json`);
    await mkdir(options.out, { recursive: true });
    await writeFile(file, JSON.stringify(values));
    await Cluster.must('helm upgrade --install', Cluster.helm(options.cluster, options.helm, [
        'upgrade', '--install', options.release, options.chart, '--namespace', options.namespace,
        '--values', file, '--wait', '--timeout', '5m'
    ]));
    await Cluster.must('kubectl rollout status', Cluster.rolloutStatus(options.cluster, options.namespace, options.release, '5m'));
};


export const run = async function (options: Options, scenario: Scenario): Promise<Result> {

    const { cluster, namespace, release } = options;
    const dir = join(options.out, scenario.key);
    await apply(options, internals.merge(options.values, scenario.values));

    const service = await Cluster.get<{ spec: { clusterIP: string; ports: { port: number }[] } }>(cluster, `/api/v1/namespaces/${namespace}/services/${release}`);
    if (!service) {
        throw new Error(`no Service ${release} in ${namespace}`);
    }

    const tracker = Pods.track(cluster, namespace, `app.kubernetes.io/instance=${release}`);
    const ingress = await Ingress.start({ cluster, namespace, service: release, listen: internals.ingressListen, dir: join(dir, 'ingress'), syncPeriodMs: 1000 });
    const warmupMs = options.short ? 2000 : 3000;
    const baselineMs = options.short ? 2000 : 5000;
    const tailMs = options.short ? 2000 : 5000;
    const meter = clientMeter();
    let warmedAt: number;
    const rollouts: Report.RolloutRecord[] = [];
    let load: Load.LoadResult;
    try {
        const generator = Load.start({
            rate: options.rate,
            timeoutMs: internals.timeoutMs,
            maxDurationMs: (scenario.rollouts + 2) * 300_000,
            service: { host: service.spec.clusterIP, port: service.spec.ports[0]!.port },
            ingress: ingress.address,
            clients: 4,
            maxSocketsPerClient: 32,
            mix: internals.mix,
            runId: `${scenario.key}-${Date.now().toString(36)}`
        });

        await sleep(warmupMs);
        warmedAt = await meter.start();
        await sleep(baselineMs);
        for (let i = 0; i < scenario.rollouts; ++i) {
            const before = new Set(tracker.pods.filter((pod) => pod.events.at(-1)?.phase !== 'gone').map((pod) => pod.name));
            const startedAt = performance.now();
            await Cluster.must('kubectl rollout restart', Cluster.kubectl(cluster, ['rollout', 'restart', `deployment/${release}`, '-n', namespace]));
            await Cluster.must('kubectl rollout status', Cluster.rolloutStatus(cluster, namespace, release, '5m'));
            const completedAt = performance.now();
            // Settled when every pod that served before the restart is gone from the API server.
            while (tracker.pods.some((pod) => before.has(pod.name) && pod.events.at(-1)?.phase !== 'gone')) {
                if (performance.now() - completedAt > 120_000) {
                    throw new Error('replaced pods still present 120 s after the rollout completed');
                }

                await sleep(100);
            }

            const settledAt = performance.now();
            const revision = Math.max(...tracker.pods.map((pod) => pod.revision));
            rollouts.push({ revision, startedAt, completedAt, settledAt });
            console.log(`[${scenario.key}] rollout ${i + 1}/${scenario.rollouts}: status complete in ${((completedAt - startedAt) / 1000).toFixed(1)} s, replaced pods gone after ${((settledAt - startedAt) / 1000).toFixed(1)} s`);
        }

        await sleep(tailMs);
        load = await generator.stop();
        await meter.stop();
    }
    finally {
        await ingress.close();
        tracker.close();
    }

    const writes = await Database.check(cluster.postgresUrl, load.acknowledged, load.keyPrefix);
    const record: Report.ScenarioRecord = {
        name: scenario.key,
        description: scenario.description,
        load,
        warmedAt,
        rollouts,
        pods: tracker.pods,
        writes,
        proxies: { ingress: { kind: 'HAProxy runtime API, ready endpoints only, no retries', ...ingress.stats } },
        machine: meter.report(load.stoppedAt)
    };

    const summary = Report.summarize(record);
    console.log(`[${scenario.key}] ${summary.requests} requests, ${summary.failed} failed ${JSON.stringify(summary.failures)}, in flight lost ${summary.inFlightLost}, lost writes ${summary.lostWrites}, duplicates ${summary.duplicateWrites}, SIGKILLs ${summary.sigkills}`);
    return { summary, series: Report.series(record, summary) };
};


export interface Verdict {
    readonly pass: boolean;
    readonly checks: { check: string; pass: boolean }[];
}


export const judge = function (results: readonly Result[]): Verdict {

    const by = Object.fromEntries(results.map((result) => [result.summary.scenario, result.summary]));
    const checks: { check: string; pass: boolean }[] = [];
    if (by.good) {
        checks.push({ check: 'good: no failed request', pass: by.good.failed === 0 });
        checks.push({ check: 'good: no lost acknowledged write', pass: by.good.lostWrites === 0 });
        checks.push({ check: 'good: no duplicate create', pass: by.good.duplicateWrites === 0 });
        checks.push({ check: 'good: no SIGKILL', pass: by.good.sigkills === 0 });
    }

    if (by.noDelay) {
        checks.push({ check: 'noDelay: requests fail', pass: by.noDelay.failed > 0 });
    }

    if (by.naiveShutdown) {
        checks.push({ check: 'naiveShutdown: requests fail', pass: by.naiveShutdown.failed > 0 });
    }

    return { pass: checks.every((check) => check.pass), checks };
};


export const picture = async function (out: string, results: readonly Result[], rate: number): Promise<void> {

    const title = `item-api rolling deploys on a real cluster: ${rate} req/s open loop through kube-proxy and HAProxy`;
    await writeFile(join(out, 'rollout.svg'), Svg.render(results.map((result) => result.series), title));
};
