import { expect, it } from 'vitest';

import * as App from '../support/app.ts';


const fixture = App.provide();

const get = async (path: string) => {

    const res = await fetch(`${fixture.app.url}${path}`);
    return { status: res.status, body: await res.json() as any };
};

const create = async (name: string) => {

    const res = await fetch(`${fixture.app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as any).id as string;
};



it('pages in creation order with a default limit of 20, ending with a null cursor', async () => {

    const ids: string[] = [];
    for (let i = 0; i < 45; ++i) {
        ids.push(await create(`item ${i}`));
    }

    const first = await get('/items');
    expect(first.status).toBe(200);
    expect(first.body.items.map((item: { id: string }) => item.id)).toEqual(ids.slice(0, 20));

    const second = await get(`/items?cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((item: { id: string }) => item.id)).toEqual(ids.slice(20, 40));

    const last = await get(`/items?limit=100&cursor=${second.body.nextCursor}`);
    expect(last.body.items.map((item: { id: string }) => item.id)).toEqual(ids.slice(40));
    expect(last.body.nextCursor).toBeNull();

    await fixture.app.db('items').delete();
});

it('sees every pre-existing item exactly once while other clients insert concurrently', async () => {

    const before = new Set<string>();
    for (let i = 0; i < 60; ++i) {
        before.add(await create(`before ${i}`));
    }

    // Writers insert while the reader walks small pages; they stop when the walk ends.
    let walking = true;
    const inserted: string[] = [];
    const writers = Array.from({ length: 3 }, async (_, w) => {

        for (let i = 0; walking && i < 500; ++i) {
            inserted.push(await create(`during ${w}.${i}`));
        }
    });

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
        const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await get(`/items?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...res.body.items.map((item) => item.id));
        cursor = res.body.nextCursor;
        ++pages;
    }
    while (cursor && pages < 500);

    walking = false;
    await Promise.all(writers);

    expect(inserted.length).toBeGreaterThan(0);
    expect(new Set(seen).size).toBe(seen.length);                                   // No item twice
    expect([...before].filter((id) => !seen.includes(id))).toEqual([]);              // No pre-existing item skipped
    expect(seen).toEqual([...seen].sort());                                           // Key order throughout
});

it.each([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=ten', 'limit'],
    ['cursor=%%%', 'cursor'],
    ['cursor=bm90LWEtdXVpZA', 'cursor'],
    ['sort=name', 'sort']
])('rejects %s with 400 naming the field', async (query, field) => {

    const res = await get(`/items?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, field });
});
