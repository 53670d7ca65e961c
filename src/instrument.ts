// Loaded with `node --import` before the application, so that the instrumented modules (http,
// @hapi/hapi, pg) are patched before their first import. The ESM loader hook lets the
// instrumentations see the packages the service imports from ESM; it is limited to those, so no
// other module pays for the interception. pg, required by knex through CommonJS, is patched by the
// require hook the SDK installs.

import { register } from 'node:module';

import * as Telemetry from './telemetry.ts';


if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
    register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: ['@hapi/hapi', 'pg'] } });
    Telemetry.start();
}
