import { existsSync } from 'node:fs';
import { join } from 'node:path';

import * as Cache from './cache.ts';


// podman with the configuration and storage .ci/image-build.sh set up (.ci/podman-env.sh): the
// project's own storage (the built images and their layer cache) and containers.conf, for running
// containers, or containers-build.conf, for builds (host network, npm's CA mounts).

const internals = {
    dir: Cache.dir('containers')
};


export const env = function (purpose: 'run' | 'build' = 'run'): { CONTAINERS_CONF: string; CONTAINERS_STORAGE_CONF: string } {

    const containersConf = join(internals.dir, purpose === 'run' ? 'containers.conf' : 'containers-build.conf');
    const storageConf = join(internals.dir, 'storage.conf');
    if (!existsSync(containersConf) || !existsSync(storageConf)) {
        throw new Error(`no podman configuration in ${internals.dir}: run .ci/image-build.sh first`);
    }

    return { CONTAINERS_CONF: containersConf, CONTAINERS_STORAGE_CONF: storageConf };
};
