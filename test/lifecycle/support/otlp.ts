import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';


// An OTLP/HTTP receiver on loopback that records when each export arrived. 'answer' acknowledges
// like a collector; 'hang' reads the export and never answers, as a collector that is stuck.


export interface Export {
    readonly path: string;
    readonly at: number;                            // Date.now() when the whole body had arrived
    readonly body: string;
}


export interface Receiver {
    readonly url: string;
    readonly exports: Export[];
    close(): Promise<void>;
}


export const receiver = async function (mode: 'answer' | 'hang'): Promise<Receiver> {

    const exports: Export[] = [];
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {

        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => {

            body += chunk;
        });

        req.on('end', () => {

            exports.push({ path: req.url ?? '', at: Date.now(), body });
            if (mode === 'hang') {
                held.push(res);
                return;
            }

            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{}');
        });
    });

    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };

    return {
        url: `http://127.0.0.1:${port}`,
        exports,
        close: () => new Promise((resolve) => {

            server.closeAllConnections();
            server.close(() => resolve());
        })
    };
};


// The names of the spans, and the data points of each metric, in OTLP/JSON exports.

export const spanNames = function (exports: Export[]): string[] {

    return exports.filter((item) => item.path === '/v1/traces').flatMap((item) => {

        const body = JSON.parse(item.body) as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] };
        return body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => span.name)));
    });
};


interface DataPoint {
    readonly attributes?: { key: string; value: { stringValue?: string } }[];
}


export const metricPoints = function (exports: Export[], name: string): Record<string, string>[] {

    return exports.filter((item) => item.path === '/v1/metrics').flatMap((item) => {

        const body = JSON.parse(item.body) as { resourceMetrics: { scopeMetrics: { metrics: { name: string; histogram?: { dataPoints: DataPoint[] }; sum?: { dataPoints: DataPoint[] } }[] }[] }[] };
        return body.resourceMetrics.flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics
            .filter((metric) => metric.name === name)
            .flatMap((metric) => (metric.histogram ?? metric.sum)?.dataPoints ?? [])
            .map((point) => Object.fromEntries((point.attributes ?? []).map(({ key, value }) => [key, value.stringValue ?? ''])))));
    });
};
