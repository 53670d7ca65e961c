// `npm run faults -- --out DIR [--short] [--keep-cluster] [--image ARCHIVE] [--rate N] [--scenarios A,B]`
//
// What the service survives, measured on the local cluster of the real Kubernetes components
// (k8s/local/cluster.sh): pods SIGKILLed and force-deleted, PostgreSQL restarted (fast, immediate),
// frozen, or behind a slow and then silent network, twice the measured capacity, 2,000 abusive
// connections, and (full runs) a soak, 10 minutes with rollouts and 8 without. Each under open-loop
// load from good clients, read back from the database for lost and duplicated writes, with negative
// controls that must fail. Writes DIR/summary.json, DIR/<scenario>.svg and each request in
// DIR/<scenario>/samples.ndjson; exits non-zero when a scenario does not pass or a control does not fail.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { loadTools } from '../k8s/tools.ts';
import * as Steps from '../e2e/steps.ts';
import * as Svg from '../rollout/svg.ts';
import * as Cluster from '../support/cluster.ts';
import * as Host from './host.ts';
import * as Run from './run.ts';
import * as Scenarios from './scenarios.ts';


const internals = {
    usage: `usage: npm run faults -- [options]
  --out DIR          output directory (default .out/faults)
  --short            shorter phases, no soak, two controls; what CI runs
  --keep-cluster     leave the cluster up afterwards (and reuse one that is up)
  --image FILE       image archive to import (default: the one .ci/image-build.sh writes)
  --rate N           requests per second outside the overload and the soak (default 100)
  --scenarios A,B    run only these scenarios (and their controls)`,

    // The chart's values, with the local image, short probe periods (as the rollout proof), and
    // HTTP timeouts that let connection abuse be judged in seconds rather than a minute. The database
    // timeouts are the app's own defaults (acquire 2 s, statement 5 s), stated in the summary; the
    // response deadline sits under the clients' 5 s timeout, as a deployment sets it under its clients'.
    values: {
        ...Steps.baseValues,
        existingSecret: 'item-api-db',
        app: { logLevel: 'warn', httpKeepAliveTimeoutMs: 5000, httpHeadersTimeoutMs: 6000, httpResponseTimeoutMs: 4000 },
        database: { poolAcquireTimeoutMs: 2000, statementTimeoutMs: 5000 }
    } as Record<string, unknown>,

    entry(result: Run.Result, verdict: { pass: boolean; checks: { check: string; pass: boolean }[] }) {

        const m = result.measures;
        const notes = result.notes as { p99AcceptedMs?: number; trend?: { rssSlopeMbPerMin: number | null } };
        return {
            description: result.description,
            requests: m.requests,
            failed: m.failed,
            failedByKind: m.failedByKind,
            retried: m.retried,
            attempts: m.attempts,
            lostWrites: result.summary.lostWrites,
            duplicateWrites: result.summary.duplicateWrites,
            errorWindowS: m.errorWindowS,
            recoverS: m.recoverS,
            latencyMs: {
                p50: { before: m.latencyMs.before.p50, during: m.latencyMs.during.p50, after: m.latencyMs.after.p50 },
                p99: { before: m.latencyMs.before.p99, during: m.latencyMs.during.p99, after: m.latencyMs.after.p99 }
            },
            ...(notes.p99AcceptedMs !== undefined ? { p99AcceptedMs: notes.p99AcceptedMs } : {}),
            ...(notes.trend ? { rssSlopeMbPerMin: notes.trend.rssSlopeMbPerMin } : {}),
            clientsAndMachine: result.summary.machine,
            containerRestarts: result.restarts,
            faultWindows: result.windows,
            notes: result.notes,
            failureDetails: result.summary.failureDetails,
            pass: verdict.pass,
            checks: verdict.checks
        };
    }
};


