import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { SpanKind } from '@opentelemetry/api';
import { expect, it } from 'vitest';

import * as Database from '../support/database.ts';


interface Span {
    name: string;
    kind: number;
    traceId: string;
    spanId: string;
    parentSpanId: string | null;
    attributes: Record<string, unknown>;
}


const database = Database.provide();

const probe = async (env: Record<string, string> = {}) => {

    const { stdout } = await promisify(execFile)(process.execPath, ['test/telemetry/probe.ts'], {
        env: { ...process.env, DATABASE_URL: database.url, OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', OTEL_TRACES_SAMPLER_ARG: '1', ...env },
        timeout: 20_000
    });

    return JSON.parse(stdout) as { status: number; spans: Span[]; logs: Record<string, unknown>[] };
};


it('records a server span named by the route, with the database query as its descendant', async () => {

    const { status, spans } = await probe();
    expect(status).toBe(200);

    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    expect(server).toBeDefined();
    expect(server!.name).toBe('GET /items/{id}');
    expect(server!.attributes['http.route']).toBe('/items/{id}');

    const query = spans.find((span) => span.kind === SpanKind.CLIENT && span.attributes['db.system.name'] === 'postgresql');
    expect(query).toBeDefined();
    expect(query!.traceId).toBe(server!.traceId);

    // Walk up from the query: it must reach the server span.
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    let ancestor = query;
    while (ancestor && ancestor.spanId !== server!.spanId) {
        ancestor = ancestor.parentSpanId ? byId.get(ancestor.parentSpanId) : undefined;
    }

    expect(ancestor).toBe(server);
});

it('puts the trace id on the request\'s log line', async () => {

    const { spans, logs } = await probe();
    const server = spans.find((span) => span.kind === SpanKind.SERVER)!;
    const line = logs.find((log) => (log.req as { url?: string } | undefined)?.url?.startsWith('/items/'));
    expect(line).toMatchObject({ trace_id: server.traceId });
});

it('samples by trace id ratio unless the caller decided, the ratio from OTEL_TRACES_SAMPLER_ARG', async () => {

    const unsampled = await probe({ OTEL_TRACES_SAMPLER_ARG: '0' });
    expect(unsampled.status).toBe(200);
    expect(unsampled.spans).toEqual([]);

    // A caller's sampled flag wins over the ratio: its trace goes on through this service.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const followed = await probe({ OTEL_TRACES_SAMPLER_ARG: '0', PROBE_TRACEPARENT: `00-${traceId}-00f067aa0ba902b7-01` });
    const server = followed.spans.find((span) => span.kind === SpanKind.SERVER);
    expect(server).toMatchObject({ name: 'GET /items/{id}', traceId });
});

it('traces one request in ten by default', async () => {

    const { spans } = await probe({ OTEL_TRACES_SAMPLER_ARG: '', PROBE_REQUESTS: '200' });
    const servers = spans.filter((span) => span.kind === SpanKind.SERVER).length;
    expect(servers).toBeGreaterThan(2);                 // 200 requests at 0.1: 20 expected; 2 or fewer, or 45 or more: each about 2e-7
    expect(servers).toBeLessThan(45);
});

it('starts nothing when OTEL_SDK_DISABLED=true', async () => {

    const { status, spans, logs } = await probe({ OTEL_SDK_DISABLED: 'true' });
    expect(status).toBe(200);
    expect(spans).toEqual([]);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((log) => 'trace_id' in log)).toEqual([]);
});
