import { fileURLToPath } from 'node:url';

import Joi from 'joi';


export interface Config {
    readonly env: 'development' | 'test' | 'production';
    readonly host: string;
    readonly port: number;
    readonly logLevel: string;
    readonly databaseUrl: string | undefined;
    readonly embeddedDatabaseDir: string;
    readonly migrateOnStart: boolean;
    readonly warmup: {
        readonly requests: number;
        readonly budgetMs: number;
    };
    readonly db: {
        readonly poolMax: number;
        readonly acquireTimeoutMs: number;
        readonly connectTimeoutMs: number;
        readonly statementTimeoutMs: number;
        readonly readyPingTimeoutMs: number;
        readonly readyCacheMs: number;
        readonly startRetryMaxMs: number;
    };
    readonly http: {
        readonly keepAliveTimeoutMs: number;
        readonly headersTimeoutMs: number;
        readonly requestTimeoutMs: number;
        readonly responseTimeoutMs: number;
        readonly maxBodyBytes: number;
        readonly acceptors: number;
    };
    readonly load: {
        readonly sampleIntervalMs: number;
        readonly maxEventLoopDelayMs: number;
        readonly maxEventLoopUtilization: number;
        readonly maxHeapUsedBytes: number;
        readonly maxRssBytes: number;
        readonly maxDatabaseWaiting: number;
        readonly maxAcceptQueue: number;
    };
    readonly shutdown: {
        readonly delayMs: number;
        readonly drainTimeoutMs: number;
        readonly cleanupTimeoutMs: number;
    };
    readonly idempotency: {
        readonly ttlMs: number;
        readonly sweepIntervalMs: number;
        readonly sweepBatchSize: number;
    };
}


const ms = (max: number) => Joi.number().integer().min(0).max(max);


// hapi refuses load limits without sampling: a limit turns sampling on, and turning it off is refused
// here, at the edge, naming the variable.
const sampled = Joi.number().min(1).default(100).messages({ 'number.min': 'must be at least 1 when a LOAD_MAX_* limit is set' });


// One entry per variable: the schema is also the documentation of what the service reads.

