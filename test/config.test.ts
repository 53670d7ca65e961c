import { describe, expect, it } from 'vitest';

import * as Config from '../src/config.ts';
import { redactUrl } from '../src/redact.ts';


const problems = (env: Record<string, string>) => {

    try {
        Config.load(env);
    }
    catch (err) {
        expect(err).toBeInstanceOf(Config.ConfigError);
        return (err as Config.ConfigError).problems;
    }

    throw new Error('expected the configuration to be rejected');
};


describe('configuration', () => {

    it('has safe development defaults and needs nothing set', () => {

        const config = Config.load({});
        expect(config).toMatchObject({
            env: 'development',
            host: '127.0.0.1',
            port: 3000,
            databaseUrl: undefined,
            migrateOnStart: true,
            shutdown: { delayMs: 0, drainTimeoutMs: 10_000, cleanupTimeoutMs: 5000 },
            http: { keepAliveTimeoutMs: 65_000, headersTimeoutMs: 66_000, responseTimeoutMs: 10_000 }
        });
    });

    it('uses production defaults: all interfaces, a shutdown delay, no migrations at start', () => {

        const config = Config.load({ NODE_ENV: 'production', DATABASE_URL: 'postgres://app@db:5432/items' });
        expect(config).toMatchObject({ host: '0.0.0.0', migrateOnStart: false, shutdown: { delayMs: 5000 } });
    });

    it('keeps the keep-alive timeout above common balancers\' 60 s idle timeout, and headers above keep-alive', () => {

        const { http } = Config.load({});
        expect(http.keepAliveTimeoutMs).toBeGreaterThan(60_000);
        expect(http.headersTimeoutMs).toBeGreaterThan(http.keepAliveTimeoutMs);
    });

    it('sheds load in production by default (event-loop delay and utilization, the pool\'s queue), never in development', () => {

        const off = { sampleIntervalMs: 0, maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0, maxHeapUsedBytes: 0, maxRssBytes: 0, maxDatabaseWaiting: 0, maxAcceptQueue: 0 };
        expect(Config.load({}).load).toEqual(off);
        expect(Config.load({ NODE_ENV: 'production', DATABASE_URL: 'postgres://app@db:5432/items' }).load).toEqual({ ...off, sampleIntervalMs: 100, maxEventLoopDelayMs: 100, maxDatabaseWaiting: 10 });
        expect(Config.load({ NODE_ENV: 'production', DATABASE_URL: 'postgres://app@db:5432/items', DB_POOL_MAX: '25' }).load.maxDatabaseWaiting).toBe(25);
        // A limit of hapi's sampler turns sampling on: hapi would refuse the limit without it.
        expect(Config.load({ LOAD_MAX_RSS_BYTES: '209715200' }).load).toEqual({ ...off, sampleIntervalMs: 100, maxRssBytes: 209_715_200 });
        // Utilization and the pool's queue are the service's own, not hapi's sampler's.
        expect(Config.load({ LOAD_MAX_EVENT_LOOP_UTILIZATION: '0.9' }).load).toEqual({ ...off, maxEventLoopUtilization: 0.9 });
        expect(Config.load({ LOAD_MAX_DB_WAITING: '25' }).load).toEqual({ ...off, maxDatabaseWaiting: 25 });
        expect(() => Config.load({ LOAD_MAX_EVENT_LOOP_UTILIZATION: '1.5' })).toThrow(/LOAD_MAX_EVENT_LOOP_UTILIZATION: must be less than or equal to 1/);
    });

    it('treats an empty variable as unset', () => {

        expect(Config.load({ PORT: '', LOG_LEVEL: '' })).toMatchObject({ port: 3000, logLevel: 'info' });
    });

    it.each([
        [{ PORT: 'eighty' }, 'PORT: must be a number (got "eighty")'],
        [{ PORT: '70000' }, 'PORT: must be a valid port (got 70000)'],
        [{ NODE_ENV: 'staging' }, 'NODE_ENV: must be one of [development, test, production] (got "staging")'],
        [{ NODE_ENV: 'production' }, 'DATABASE_URL: is required'],
        [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: must be one of [fatal, error, warn, info, debug, trace, silent] (got "loud")'],
        [{ SHUTDOWN_DELAY_MS: '-1' }, 'SHUTDOWN_DELAY_MS: must be greater than or equal to 0 (got -1)'],
        [{ SHUTDOWN_DRAIN_TIMEOUT_MS: '2.5' }, 'SHUTDOWN_DRAIN_TIMEOUT_MS: must be an integer (got 2.5)'],
        [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX: must be greater than or equal to 1 (got 0)'],
        [{ HTTP_KEEP_ALIVE_TIMEOUT_MS: '70000', HTTP_HEADERS_TIMEOUT_MS: '60000' }, 'HTTP_HEADERS_TIMEOUT_MS: must be greater than ref:HTTP_KEEP_ALIVE_TIMEOUT_MS (got 60000)'],
        [{ LOAD_MAX_HEAP_USED_BYTES: '1000', LOAD_SAMPLE_INTERVAL_MS: '0' }, 'LOAD_SAMPLE_INTERVAL_MS: must be at least 1 when a LOAD_MAX_* limit is set (got 0)'],
        [{ LOAD_MAX_EVENT_LOOP_DELAY_MS: 'soon' }, 'LOAD_MAX_EVENT_LOOP_DELAY_MS: must be a number (got "soon")']
    ])('rejects %o naming the variable and what it expects', (env, problem) => {

        expect(problems(env)).toContain(problem);
    });

    it('reports every invalid variable at once', () => {

        expect(problems({ PORT: 'x', DB_POOL_MAX: 'y' })).toHaveLength(2);
    });

    it('never echoes the database URL, which may hold a password', () => {

        const reported = problems({ DATABASE_URL: 'mysql://app:hunter2@db/items' });
        expect(reported).toEqual(['DATABASE_URL: must be a valid uri with a scheme matching the postgres|postgresql pattern']);
        expect(JSON.stringify(reported)).not.toContain('hunter2');
    });
});


describe('redactUrl', () => {

    it.each([
        ['postgres://app:hunter2@db:5432/items', 'postgres://app:***@db:5432/items'],
        ['connect to postgresql://u:p%40ss@10.0.0.1/x failed', 'connect to postgresql://u:***@10.0.0.1/x failed'],
        ['postgres://app@db/items', 'postgres://app@db/items'],
        ['no url here', 'no url here']
    ])('redacts %s', (input, output) => {

        expect(redactUrl(input)).toBe(output);
    });
});
