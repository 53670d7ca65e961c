import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort } from '../../src/embedded-db.ts';
import { budgets, chartEnv } from './chart.ts';
import * as Checks from './checks.ts';
import * as Container from './container.ts';
import * as Database from './database.ts';


// The runtime image (.ci/image-build.sh builds it from the Dockerfile) run as the chart runs it:
// the migration Job's command first, then the Deployment's container with MIGRATE_ON_START false,
// its securityContext and its environment (small shutdown budgets, loopback addresses).


const database = Database.provideEmpty();


describe(`the runtime image ${Container.image} as the chart runs it`, () => {

    const state = {} as { container: Container.Container; inspection: Checks.Inspection; cmd: string[]; metricsPort: number };

    beforeAll(async () => {

        const [info] = JSON.parse(await Container.podman(['image', 'inspect', Container.image])) as [{ Size: number; Config: { Cmd: string[] } }];
        state.cmd = info.Config.Cmd;
        console.log(`image ${Container.image}: ${(info.Size / 1e6).toFixed(1)} MB`);

        state.metricsPort = await freePort();
        const env = chartEnv(database.url, state.metricsPort);
        const migration = await Container.runToCompletion({ env, command: ['node', 'src/migrate.ts'] });
        expect(migration.code, `migration Job's command; output:\n${migration.output}`).toBe(0);

        state.container = await Container.run({ env });
        state.inspection = await Checks.inspect(state.container);
    });

    afterAll(() => Container.removeAll());

    it('runs as uid and gid 1000 with no capabilities and no privilege escalation', () => {

        Checks.checkIdentity(state.inspection);
    });

    it('cannot write its root filesystem, only /tmp', () => {

        Checks.checkReadOnlyRoot(state.inspection);
    });

    it('runs node as PID 1, with the image CMD', () => {

        expect(state.cmd).toEqual(['node', '--import', './src/instrument.ts', 'src/main.ts']);
        Checks.checkNodeIsPid1(state.inspection, state.cmd);
    });

    it('holds no build configuration and no npm', () => {

        Checks.checkNoBuildSecrets(state.inspection);
    });

    it('is ready, serves a POST/GET round trip on the migrated schema, and exports metrics', async () => {

        const ready = await fetch(`${state.container.url}/health/ready`);
        expect(ready.status).toBe(200);

        const created = await fetch(`${state.container.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'boxed', quantity: 3 }) });
        expect(created.status).toBe(201);
        const item = await created.json() as { id: string };

        const read = await fetch(`${state.container.url}/items/${item.id}`);
        expect(read.status).toBe(200);
        expect(await read.json()).toMatchObject({ id: item.id, name: 'boxed', quantity: 3, version: 1 });

        const metrics = await fetch(`http://127.0.0.1:${state.metricsPort}/metrics`);
        expect(metrics.status).toBe(200);
        expect(await metrics.text()).toContain('http_server');
    });

    it('on SIGTERM runs the shutdown phases in order and exits 0 inside its budget', async () => {

        const { elapsedMs } = await Checks.checkShutdown(state.container, budgets);
        console.log(`SIGTERM -> exit 0 in ${elapsedMs} ms (budget ${budgets.delayMs + budgets.drainMs + budgets.cleanupMs + 1000} ms)`);
    });
});
