// The package ships no types; this covers the part of its programmatic API the benchmark uses.

declare module 'autocannon' {

    export interface RawRequest {
        method?: string;
        path?: string;
        headers?: Record<string, string>;
        body?: string;
    }

    export interface Histogram {
        average: number;
        mean: number;
        stddev: number;
        min: number;
        max: number;
        total: number;
        p50: number;
        p90: number;
        p99: number;
    }

    export interface Options {
        url: string;
        connections?: number;
        pipelining?: number;
        duration?: number;
        timeout?: number;
        requests?: (RawRequest & { setupRequest?: (request: RawRequest) => RawRequest })[];
    }

    export interface Result {
        requests: Histogram;
        latency: Histogram;
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
        '2xx': number;
    }

    // The instance is both a promise of the result and an emitter of progress events.
    export interface Instance extends Promise<Result> {
        on(event: 'reqError', listener: (err: Error & { code?: string }) => void): this;
    }

    function autocannon(options: Options): Instance;

    export default autocannon;
}
