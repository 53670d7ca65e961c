import fc from 'fast-check';

import type { Operation, Request, Schema } from './document.ts';


// Values from a schema of the document: valid ones built from its constraints, and hostile ones
// (wrong types, broken patterns, NUL, lone surrogates, huge values) for breaking one constraint at
// a time. Which of them the document calls valid is decided by the document, not here.

export interface Hints {
    // Values the service already knows, offered alongside the generated ones: ids of stored items, so
    // that a valid request can reach an item and not only answer 404.
    readonly values: Record<string, readonly unknown[]>;
}


const internals = {

    defined: (record: Record<string, unknown>) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)),

    // Header values as HTTP carries them: visible ASCII, inner spaces, none around (RFC 9110 5.5).
    fieldValue: (value: unknown) => typeof value === 'number' || (typeof value === 'string' && /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/.test(value)),

    // A hostile value as HTTP can carry it, still hostile: a filter would mostly spin. Node's parser refuses
    // a request line or headers over 16 KiB with a bare 400 before the service sees them (the README says
    // so), so values in the URL and headers keep 600 characters (at most 7.2 KB percent-encoded), still
    // far above any bound the document sets there; bodies go up to 70 KB (413).
    asFieldValue: (value: unknown) => {

        const text = typeof value === 'string' ? (internals.fieldValue(value) ? value : '') : typeof value === 'number' ? value : JSON.stringify(value);
        return typeof text === 'string' ? internals.truncate(text) : text;
    },

    asSegment: (value: unknown) => {

        const text = internals.segment(value) ? value : String(value).isWellFormed() ? '%' : String(value).toWellFormed();
        return typeof text === 'string' ? internals.truncate(text) : text;
    },

    truncate: (text: string) => [...text].slice(0, 600).join(''),

    // What a URL can carry as a path segment or query value unchanged: no lone surrogate (no UTF-8 form),
    // not empty, "." or ".." (which URL resolution removes).
    segment: (value: unknown) => !['', '.', '..'].includes(String(value)) && String(value).isWellFormed(),

    // A string of this many characters cycled from a sample: fast-check's own sizes stay far below the
    // bounds, where the interesting cases are.
    stretch(sample: string, length: number): string {

        const characters = [...sample];
        return characters.length ? Array.from({ length }, (_, i) => characters[i % characters.length]).join('') : sample;
    },

    // Characters that break naive text handling; all are valid text except the last three.
    odd: ['\u{1F600}', '\u{1F469}\u200D\u{1F4BB}', 'e\u0301', '\u202E', '\uFEFF', '\uFFFF', '\uFFFE', '\u0007', '\r\n', '\t', ' ', '\u00A0', '"', '\\', '\u{10FFFF}', 'ß', '\u0000', '\ud800', '\udfff'],

    string(schema: Schema): fc.Arbitrary<string> {

        if (schema.pattern) {
            // fast-check's sample of the pattern, or that sample stretched toward the bounds, or odd characters
            // instead; a variant the pattern refuses falls back to the sample (a filter would spin on a UUID).
            const pattern = new RegExp(schema.pattern, 'u');
            const variants = fc.oneof(
                fc.constant(null),
                fc.integer({ min: 1, max: 2100 }),
                fc.array(fc.constantFrom(...internals.odd), { minLength: 1, maxLength: 8 }).map((parts) => parts.join(''))
            );

            return fc.tuple(fc.stringMatching(new RegExp(schema.pattern)), variants).map(([sample, variant]) => {

                const candidate = variant === null ? sample : typeof variant === 'number' ? internals.stretch(sample, variant) : variant;
                const length = [...candidate].length;
                return pattern.test(candidate) && length >= (schema.minLength ?? 0) && length <= (schema.maxLength ?? Infinity) ? candidate : sample;
            });
        }

        // Any string the bounds allow, odd ones included: the document alone decides what is valid.
        const bounds = { minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) };
        return fc.oneof(
            fc.string({ ...bounds, unit: 'grapheme-ascii' }),
            fc.string({ ...bounds, unit: 'binary' }),
            fc.array(fc.constantFrom(...internals.odd), { minLength: Math.max(bounds.minLength, 1), maxLength: Math.max(bounds.maxLength, 1) }).map((parts) => parts.join(''))
                .filter((text) => [...text].length >= bounds.minLength && [...text].length <= (schema.maxLength ?? Infinity))
        );
    },

    object(schema: Schema, hints: Hints): fc.Arbitrary<Record<string, unknown>> {

        const properties = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, property]) => [name, valid(property, hints, name)]));
        return fc.record(properties, { requiredKeys: schema.required ?? [] })
            .filter((value) => Object.keys(value).length >= (schema.minProperties ?? 0)) as fc.Arbitrary<Record<string, unknown>>;
    }
};


