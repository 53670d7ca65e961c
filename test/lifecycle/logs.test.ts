import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';

import * as Logger from '../../src/logger.ts';

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
    await Http.request(app.port, { path: '/items?limit=5' });
    app.signal('SIGTERM');
    const outcomes = await Promise.all(requests);
    const exit = await app.exited;
    expect(exit.code).toBe(0);

    const answered = outcomes.filter((outcome) => outcome.status === 200).length + 1;
    expect(answered).toBeGreaterThan(1);

    const lines = app.logs();
    const responses = lines.filter((line) => (line.req as { url?: string } | undefined)?.url === '/items' && (line.res as { statusCode?: number } | undefined)?.statusCode === 200);
    expect(responses).toHaveLength(answered);
    expect(lines.at(-1)).toMatchObject({ component: 'lifecycle', phase: 'exit', msg: 'shutdown complete' });
});


// Lines are batched (LOG_BUFFER_BYTES) and written at the latest after LOG_FLUSH_INTERVAL_MS: a
// line logged when little else is (one request at night) must not wait for the buffer to fill.

const writtenWithin = async function (dest: ReturnType<typeof Logger.destination>, file: string, waitMs: number): Promise<string> {

    const logger = Logger.create({ level: 'info', destination: dest });
    logger.info({ probe: true }, 'one line at idle');
    await sleep(waitMs);
    const written = readFileSync(file, 'utf8');
    logger.flush();
    return written;
};


it('writes a line logged at idle within the flush interval although the buffer is far from full', async () => {

    const dir = mkdtempSync(join(tmpdir(), 'item-api-log-'));
    const file = join(dir, 'out.log');
    const dest = Logger.destination({ fd: openSync(file, 'w'), bufferBytes: 4096, flushIntervalMs: 100 });
    expect(await writtenWithin(dest, file, 500)).toMatch(/"msg":"one line at idle"/);
    rmSync(dir, { recursive: true, force: true });
});


it('negative control: batched without the interval, the same line is still in memory after 500 ms', async () => {

    const dir = mkdtempSync(join(tmpdir(), 'item-api-log-'));
    const file = join(dir, 'out.log');
    const dest = pino.destination({ dest: openSync(file, 'w'), sync: false, minLength: 4096 });
    expect(await writtenWithin(dest, file, 500)).toBe('');
    rmSync(dir, { recursive: true, force: true });
});
