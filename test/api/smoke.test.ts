import { expect, it } from 'vitest';
import pg from 'pg';

import * as Database from '../support/database.ts';

it('clones a migrated database', async () => {

    const database = await Database.create();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query('select count(*)::int as n from items');
    await client.end();
    await database.drop();
    expect(rows[0].n).toBe(0);
});
