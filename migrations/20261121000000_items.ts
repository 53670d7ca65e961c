import type { Knex } from 'knex';


// Schema changes follow expand/contract: during a rolling deploy the previous version runs against
// this schema, so a migration only adds (nullable or defaulted columns, new tables, indexes built
// concurrently); removals wait for a later release that no longer reads them.

export const up = async function (knex: Knex): Promise<void> {

    await knex.schema.createTable('items', (table) => {

        table.uuid('id').primary();                         // UUIDv7, assigned by the service: time-ordered, so the key is the pagination order
        table.string('name', 200).notNullable();
        table.string('description', 2000).nullable();
        table.integer('quantity').notNullable().defaultTo(0);
        table.integer('version').notNullable().defaultTo(1);
        table.timestamp('created_at', { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
        table.check('?? >= 0', ['quantity'], 'items_quantity_not_negative');
        table.check('?? >= 1', ['version'], 'items_version_positive');
        table.check('char_length(??) >= 1', ['name'], 'items_name_not_empty');
    });

    await knex.schema.createTable('idempotency_keys', (table) => {

        table.string('key', 255).primary();
        table.string('request_hash', 64).notNullable();
        table.smallint('status_code').nullable();          // Filled in the same transaction that claims the key
        table.jsonb('response').nullable();
        table.timestamp('created_at', { useTz: true, precision: 3 }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('expires_at', { useTz: true, precision: 3 }).notNullable().index();
    });
};


export const down = async function (knex: Knex): Promise<void> {

    await knex.schema.dropTable('idempotency_keys');
    await knex.schema.dropTable('items');
};
