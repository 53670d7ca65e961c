import * as Command from '../test/support/command.ts';


// What is measured. Every variant reads the same rows from the same database with the same pool
// size; they differ only in the code between the socket and the query.

export interface Variant {
    readonly name: string;
    readonly description: string;
    readonly argv: string[];
    readonly env: Record<string, string>;
    readonly readyPath: string;
    readonly baseline: boolean;
    readonly exportsTraces: boolean;
}


const internals = {
    otelOff: { OTEL_SDK_DISABLED: 'true' },

    // Without an exporter the SDK registers no tracer provider: the instrumentations still patch
    // http, hapi and pg and propagate context, but their spans are non-recording. Metrics and logs
    // exporters are off too, so nothing tries to reach a collector.
    otelNoExport: { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },

    // What tracing costs in production: spans recorded, batched and exported over OTLP/HTTP (the
    // SDK's defaults) to a local sink that drops them. Metrics and logs exporters stay off.
    otelExport(endpoint: string) {

        return { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`, OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' };
    },

    service(name: string, description: string, env: Record<string, string>): Variant {

        return {
            name,
            description,
            argv: Command.argv(),
            readyPath: '/health/ready',
            baseline: false,
            exportsTraces: env.OTEL_TRACES_EXPORTER === 'otlp',
            env: {
                NODE_ENV: 'production',
                MIGRATE_ON_START: 'false',
                SHUTDOWN_DELAY_MS: '0',                 // Only shortens the stop between variants
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
            baseline: db === 'pg',
            exportsTraces: false,
            env: { NODE_ENV: 'production', BARE_DB: db }
        };
    }
};


export const all = function (options: { otlpEndpoint: string }): Variant[] {

    return [
        internals.bare('bare', 'node:http + pg Pool, one query', 'pg'),
        internals.bare('bare-knex', 'node:http + the service\'s knex store', 'knex'),
        internals.service('service-info', 'service, LOG_LEVEL=info, OTel off', { LOG_LEVEL: 'info', ...internals.otelOff }),
        internals.service('service-warn', 'service, LOG_LEVEL=warn, OTel off', { LOG_LEVEL: 'warn', ...internals.otelOff }),
        internals.service('service-info-otel', 'service, LOG_LEVEL=info, OTel on, no exporter', { LOG_LEVEL: 'info', ...internals.otelNoExport }),
        internals.service('service-info-otlp', 'service, LOG_LEVEL=info, OTel on, OTLP export to a local sink', { LOG_LEVEL: 'info', ...internals.otelExport(options.otlpEndpoint) })
    ];
};
