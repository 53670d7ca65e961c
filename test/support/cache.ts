import { homedir } from 'node:os';
import { join } from 'node:path';


// Where the .ci scripts keep what they build and set up (${XDG_CACHE_HOME:-$HOME/.cache}/item-api):
// the chart tools' paths, the podman configuration and storage, the image archives.

export const dir = function (...parts: string[]): string {

    return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'item-api', ...parts);
};
