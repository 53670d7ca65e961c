// The service's bootstrap with @opentelemetry/auto-instrumentations-node in place of the direct
// instrumentation packages. The variant sets OTEL_NODE_ENABLED_INSTRUMENTATIONS=http,pg, so every
// other instrumentation is disabled; http and pg are configured as the service configures them, and
// spans are named by route as the service names them. Only the benchmark starts it, to measure what
// the packaged set costs in start time, memory and req/s.

import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';

import * as Telemetry from '../src/telemetry.ts';


await Telemetry.start({
    instrumentations: getNodeAutoInstrumentations({
        '@opentelemetry/instrumentation-http': { ignoreIncomingRequestHook: (request) => request.url?.startsWith('/health/') ?? false, ignoreOutgoingRequestHook: () => true },
        '@opentelemetry/instrumentation-pg': { requireParentSpan: true }
    })
});
