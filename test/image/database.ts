import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

import { withDatabase } from '../support/global-setup.ts';


// An empty database of its own for the calling file (not a clone of the migrated template): the
// image's migration command, run as the chart's hook Job runs it, creates the schema.

export const provideEmpty = function (): { readonly url: string } {

    const fixture = { url: '' };
    const admin = () => new pg.Client({ connectionString: withDatabase(inject('templateUrl'), 'postgres') });
    const name = `item_api_image_${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {

        const client = admin();
        await client.connect();
        try {
            await client.query(`create database ${name}`);
        }
        finally {
            await client.end();
        }

        fixture.url = withDatabase(inject('templateUrl'), name);
    });

    afterAll(async () => {

        const client = admin();
        await client.connect();
        try {
            await client.query(`drop database if exists ${name} with (force)`);
        }
        finally {
            await client.end();
        }
    });

    return fixture;
};
