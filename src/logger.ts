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
    }, options.destination ?? pino.destination({ dest: 1, sync: true }));   // Synchronous: the last lines before exit must not be lost
};
