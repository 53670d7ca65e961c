import type { Budgets } from './checks.ts';


// Small shutdown budgets keep the suite fast; the chart's defaults are seconds.
export const budgets: Budgets = { delayMs: 300, drainMs: 1000, cleanupMs: 1500 };

// charts/item-api/templates/_helpers.tpl (commonEnv, otelEnv) and deployment.yaml, with the chart's
// default values; the Prometheus exporter on a free loopback port instead of 9464.
export const chartEnv = function (databaseUrl: string, metricsPort: number): Record<string, string> {

    return {
        NODE_ENV: 'production',
        LOG_LEVEL: 'info',
        DATABASE_URL: databaseUrl,
        DB_POOL_MAX: '10',
        DB_POOL_ACQUIRE_TIMEOUT_MS: '5000',
        DB_STATEMENT_TIMEOUT_MS: '10000',
        OTEL_SDK_DISABLED: 'false',
        OTEL_SERVICE_NAME: 'item-api',
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'prometheus',
        OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
        OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
        MIGRATE_ON_START: 'false',
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '65000',
        HTTP_HEADERS_TIMEOUT_MS: '66000',
        HTTP_ACCEPTORS: '4',
        SHUTDOWN_DELAY_MS: String(budgets.delayMs),
        SHUTDOWN_DRAIN_TIMEOUT_MS: String(budgets.drainMs),
        SHUTDOWN_CLEANUP_TIMEOUT_MS: String(budgets.cleanupMs)
    };
};