const main = async function (): Promise<number> {

    const { values: args } = parseArgs({
        options: {
            'out': { type: 'string', default: '.out/faults' },
            'short': { type: 'boolean', default: false },
            'keep-cluster': { type: 'boolean', default: false },
            'image': { type: 'string' },
            'rate': { type: 'string' },
            'scenarios': { type: 'string' },
            'help': { type: 'boolean', default: false }
        }
    });

    if (args.help) {
        console.log(internals.usage);
        return 0;
    }

    const out = resolve(args.out);
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const image = Cluster.imageArchive(args.image);
    const tools = loadTools();
    const wallStart = performance.now();
    const only = args.scenarios?.split(',');
    const short = args.short;

    const session = await Cluster.acquire(args['keep-cluster']);
    const { cluster, upS: clusterUpS } = session;
    const postgres = Host.postgres(cluster);
    const scenarios: Record<string, unknown> = {};
    const controls: Record<string, unknown> = {};
    let capacity: Awaited<ReturnType<typeof Run.capacity>> | null = null;
    let error: string | null = null;
    try {
        await Cluster.must(`importing ${image} (build it with .ci/image-build.sh)`, Cluster.load(image));
        const chart = join(Cluster.root, 'charts', 'item-api');
        // A cluster kept from an earlier run (--keep-cluster) has the namespace and the release already.
        if (!await Cluster.get(cluster, `/api/v1/namespaces/${Steps.helm4.namespace}`)) {
            await Steps.prepareNamespace({ cluster } as Steps.Context, Steps.helm4.namespace);
        }
        const service0 = { host: '', port: 0 };
        const context: Run.Context = {
            cluster, helm: tools.helm4, namespace: Steps.helm4.namespace, release: Steps.helm4.release, chart,
            values: internals.values, out, short, rate: Number(args.rate ?? 100), postgres, service: service0, capacity: null
        };
        await Run.values(context, Run.sheddingOff);
        const service = await Cluster.get<{ spec: { clusterIP: string; ports: { port: number }[] } }>(cluster, `/api/v1/namespaces/${context.namespace}/services/${context.release}`);
        Object.assign(service0, { host: service!.spec.clusterIP, port: service!.spec.ports[0]!.port });

        capacity = await Run.capacity(service0, short ? 6 : 10);
        context.capacity = capacity.perSecond;
        console.log(`capacity: ${capacity.perSecond} req/s closed loop (32 in flight), p99 ${capacity.p99Ms} ms, ${capacity.failed} failed`);

        const verdicts = new Map<string, Run.Result>();
        for (const scenario of Scenarios.scenarios({ short }).filter((s) => !only || only.includes(s.key))) {
            console.log(`== ${scenario.key}: ${scenario.description}`);
            try {
                const result = await Run.run(context, scenario);
                const checks = scenario.judge(result);
                const verdict = { pass: checks.every((check) => check.pass), checks };
                verdicts.set(scenario.key, result);
                scenarios[scenario.key] = internals.entry(result, verdict);
                await Run.write(out, result, verdict);
                await writeFile(join(out, `${scenario.key}.svg`), Svg.render([result.series], `item-api faults on a real cluster: ${scenario.key}`));
                console.log(`${verdict.pass ? 'ok  ' : 'FAIL'} ${scenario.key}: ${checks.filter((check) => !check.pass).map((check) => check.check).join('; ')}`);
            }
            catch (err) {
                scenarios[scenario.key] = { description: scenario.description, pass: false, error: (err as Error).stack ?? String(err) };
                console.log(`FAIL ${scenario.key}: ${(err as Error).message}`);
            }
        }

        for (const control of Scenarios.controls({ short }).filter((c) => !only || only.includes(c.of))) {
            console.log(`== control ${control.key}: ${control.scenario.description}`);
            try {
                const result = await Run.run(context, control.scenario);
                // A control proves something only next to a scenario that passed.
                const conclusive = (scenarios[control.of] as { pass?: boolean } | undefined)?.pass === true;
                const failedAsItMust = control.failedAsItMust(result) && conclusive;
                const checks = control.scenario.judge(result);
                controls[control.key] = { of: control.of, description: control.scenario.description, failedAsItMust, scenarioPassed: conclusive, measured: internals.entry(result, { pass: checks.every((check) => check.pass), checks }) };
                await writeFile(join(out, `${control.scenario.key}.svg`), Svg.render([result.series], `item-api faults, negative control: ${control.key}`));
                console.log(`${failedAsItMust ? 'ok  ' : 'FAIL'} control ${control.key} ${failedAsItMust ? 'failed as it must' : conclusive ? 'did NOT fail' : `inconclusive: ${control.of} did not pass either`}`);
            }
            catch (err) {
                controls[control.key] = { of: control.of, failedAsItMust: false, error: (err as Error).stack ?? String(err) };
                console.log(`FAIL control ${control.key}: ${(err as Error).message}`);
            }
        }

        // The run's own values again, for whoever keeps the cluster.
        if (args['keep-cluster']) {
            await Run.values(context);
        }
    }
    catch (err) {
        error = (err as Error).stack ?? String(err);
        console.log(`FAIL ${(err as Error).message}`);
    }
    finally {
        await postgres.stop();
        const down = await session.release();
        if (down) {
            console.log(`${down.code === 0 ? 'ok  ' : 'FAIL'} cluster-down (${down.seconds} s)${down.code === 0 ? '' : `\n${down.stderr}`}`);
            if (down.code !== 0) {
                error ??= `cluster down failed: ${down.stderr.slice(-2000)}`;
            }
        }
    }

    const pass = !error && Object.keys(scenarios).length > 0 &&
        Object.values(scenarios).every((s) => (s as { pass: boolean }).pass) &&
        Object.values(controls).every((c) => (c as { failedAsItMust: boolean }).failedAsItMust);
    const summary = {
        pass,
        short,
        wallTimeS: Math.round((performance.now() - wallStart) / 100) / 10,
        clusterUpS,
        where: 'k8s/local/cluster.sh: one node of the real Kubernetes components on this machine, PostgreSQL 15 on the node; load generated on the node through the Service (kube-proxy)',
        settings: { chartValues: internals.values, clientTimeoutMs: 5000, retries: 'writes: up to 8 attempts, full-jitter backoff 100 ms doubling to 2 s, never sooner than Retry-After, within 30 s; reads: one retry' },
        capacity,
        rate: Number(args.rate ?? 100),
        scenarios,
        controls,
        ...(error ? { error } : {})
    };
    await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`wrote ${join(out, 'summary.json')}: ${pass ? 'pass' : 'FAIL'} in ${summary.wallTimeS} s`);
    return pass ? 0 : 1;
};


process.exit(await main());
