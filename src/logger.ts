import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Logger } from 'pino';

import { redactUrl } from './redact.ts';


const internals = {

    // Request headers that carry credentials never reach the log.
    redactPaths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["proxy-authorization"]',
        'res.headers["set-cookie"]',
        'databaseUrl'
    ],

    // Correlates log lines with traces; cheap when no span is active (one context lookup).
    traceFields(): object {

        const span = trace.getActiveSpan();
        if (!span) {
            return {};
        }

        const { traceId, spanId, traceFlags } = span.spanContext();
        return { trace_id: traceId, span_id: spanId, trace_flags: traceFlags };
    },

    errorSerializer(err: Error): object {

        const serialized = pino.stdSerializers.err(err);
        serialized.message = redactUrl(serialized.message);
        if (serialized.stack) {
            serialized.stack = redactUrl(serialized.stack);
        }

        return serialized;
    }
};


export type { Logger };


// Output is asynchronous: a line is queued while a write to stdout is under way and leaves with the
// next one, so a slow stdout (a container runtime that reads late) no longer stalls the event loop.
// The CPU it saves per request was within the benchmark's noise (README, Performance): it is kept
// for the event loop, not for throughput. Whoever exits the process awaits flush() first,
// so that the lines already queued, the last one included, are out before it leaves
// (test/lifecycle/logs.test.ts holds it to that with a slow stdout).

export const create = function (options: { level: string; destination?: pino.DestinationStream }): Logger {

    return pino({
        level: options.level,
        base: { service: process.env.OTEL_SERVICE_NAME ?? 'item-api' },
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: internals.redactPaths, censor: '[redacted]' },
        serializers: { err: internals.errorSerializer, error: internals.errorSerializer },
        mixin: internals.traceFields
    }, options.destination ?? pino.destination({ dest: 1, sync: false }));
};


// Resolves once every line logged so far is written; the orderly exit waits for it.
export const flush = function (logger: Logger): Promise<void> {

    return new Promise((resolve) => {

        logger.flush(() => resolve());                  // A failed write is not retried on the way out
    });
};


// For exits that cannot wait (a second signal, the watchdog, a fatal start-up error): writes what
// is queued before process.exit(). A write already handed to the OS is not waited for.
export const flushSync = function (logger: Logger): void {

    const stream = (logger as unknown as Record<symbol, { flushSync?: () => void }>)[pino.symbols.streamSym];
    try {
        stream?.flushSync?.();
    }
    catch {
        // Nothing more can be done on the way out
    }
};
