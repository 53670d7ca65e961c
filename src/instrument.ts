// Loaded with `node --import` before the application, so that http, @hapi/hapi and pg are patched
// before their first import. This is the SDK's only entry point: not the `register` module of the
// auto-instrumentations package, whose own SIGTERM handler would end telemetry at the start of the
// drain and lose the spans of the requests still in flight.

// The SDK and its instrumentations take a third of a second of CPU to load: with telemetry off they
// are not loaded at all, so that a pod with a bad configuration fails in the time node takes to start.

if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
    const Telemetry = await import('./telemetry.ts');
    Telemetry.start();
}
