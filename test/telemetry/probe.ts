// Runs the service's request path in a process of its own whose telemetry exports to memory, makes
// one request, and prints the finished spans as JSON. A separate process, because the
// instrumentations must patch the modules before their first import, as `--import` does in production.

import { Writable } from 'node:stream';

import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';

import * as Telemetry from '../../src/telemetry.ts';


const exporter = new InMemorySpanExporter();
await Telemetry.start({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });

const Config = await import('../../src/config.ts');
const Db = await import('../../src/db.ts');
const Logger = await import('../../src/logger.ts');
const ItemApi = await import('../../src/server.ts');

const logs: object[] = [];
const destination = new Writable({
    write(chunk, _encoding, callback) {

        logs.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line)));
        callback();
    }
});

const config = Config.load({ ...process.env, NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' });
const db = Db.create({ url: config.databaseUrl!, ...config.db });
const server = await ItemApi.create({ config, db, logger: Logger.create({ level: config.logLevel, destination }) });
await server.start();

const created = await (await fetch(`${server.info.uri}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'traced' }) })).json() as { id: string };
exporter.reset();
logs.length = 0;

// PROBE_TRACEPARENT: the request arrives as part of a caller's trace. PROBE_REQUESTS: more than one
// request, for the sampler's ratio; the last one's status is reported.
const traceparent = process.env.PROBE_TRACEPARENT;
let res: Response | null = null;
for (let i = 0; i < Number(process.env.PROBE_REQUESTS ?? 1); ++i) {
    res = await fetch(`${server.info.uri}/items/${created.id}`, { headers: traceparent ? { traceparent } : {} });
    await res.text();
}

await server.stop();
await db.destroy();

const spans = exporter.getFinishedSpans().map((span) => ({
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? null,
    attributes: span.attributes
}));

await Telemetry.shutdown();                                 // After reading: the in-memory exporter forgets on shutdown
process.stdout.write(JSON.stringify({ status: res?.status, spans, logs }));
