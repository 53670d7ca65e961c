import * as Command from '../test/support/command.ts';

import type { Scenario } from './load.ts';


// What is measured. Every variant reads the same rows from the same database with the same pool
// size; they differ only in the code between the socket and the query.

export interface Variant {
    readonly name: string;
    readonly description: string;
    readonly argv: string[];
    readonly env: Record<string, string>;
    readonly readyPath: string;
    readonly scenario: Scenario;
    readonly baseline: boolean;
    readonly exportsTraces: boolean;
    readonly chartNodeOptions: boolean;         // Runs with the chart's NODE_OPTIONS: the service as deployed, and hapi alone
}


const internals = {
    otelOff: { OTEL_SDK_DISABLED: 'true' },

    // Without an exporter the SDK registers no tracer provider: the instrumentations still patch
    // http, hapi and pg and propagate context, but their spans are non-recording. Metrics and logs
    // exporters are off too, so nothing tries to reach a collector.
    otelNoExport: { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },

    // What tracing costs in production: spans recorded, batched and exported over OTLP/HTTP (the
    // SDK's defaults) to a local sink that drops them. Metrics and logs exporters stay off. Every
    // request is traced unless a sampler is given: the worst case, not the service's default.
    otelExport(endpoint: string, sampler: Record<string, string> = { OTEL_TRACES_SAMPLER: 'parentbased_always_on' }) {

        return { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`, OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', ...sampler };
    },

    service(name: string, description: string, env: Record<string, string>, options: { scenario?: Scenario; argv?: string[] } = {}): Variant {

        return {
            name,
            description,
            argv: options.argv ?? Command.argv(),
            readyPath: '/health/ready',
            scenario: options.scenario ?? 'get',
            baseline: false,
            exportsTraces: env.OTEL_TRACES_EXPORTER === 'otlp',
            chartNodeOptions: true,
            env: {
                NODE_ENV: 'production',
                MIGRATE_ON_START: 'false',
                SHUTDOWN_DELAY_MS: '0',                 // Only shortens the stop between variants
                // autocannon's closed loop keeps the process saturated, which this limit exists to refuse
                // (503 while a queue as long as the pool stands): what is measured is what a served
                // request costs.
                LOAD_MAX_DB_WAITING: '0',
                ...env
            }
        };
    },

    bare(name: string, description: string, db: 'pg' | 'knex'): Variant {

        return {
            name,
            description,
            argv: [process.execPath, 'bench/bare-server.ts'],
            readyPath: '/health',
            scenario: 'get',
            baseline: db === 'pg',
            exportsTraces: false,
            chartNodeOptions: false,
            env: { NODE_ENV: 'production', BARE_DB: db }
        };
    },

    // A hand-written server on another stack, with the bare handler's data access (bench/pg-items.ts).
    // hapi alone runs with the chart's NODE_OPTIONS, so that the floor of any hapi service has the
    // service's heap; fastify, the peer a Node user would pick instead, runs as the bare handler does.
    peer(name: string, description: string, script: string, chartNodeOptions: boolean): Variant {

        return {
            name,
            description,
            argv: [process.execPath, script],
            readyPath: '/health',
            scenario: 'get',
            baseline: false,
            exportsTraces: false,
            chartNodeOptions,
            env: { NODE_ENV: 'production' }
        };
    },

    // The service's command with @opentelemetry/auto-instrumentations-node in place of its own
    // bootstrap: what the packaged alternative costs in start time, memory and req/s.
    autoArgv(): string[] {

        return Command.argv().map((arg) => (arg === './src/instrument.ts' ? './bench/instrument-auto.ts' : arg));
    }
};


export const all = function (options: { otlpEndpoint: string }): Variant[] {

    const otlp = internals.otelExport(options.otlpEndpoint);
    return [
        internals.bare('bare', 'node:http + pg Pool, one prepared statement', 'pg'),
        internals.peer('fastify', 'fastify + pg Pool, the same prepared statement', 'bench/fastify-server.ts', false),
        internals.peer('hapi', 'hapi + pg Pool, the same prepared statement, one route and nothing else', 'bench/hapi-server.ts', true),
        internals.bare('bare-knex', 'node:http + the service\'s store', 'knex'),
        internals.service('service-info', 'service, LOG_LEVEL=info, OTel off', { LOG_LEVEL: 'info', ...internals.otelOff }),
        internals.service('service-warn', 'service, LOG_LEVEL=warn, OTel off', { LOG_LEVEL: 'warn', ...internals.otelOff }),
        internals.service('service-info-otel', 'service, LOG_LEVEL=info, OTel on, no exporter', { LOG_LEVEL: 'info', ...internals.otelNoExport }),
        internals.service('service-info-otlp', 'service, LOG_LEVEL=info, OTel on, every request traced, OTLP export to a local sink', { LOG_LEVEL: 'info', ...otlp }),
        internals.service('service-otlp-sampled', 'service, LOG_LEVEL=info, OTel on, default sampler, OTLP export', { LOG_LEVEL: 'info', ...internals.otelExport(options.otlpEndpoint, {}) }),
        internals.service('service-otlp-auto', 'service with auto-instrumentations-node (http and pg only), every request traced, OTLP export', { LOG_LEVEL: 'info', ...otlp, OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,pg' }, { argv: internals.autoArgv() }),
        internals.service('service-list', 'service, GET /items?limit=20, OTel off', { LOG_LEVEL: 'info', ...internals.otelOff }, { scenario: 'list' }),
        internals.service('service-create', 'service, POST /items with Idempotency-Key, OTel off', { LOG_LEVEL: 'info', ...internals.otelOff }, { scenario: 'create' })
    ];
};
