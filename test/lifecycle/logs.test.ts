import { fileURLToPath } from 'node:url';

import { afterEach, expect, it } from 'vitest';

import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Http from './support/http.ts';


// Log lines leave the process asynchronously (src/logger.ts): the shutdown must write what is still
// queued before the process exits, or the lines that explain an exit are the ones lost.

const database = Database.provide();

afterEach(App.killAll);


it('writes the line of every request answered and the exit line before it exits, when stdout is slow to take them', async () => {

    const slowStdout = fileURLToPath(new URL('./fixtures/slow-stdout.ts', import.meta.url));
    const app = await App.start({ preload: [slowStdout], env: { DATABASE_URL: database.url, SHUTDOWN_DELAY_MS: '100', SHUTDOWN_CLEANUP_TIMEOUT_MS: '5000' } });

    const requests = Array.from({ length: 300 }, () => Http.request(app.port, { path: '/items?limit=5' }));
    const last = await Http.request(app.port, { path: '/items?limit=5' });
    app.signal('SIGTERM');
    const outcomes = [...await Promise.all(requests), last];
    const exit = await app.exited;
    expect(exit.code).toBe(0);

    // Some of the 301 may be shed (503, no response line): the ones answered 200 are counted, the last
    // one included (counting it as answered whatever its status made this test fail now and then).
    const answered = outcomes.filter((outcome) => outcome.status === 200).length;
    expect(answered).toBeGreaterThan(1);

    const lines = app.logs();
    const responses = lines.filter((line) => (line.req as { url?: string } | undefined)?.url === '/items' && (line.res as { statusCode?: number } | undefined)?.statusCode === 200);
    expect(responses).toHaveLength(answered);
    expect(lines.at(-1)).toMatchObject({ component: 'lifecycle', phase: 'exit', msg: 'shutdown complete' });
});
