// `npm run e2e -- [--out DIR] [--short] [--keep-cluster] [--image ARCHIVE]`
//
// The service's users' verbs, for real: a local cluster of the real Kubernetes components
// (k8s/local/cluster.sh), the image built from the Dockerfile imported into its containerd, then
// helm install (Helm 4 and Helm 3), helm test, kubectl rollout restart + status under the rollout
// proof's load, helm upgrade, kubectl drain and helm uninstall, then skaffold dev (a source change
// served through a rebuild and through file sync), skaffold run and skaffold delete, each judged by
// what the API server and the service report. Writes DIR/summary.json; exits non-zero when a step fails, the rollout fails a request,
// or a negative control does not fail.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import * as Cluster from '../support/cluster.ts';
import * as Skaffold from './skaffold.ts';
import * as Steps from './steps.ts';
import { loadTools } from '../k8s/tools.ts';


const internals = {
    usage: `usage: npm run e2e -- [options]
  --out DIR          output directory (default .out/e2e)
  --short            one rollout per scenario at a lower rate; what CI runs
  --keep-cluster     leave the cluster up afterwards (and reuse one that is up)
  --image FILE       image archive to import (default: the one .ci/image-build.sh writes)
  --rate N           requests per second during the rollout (default 200, short 100)
  --steps A,B        run only these steps, in their usual order (npm run rollout: helm4-install,rollout-restart)`,

    steps: [
        ['helm4-install', Steps.helm4Install],
        ['helm3-install', Steps.helm3Install],
        ['helm-test', Steps.helmTest],
        ['pod-security', Steps.podSecurity],
        ['rollout-restart', Steps.rolloutRestart],
        ['helm-upgrade', Steps.helmUpgrade],
        ['drain', Steps.drain],
        ['uninstall', Steps.uninstall],
        ['skaffold-dev', Skaffold.dev],
        ['skaffold-run', Skaffold.runAndDelete]
    ] as [string, (context: Steps.Context) => Promise<Steps.StepResult>][],

    async version(cluster: Cluster.Cluster): Promise<string> {

        const version = await Cluster.get<{ gitVersion: string }>(cluster, '/version');
        return version?.gitVersion ?? 'unknown';
    }
};


const main = async function (): Promise<number> {

    const { values: args } = parseArgs({
        options: {
            'out': { type: 'string', default: '.out/e2e' },
            'short': { type: 'boolean', default: false },
            'keep-cluster': { type: 'boolean', default: false },
            'image': { type: 'string' },
            'rate': { type: 'string' },
            'steps': { type: 'string' },
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

    const session = await Cluster.acquire(args['keep-cluster']);
    const { cluster, upS: clusterUpS } = session;
    const steps: { name: string; ok: boolean; seconds: number; details?: Record<string, unknown>; error?: string }[] = [];
    let rollout: Record<string, unknown> | null = null;
    const kubernetesVersion = await internals.version(cluster);
    try {
        const loaded = await Cluster.load(image);
        if (loaded.code !== 0) {
            throw new Error(`importing ${image} failed: ${loaded.stderr} (build it with .ci/image-build.sh)`);
        }

        const context: Steps.Context = {
            cluster, helm4: tools.helm4, helm3: tools.helm3, chart: join(Cluster.root, 'charts', 'item-api'),
            out, short: args.short, rate: Number(args.rate ?? (args.short ? 100 : 200))
        };

        const only = args.steps?.split(',');
        for (const [name, step] of internals.steps.filter(([name]) => !only || only.includes(name))) {
            if (steps.some((s) => !s.ok)) {
                steps.push({ name, ok: false, seconds: 0, error: 'not run: an earlier step failed' });
                continue;
            }

            const started = performance.now();
            console.log(`== ${name}`);
            try {
                const result = await step(context);
                const seconds = Math.round((performance.now() - started) / 100) / 10;
                steps.push({ name, ok: result.ok, seconds, details: result.details });
                if (result.rollout) {
                    const [good, ...controls] = result.rollout.map((r) => r.summary);
                    rollout = {
                        requests: good?.requests, failed: good?.failed, lostWrites: good?.lostWrites, duplicateWrites: good?.duplicateWrites, sigkills: good?.sigkills,
                        controls: Object.fromEntries(controls.map((c) => [c.scenario, { failed: c.failed, requests: c.requests, failures: c.failures }])),
                        good, checks: result.details.checks
                    };
                }

                console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${name} (${seconds} s)${result.ok ? '' : ` ${JSON.stringify(result.details).slice(0, 3000)}`}`);
            }
            catch (error) {
                const seconds = Math.round((performance.now() - started) / 100) / 10;
                steps.push({ name, ok: false, seconds, error: (error as Error).stack ?? String(error) });
                console.log(`FAIL ${name} (${seconds} s): ${(error as Error).message}`);
            }
        }
    }
    finally {
        const down = await session.release();
        if (down) {
            steps.push({ name: 'cluster-down', ok: down.code === 0, seconds: down.seconds, ...(down.code === 0 ? {} : { error: down.stderr.slice(-3000) }) });
            console.log(`${down.code === 0 ? 'ok  ' : 'FAIL'} cluster-down (${down.seconds} s)${down.code === 0 ? '' : `\n${down.stderr}`}`);
        }
    }

    const pass = steps.length > 0 && steps.every((step) => step.ok) && (rollout !== null || Boolean(args.steps && !args.steps.includes('rollout-restart')));
    const summary = { kubernetesVersion, pass, clusterUpS, wallTimeS: Math.round((performance.now() - wallStart) / 100) / 10, steps, rollout };
    await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`wrote ${join(out, 'summary.json')}: ${pass ? 'pass' : 'FAIL'} in ${summary.wallTimeS} s`);
    return pass ? 0 : 1;
};


process.exit(await main());