export const valid = function (schema: Schema, hints: Hints, name?: string): fc.Arbitrary<unknown> {

    const known = name ? hints.values[name] ?? [] : [];
    const generated = (() => {

        if (schema.enum) {
            return fc.constantFrom(...schema.enum);
        }

        switch (schema.type) {
            case 'string': return internals.string(schema);
            case 'integer': return fc.oneof(
                fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 - 1 }),
                fc.constantFrom(...[schema.minimum, schema.maximum].filter((bound) => bound !== undefined))
            );
            case 'boolean': return fc.boolean();
            case 'object': return internals.object(schema, hints);
            default: throw new Error(`No generator for schema ${JSON.stringify(schema)}`);
        }
    })();

    const some = known.length ? fc.oneof(generated, fc.constantFrom(...known)) : generated;
    return schema.nullable ? fc.oneof(some, fc.constant(null)) : some;
};


// Values of every JSON type, odd text and huge values: most break some schema, and the document says which.
export const hostile = function (schema: Schema, hints: Hints): fc.Arbitrary<unknown> {

    const near = schema.type === 'string' ? [
        valid(schema, hints).chain((value) => fc.tuple(fc.nat(), fc.constantFrom('\u0000', '\ud800', '\udc00', '\udbff\u0041')).map(([at, bad]) => {

            const text = String(value);
            const index = at % (text.length + 1);
            return text.slice(0, index) + bad + text.slice(index);
        })),
        fc.integer({ min: 1, max: 70_000 }).chain((length) => fc.constantFrom('x', '\u{1F600}', '\u0000').map((unit) => unit.repeat(length))),
        fc.constant('')
    ] : [];

    const numeric = schema.type === 'integer' ? [
        fc.constantFrom(...[schema.minimum, schema.maximum].filter((bound) => bound !== undefined).flatMap((bound) => [bound! - 1, bound! + 1, bound! + 0.5])),
        fc.constantFrom(2 ** 53 + 2, 1e308, -1e308, 1.5)
    ] : [];

    return fc.oneof(
        ...near,
        ...numeric,
        fc.constantFrom(null, true, false, 0, -1, '3', [], {}, ['a'], { name: 'a' }),
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer()
    );
};


// A valid request for an operation: every required parameter and some of the optional ones, a body
// when it takes one. Header values are visible ASCII without surrounding spaces, as HTTP carries them.
export const request = function (operation: Operation, hints: Hints): fc.Arbitrary<Request> {

    const parameter = (location: string) => Object.fromEntries(operation.parameters.filter((p) => p.in === location).map((p) => {

        const value = valid(p.schema, hints, p.name);
        const transportable = location === 'header' ? value.filter(internals.fieldValue) : value;
        return [p.name, p.required ? transportable : fc.option(transportable, { nil: undefined })];
    }));

    return fc.record({
        params: fc.record(parameter('path')),
        query: fc.record(parameter('query')),
        headers: fc.record(parameter('header')),
        body: operation.body ? valid(operation.body, hints) : fc.constant(undefined)
    }).map(({ params, query, headers, body }) => ({
        method: operation.method,
        path: operation.path,
        params: internals.defined(params),
        query: internals.defined(query),
        headers: internals.defined(headers),
        ...(body === undefined ? {} : { body })
    }));
};


// One constraint broken: a parameter or body property replaced by a hostile value or removed, a
// property the schema does not have, or a body that is not an object. The document decides whether
// the result is invalid; the property keeps only those it calls invalid.
export const mutation = function (operation: Operation, hints: Hints): fc.Arbitrary<Request> {

    // Arbitraries are built once per operation: building one compiles its patterns, far slower than drawing.
    const mutations: fc.Arbitrary<(request: Request) => Request>[] = operation.parameters.map((p) => {

        const location = p.in === 'path' ? 'params' : p.in === 'query' ? 'query' : 'headers';
        const carried = (value: unknown) => (value === undefined ? value : p.in === 'header' ? internals.asFieldValue(value) : internals.asSegment(value));
        return fc.option(hostile(p.schema, hints), { nil: undefined }).map((value) => (request: Request) => {

            const changed = { ...request[location] };
            if (value === undefined) {
                delete changed[p.name];
            }
            else {
                changed[p.name] = carried(value);
            }

            return { ...request, [location]: changed };
        });
    });

    const body = operation.body;
    if (body) {
        const names = Object.keys(body.properties ?? {});
        const property = (name: string, value: unknown) => (request: Request) => {

            const changed = { ...(request.body as object) } as Record<string, unknown>;
            if (value === undefined) {
                delete changed[name];
            }
            else {
                Object.defineProperty(changed, name, { value, enumerable: true, configurable: true, writable: true });
            }

            return { ...request, body: changed };
        };

        mutations.push(...names.map((name) => fc.option(hostile(body.properties![name]!, hints), { nil: undefined }).map((value) => property(name, value))));
        mutations.push(fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((name) => !names.includes(name)), hostile({ type: 'string' }, hints)).map(([name, value]) => property(name, value)));
        mutations.push(hostile(body, hints).map((value) => (request: Request) => ({ ...request, body: value })));
        mutations.push(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/json-patch+json')
            .map((type) => (request: Request) => ({ ...request, headers: { ...request.headers, 'content-type': type } })));
    }

    return fc.tuple(request(operation, hints), fc.oneof(...mutations)).map(([base, mutate]) => mutate(base));
};