const internals = {
    schema: Joi.object({
        NODE_ENV: Joi.string().valid('development', 'test', 'production').default('development'),
        HOST: Joi.string().hostname().when('NODE_ENV', { is: 'production', then: Joi.any().default('0.0.0.0'), otherwise: Joi.any().default('127.0.0.1') }),
        PORT: Joi.number().port().default(3000),
        LOG_LEVEL: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').default('info'),
        DATABASE_URL: Joi.string().uri({ scheme: ['postgres', 'postgresql'] })
            .when('NODE_ENV', { is: 'production', then: Joi.required() }),
        EMBEDDED_POSTGRES_DIR: Joi.string().default(fileURLToPath(new URL('../.data/postgres', import.meta.url))),
        MIGRATE_ON_START: Joi.boolean().when('NODE_ENV', { is: 'production', then: Joi.any().default(false), otherwise: Joi.any().default(true) }),
        // Before readiness (src/warmup.ts): the pool opens its connections and the request path runs this
        // many times in process, nothing stored, within the budget. 0 turns it off (development, tests).
        WARMUP_REQUESTS: Joi.number().integer().min(0).max(100_000).when('NODE_ENV', { is: 'production', then: Joi.any().default(2000), otherwise: Joi.any().default(0) }),
        WARMUP_BUDGET_MS: ms(60_000).default(5000),

        DB_POOL_MAX: Joi.number().integer().min(1).max(100).default(10),
        DB_POOL_ACQUIRE_TIMEOUT_MS: ms(60_000).min(1).default(2000),
        DB_CONNECT_TIMEOUT_MS: ms(60_000).min(1).default(2000),
        DB_STATEMENT_TIMEOUT_MS: ms(600_000).default(5000),
        READY_DB_PING_TIMEOUT_MS: ms(10_000).min(1).default(500),
        READY_CACHE_MS: ms(10_000).default(1000),
        DB_START_RETRY_MAX_MS: ms(60_000).min(100).default(5000),

        // Above the 60 s idle timeout of common load balancers, so the balancer closes first.
        HTTP_KEEP_ALIVE_TIMEOUT_MS: ms(3_600_000).min(1).default(65_000),
        HTTP_HEADERS_TIMEOUT_MS: ms(3_600_000).greater(Joi.ref('HTTP_KEEP_ALIVE_TIMEOUT_MS')).default(66_000),
        HTTP_REQUEST_TIMEOUT_MS: ms(3_600_000).min(1).default(30_000),
        // The service's answer deadline once a request is read: past it hapi answers 503 with
        // Retry-After, so a client gets an answer it can retry before its own timeout, whatever the
        // database does (a query may wait for the acquire, statement and read timeouts in turn). Set
        // it below the clients' and balancers' timeouts; 0 turns it off.
        HTTP_RESPONSE_TIMEOUT_MS: ms(600_000).default(10_000),
        HTTP_MAX_BODY_BYTES: Joi.number().integer().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
        // Sockets accepting on the port (src/listener.ts): more than one when a saturated loop must still
        // take new connections quickly; each then sets SO_REUSEPORT, so a second process could share the port.
        HTTP_ACCEPTORS: Joi.number().integer().min(1).max(16).default(1),

        // Load shedding on hapi's own load measurement (src/shedding.ts): past a limit every new request is
        // a 503 with Retry-After, cheap enough that a process at twice its capacity keeps serving what it
        // accepts. 0 turns a limit off. Production sheds at 100 ms of event-loop delay by default, held for 500 ms
        // (src/shedding.ts: one late sample is a stall, not an overload).
        LOAD_SAMPLE_INTERVAL_MS: ms(10_000).default(0)
            .when('LOAD_MAX_EVENT_LOOP_DELAY_MS', { is: Joi.number().greater(0), then: sampled })
            .when('LOAD_MAX_HEAP_USED_BYTES', { is: Joi.number().greater(0), then: sampled })
            .when('LOAD_MAX_RSS_BYTES', { is: Joi.number().greater(0), then: sampled }),
        LOAD_MAX_EVENT_LOOP_DELAY_MS: ms(60_000).when('NODE_ENV', { is: 'production', then: Joi.any().default(100), otherwise: Joi.any().default(0) }),
        // Share of the last 500 ms the event loop was busy. Shedding past it keeps headroom, so accepted
        // requests, new connections and probes are served at once (see src/shedding.ts). Off by default:
        // on a node whose CPU the pod shares, the loop also looks busy while it waits for the CPU, and at
        // 0.85 the soak (70 % of capacity, no CPU limit) had 18,900 of 380,000 requests shed.
        LOAD_MAX_EVENT_LOOP_UTILIZATION: Joi.number().min(0).max(1).default(0),
        LOAD_MAX_HEAP_USED_BYTES: Joi.number().integer().min(0).default(0),
        LOAD_MAX_RSS_BYTES: Joi.number().integer().min(0).default(0),
        // Requests waiting for a pooled connection past which new ones are shed: the queue the event loop
        // does not see when the database, not this process, is the bottleneck. In production, as many as
        // the pool has connections: a bound on the count, not on the time waited, so a burst read in one
        // loop iteration cannot all join the queue (at 2x, p99 246 ms against 520-689 with a 10 ms bound
        // on the oldest wait, under a 400m CPU quota).
        LOAD_MAX_DB_WAITING: Joi.number().integer().min(0).max(100_000).when('NODE_ENV', { is: 'production', then: Joi.any().default(Joi.ref('DB_POOL_MAX')), otherwise: Joi.any().default(0) }),

        // Connections waiting in the listen queues (not yet accepted) past which new requests are shed:
        // their requests have waited already, where no other limit sees them (src/shedding.ts). Read
        // from /proc/self/net/tcp: Linux only, off elsewhere. 0 turns it off.
        LOAD_MAX_ACCEPT_QUEUE: Joi.number().integer().min(0).max(65_535).default(0),

        SHUTDOWN_DELAY_MS: ms(120_000).when('NODE_ENV', { is: 'production', then: Joi.any().default(5000), otherwise: Joi.any().default(0) }),
        SHUTDOWN_DRAIN_TIMEOUT_MS: ms(300_000).default(10_000),
        SHUTDOWN_CLEANUP_TIMEOUT_MS: ms(120_000).min(100).default(5000),

        IDEMPOTENCY_TTL_MS: ms(7 * 24 * 3_600_000).min(1000).default(24 * 3_600_000),
        IDEMPOTENCY_SWEEP_INTERVAL_MS: ms(24 * 3_600_000).min(10).default(60_000),
        IDEMPOTENCY_SWEEP_BATCH_SIZE: Joi.number().integer().min(1).max(100_000).default(1000)
    })
        .unknown(true)              // The environment holds many unrelated variables
        .prefs({ abortEarly: false, convert: true }),

    // The received value is never echoed for DATABASE_URL: it may hold a password.
    describe(detail: Joi.ValidationErrorItem): string {

        const name = String(detail.path[0]);
        const got = detail.context?.value === undefined || name === 'DATABASE_URL' ? '' : ` (got ${JSON.stringify(detail.context.value)})`;
        return `${name}: ${detail.message.replace(/^"[^"]+" /, '')}${got}`;
    }
};


