// Loaded with `node --import` before the application, so that http, @hapi/hapi and pg are patched
// before their first import. This is the SDK's only entry point: not the `register` module of the
// auto-instrumentations package, whose own SIGTERM handler would end telemetry at the start of the
// drain and lose the spans of the requests still in flight.

import * as Telemetry from './telemetry.ts';


await Telemetry.start();
