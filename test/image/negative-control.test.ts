import { afterEach, describe, expect, it } from 'vitest';

import { freePort } from '../../src/embedded-db.ts';
import * as Database from '../support/database.ts';
import { budgets, chartEnv } from './chart.ts';
import * as Checks from './checks.ts';
import * as Container from './container.ts';


// The same image run in two broken ways, against the same checks as runtime.test.ts: each check
// meant to catch the fault must fail here, or it proves nothing there.


const database = Database.provide();
const start = async (options: Omit<Container.RunOptions, 'env'>) => Container.run({ ...options, env: chartEnv(database.url, await freePort()) });


afterEach(() => Container.removeAll());


describe('negative controls: the checks fail for a broken variant of the image', () => {

    it('a shell wrapping node (the shell form of CMD) is PID 1: the PID 1 check fails and SIGTERM never reaches node', async () => {

        // `; exit` keeps the shell from replacing itself with node, as a wrapper script or a second command does.
        const container = await start({ entrypoint: ['sh', '-c'], command: ['node --import ./src/instrument.ts src/main.ts; exit $?'] });
        const inspection = await Checks.inspect(container);

        expect(inspection.cmdline[0]).toBe('sh');
        expect(() => Checks.checkNodeIsPid1(inspection, ['node', '--import', './src/instrument.ts', 'src/main.ts'])).toThrow();
        await expect(Checks.checkShutdown(container, budgets)).rejects.toThrow(/still running/);
        expect(container.lifecycle('signal'), 'node saw no signal').toBeUndefined();
        // The posture checks still hold: only the wrapper is wrong.
        Checks.checkIdentity(inspection);
        Checks.checkReadOnlyRoot(inspection);
    });

    it('run with the runtime defaults instead of the chart securityContext: the identity and read-only checks fail', async () => {

        const container = await start({ security: ['--user', '0:0'] });
        const inspection = await Checks.inspect(container);

        expect(inspection.status.Uid).toMatch(/^0\s/);
        expect(() => Checks.checkIdentity(inspection)).toThrow();
        expect(inspection.writes['/home/node/probe']).toBe('ok');
        expect(() => Checks.checkReadOnlyRoot(inspection)).toThrow();
        // node is still PID 1 and shuts down cleanly: only the posture is wrong.
        Checks.checkNodeIsPid1(inspection, ['node', '--import', './src/instrument.ts', 'src/main.ts']);
        await Checks.checkShutdown(container, budgets);
    });
});
