import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

import { withDatabase } from './global-setup.ts';


// A fresh, migrated database of its own for the calling test file: a clone of the run's template.

export const create = async function (): Promise<{ url: string; drop: () => Promise<void> }> {

    const templateUrl = inject('templateUrl');
    const template = new URL(templateUrl).pathname.slice(1);
    const name = `${template}_${randomBytes(4).toString('hex')}`;

    const admin = new pg.Client({ connectionString: withDatabase(templateUrl, 'postgres') });
    await admin.connect();
    try {
        await admin.query(`create database ${name} template ${template}`);
    }
    finally {
        await admin.end();
    }

    return {
        url: withDatabase(templateUrl, name),
        drop: async () => {

            const client = new pg.Client({ connectionString: withDatabase(templateUrl, 'postgres') });
            await client.connect();
            await client.query(`drop database if exists ${name} with (force)`);
            await client.end();
        }
    };
};


// The calling file's database: created before its tests, dropped after them.

export const provide = function (): { readonly url: string } {

    const fixture = { url: '' };
    let drop = async () => {};

    beforeAll(async () => {

        const database = await create();
        fixture.url = database.url;
        drop = database.drop;
    });

    afterAll(() => drop());

    return fixture;
};
