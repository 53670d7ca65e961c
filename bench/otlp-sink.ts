import { createServer } from 'node:http';


// Stands in for an OpenTelemetry collector: accepts OTLP/HTTP exports and drops them, so a variant
// can pay the full production cost of tracing (record, batch, serialize, send) with nothing to run.
// An empty body is a valid OTLP protobuf "success" response.

export interface Sink {
    readonly url: string;
    received(): { exports: number; bytes: number };
    stop(): Promise<void>;
}


export const start = async function (): Promise<Sink> {

    const counts = { exports: 0, bytes: 0 };
    const server = createServer((req, res) => {

        req.on('data', (chunk: Buffer) => {

            counts.bytes += chunk.length;
        });

        req.on('end', () => {

            ++counts.exports;
            res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
            res.end();
        });
    });

    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };

    return {
        url: `http://127.0.0.1:${port}`,
        received: () => ({ ...counts }),
        stop: () => new Promise((resolve) => {

            server.closeAllConnections();
            server.close(() => resolve());
        })
    };
};
