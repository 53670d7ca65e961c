import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import pg from 'pg';
import type { TestProject } from 'vitest/node';

import * as Db from '../../src/db.ts';
import * as Embedded from '../../src/embedded-db.ts';


declare module 'vitest' {
    export interface ProvidedContext {
        templateUrl: string;
    }
}


// One real PostgreSQL for the run: TEST_DATABASE_URL when given (the role needs CREATEDB), else an
// embedded one. A template database holds the migrated schema; each test file clones it, so files
// run in parallel without seeing each other's rows.

export const setup = async function (project: TestProject): Promise<() => Promise<void>> {

    let serverUrl = process.env.TEST_DATABASE_URL;
    let stop = async () => {};
    if (!serverUrl) {
        // A data folder per run, so two runs in one checkout never share a server; removed afterwards.
        const dir = fileURLToPath(new URL(`../../.data/test-postgres-${process.pid}`, import.meta.url));
        const embedded = await Embedded.start({ dir, database: 'postgres' });
        serverUrl = embedded.url;
        stop = async () => {

            await embedded.stop();
            await rm(dir, { recursive: true, force: true });
            await rm(`${dir}.credentials.json`, { force: true });
        };
    }

    const template = `item_api_template_${process.pid}`;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${template}`);
    await admin.query(`create database ${template}`);

    const templateUrl = withDatabase(serverUrl, template);
    const db = Db.create({ url: templateUrl, poolMax: 2, acquireTimeoutMs: 5000, connectTimeoutMs: 5000, statementTimeoutMs: 0 });
    await db.migrate.latest();
    await db.destroy();

    project.provide('templateUrl', templateUrl);

    return async () => {

        // Clones left by crashed files go with the template.
        const { rows } = await admin.query('select datname from pg_database where datname like $1', [`${template}%`]);
        for (const { datname } of rows.reverse()) {
            await admin.query(`drop database if exists ${admin.escapeIdentifier(datname)} with (force)`);
        }

        await admin.end();
        await stop();
    };
};


export const withDatabase = function (url: string, database: string): string {

    const parsed = new URL(url);
    parsed.pathname = `/${database}`;
    return parsed.toString();
};
