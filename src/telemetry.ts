import { register } from 'node:module';

import type { Instrumentation } from '@opentelemetry/instrumentation';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { Sampler, SpanProcessor } from '@opentelemetry/sdk-trace';


const internals = {
    sdk: null as NodeSDK | null,

    // Health probes arrive every few seconds from every kubelet; they are not traffic worth tracing.
    isProbe(url: string | undefined): boolean {

        return url?.startsWith('/health/') ?? false;
    },

    disabled(): boolean {

        return process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
    },

    // Without OTEL_TRACES_SAMPLER: one trace in ten, unless the caller's traceparent already decided,
    // as deployments sample to keep export traffic and the collector's storage in bounds. It saves
    // the export, not the instrumentations' per-request work (README, Performance).
    // OTEL_TRACES_SAMPLER_ARG sets the ratio, OTEL_TRACES_SAMPLER any other standard sampler.
    defaultRatio: 0.1,

    // ESM imports are only visible to the instrumentations through a loader hook. It is limited to the
    // packages the service imports from ESM, so no other module pays for the interception; pg,
    // required by knex through CommonJS, is patched by the require hook the SDK installs.
    hooked: ['pg'],

    async sampler(): Promise<Sampler | undefined> {

        if (process.env.OTEL_TRACES_SAMPLER?.trim()) {
            return undefined;                                           // The SDK builds the one named
        }

        const { ParentBasedSampler, TraceIdRatioBasedSampler } = await import('@opentelemetry/sdk-trace');
        const arg = process.env.OTEL_TRACES_SAMPLER_ARG?.trim();
        const ratio = arg ? Number(arg) : Number.NaN;
        return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio >= 0 && ratio <= 1 ? ratio : internals.defaultRatio) });
    }
};


export interface TelemetryOptions {

    // Span processors in place of the ones OTEL_TRACES_EXPORTER would build (tests use an in-memory exporter).
    readonly spanProcessors?: SpanProcessor[];

    // Instrumentations in place of the service's own (the benchmark measures the packaged set this way).
    readonly instrumentations?: Instrumentation[];
}


// Starts the SDK with only the instrumentations the service uses: http's server span per request,
// named by its hapi route (src/trace-route.ts), with the pg query spans as children. Exporters,
// sampling and resource come from the standard OTEL_* variables. No signal handler is installed
// here: the lifecycle shuts telemetry down last, after the pool has ended, so the spans of the
// final requests are exported.
// Must run before the instrumented packages are first imported (see instrument.ts).
//
// The SDK and its instrumentations take about a third of a second of CPU to load: they are imported
// here, only when telemetry is on, so that with OTEL_SDK_DISABLED=true neither the bootstrap nor the
// lifecycle (which calls shutdown()) pays for them.

export const start = async function (options: TelemetryOptions = {}): Promise<void> {

    if (internals.sdk || internals.disabled()) {
        return;
    }

    const [{ NodeSDK }, { HttpInstrumentation }, { PgInstrumentation }, sampler] = await Promise.all([
        import('@opentelemetry/sdk-node'),
        import('@opentelemetry/instrumentation-http'),
        import('@opentelemetry/instrumentation-pg'),
        internals.sampler()
    ]);

    register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: internals.hooked } });

    // No hapi instrumentation: it wraps every handler and extension of every request in a span of
    // its own (cost measured in the README's Performance section); src/trace-route.ts names the span.
    internals.sdk = new NodeSDK({
        serviceName: process.env.OTEL_SERVICE_NAME ?? 'item-api',
        ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
        ...(sampler ? { sampler } : {}),
        instrumentations: options.instrumentations ?? [
            new HttpInstrumentation({
                ignoreIncomingRequestHook: (request) => internals.isProbe(request.url),
                ignoreOutgoingRequestHook: () => true                   // The service makes no outgoing HTTP calls but the exporter's own
            }),
            new PgInstrumentation({ requireParentSpan: true })          // Pool housekeeping and the readiness ping are not request work
        ]
    });

    internals.sdk.start();
};


export const active = function (): boolean {

    return internals.sdk !== null;
};


export const shutdown = async function (): Promise<void> {

    const sdk = internals.sdk;
    internals.sdk = null;
    await sdk?.shutdown();
};
