import fc from 'fast-check';

import type { Request } from './document.ts';


// A generated request on the wire, and the same request as a curl command: what a failing case prints.

export interface Response {
    status: number;
    headers: Headers;
    contentType: string | null;
    body: unknown;
}


const internals = {

    quote: (text: string) => `'${text.replace(/'/g, `'\\''`)}'`,

    // Lone surrogates and NUL survive as JSON escapes: JSON.stringify writes them as \uXXXX.
    body: (request: Request) => (request.body === undefined ? undefined : JSON.stringify(request.body)),

    target(request: Request): string {

        const path = request.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(request.params[name])));
        const query = new URLSearchParams(Object.entries(request.query).map(([name, value]): [string, string] => [name, String(value)])).toString();
        return query ? `${path}?${query}` : path;
    },

    headers(request: Request): Record<string, string> {

        return {
            ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]))
        };
    }
};


export const curl = function (url: string, request: Request): string {

    const body = internals.body(request);
    return [
        `curl -i -X ${request.method.toUpperCase()} ${internals.quote(url + internals.target(request))}`,
        ...Object.entries(internals.headers(request)).map(([name, value]) => `-H ${internals.quote(`${name}: ${value}`)}`),
        ...(body === undefined ? [] : [`--data-binary ${internals.quote(body)}`])
    ].join(' ');
};


// A request that prints itself as curl wherever fast-check reports it.
export const printable = function (url: string, request: Request): Request {

    return Object.defineProperty({ ...request }, fc.toStringMethod, { value: () => curl(url, request), enumerable: false });
};


export const send = async function (url: string, request: Request): Promise<Response> {

    const body = internals.body(request);
    const res = await fetch(url + internals.target(request), { method: request.method.toUpperCase(), headers: internals.headers(request), ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
        try {
            parsed = JSON.parse(text);
        }
        catch {
            parsed = text;                                          // Not JSON: the schema check reports it
        }
    }

    return { status: res.status, headers: res.headers, contentType: res.headers.get('content-type'), body: parsed };
};