export class ConfigError extends Error {

    readonly problems: string[];

    constructor(problems: string[]) {

        super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
        this.name = 'ConfigError';
        this.problems = problems;
    }
}


export const load = function (env: NodeJS.ProcessEnv = process.env): Config {

    // An empty variable means unset, as in a shell or a Kubernetes manifest with `value: ""`
    const defined = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));

    const { error, value } = internals.schema.validate(defined);
    if (error) {
        throw new ConfigError(error.details.map(internals.describe));
    }

    return {
        env: value.NODE_ENV,
        host: value.HOST,
        port: value.PORT,
        logLevel: value.LOG_LEVEL,
        databaseUrl: value.DATABASE_URL,
        embeddedDatabaseDir: value.EMBEDDED_POSTGRES_DIR,
        migrateOnStart: value.MIGRATE_ON_START,
        warmup: {
            requests: value.WARMUP_REQUESTS,
            budgetMs: value.WARMUP_BUDGET_MS
        },
        db: {
            poolMax: value.DB_POOL_MAX,
            acquireTimeoutMs: value.DB_POOL_ACQUIRE_TIMEOUT_MS,
            connectTimeoutMs: value.DB_CONNECT_TIMEOUT_MS,
            statementTimeoutMs: value.DB_STATEMENT_TIMEOUT_MS,
            readyPingTimeoutMs: value.READY_DB_PING_TIMEOUT_MS,
            readyCacheMs: value.READY_CACHE_MS,
            startRetryMaxMs: value.DB_START_RETRY_MAX_MS
        },
        http: {
            keepAliveTimeoutMs: value.HTTP_KEEP_ALIVE_TIMEOUT_MS,
            headersTimeoutMs: value.HTTP_HEADERS_TIMEOUT_MS,
            requestTimeoutMs: value.HTTP_REQUEST_TIMEOUT_MS,
            responseTimeoutMs: value.HTTP_RESPONSE_TIMEOUT_MS,
            maxBodyBytes: value.HTTP_MAX_BODY_BYTES,
            acceptors: value.HTTP_ACCEPTORS
        },
        load: {
            sampleIntervalMs: value.LOAD_SAMPLE_INTERVAL_MS,
            maxEventLoopDelayMs: value.LOAD_MAX_EVENT_LOOP_DELAY_MS,
            maxEventLoopUtilization: value.LOAD_MAX_EVENT_LOOP_UTILIZATION,
            maxHeapUsedBytes: value.LOAD_MAX_HEAP_USED_BYTES,
            maxRssBytes: value.LOAD_MAX_RSS_BYTES,
            maxDatabaseWaiting: value.LOAD_MAX_DB_WAITING,
            maxAcceptQueue: value.LOAD_MAX_ACCEPT_QUEUE
        },
        shutdown: {
            delayMs: value.SHUTDOWN_DELAY_MS,
            drainTimeoutMs: value.SHUTDOWN_DRAIN_TIMEOUT_MS,
            cleanupTimeoutMs: value.SHUTDOWN_CLEANUP_TIMEOUT_MS
        },
        idempotency: {
            ttlMs: value.IDEMPOTENCY_TTL_MS,
            sweepIntervalMs: value.IDEMPOTENCY_SWEEP_INTERVAL_MS,
            sweepBatchSize: value.IDEMPOTENCY_SWEEP_BATCH_SIZE
        }
    };
};

