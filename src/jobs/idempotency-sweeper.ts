import type { Db } from '../db.ts';
import * as Store from '../items/store.ts';
import type { Logger } from '../logger.ts';


export interface Job {
    stop(): Promise<void>;
}


// Removes expired idempotency keys in bounded batches. stop() lets the batch under way finish, takes
// no new one, and resolves when the job is idle: nothing is cut half-way.

export const start = function (options: { db: Db; intervalMs: number; batchSize: number; logger: Logger }): Job {

    const { db, intervalMs, batchSize, logger } = options;
    let stopping = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();

    const sweep = async () => {

        let removed = 0;
        try {
            let batch = batchSize;
            while (!stopping && batch === batchSize) {
                batch = await Store.sweepExpiredKeys(db, batchSize);
                removed += batch;
            }

            if (removed) {
                logger.info({ job: 'idempotency-sweeper', removed }, 'expired idempotency keys removed');
            }
        }
        catch (err) {
            logger.warn({ job: 'idempotency-sweeper', err }, 'idempotency key sweep failed; retrying next interval');
        }
    };

    const schedule = () => {

        timer = setTimeout(() => {

            running = sweep().finally(() => {

                if (!stopping) {
                    schedule();
                }
            });
        }, intervalMs);

        timer.unref();
    };

    schedule();

    return {
        async stop() {

            stopping = true;
            clearTimeout(timer);
            await running;
        }
    };
};
