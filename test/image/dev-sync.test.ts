import { describe, expect, it } from 'vitest';

import * as Container from './container.ts';


// The dev target (skaffold's file-sync image): what sync needs is there. skaffold copies changed
// files into the running container with tar, as the container's user, so /app must be writable
// by uid 1000 and tar must be on the PATH; node restarts the app itself (--watch).


const image = 'localhost/item-api:dev-sync';


describe(`the dev image ${image}`, () => {

    it('runs node --watch as uid 1000, can write /app and has tar for file sync', async () => {

        const [info] = JSON.parse(await Container.podman(['image', 'inspect', image])) as [{ Size: number; Config: { Cmd: string[]; Entrypoint: string[] | null; User: string } }];
        console.log(`image ${image}: ${(info.Size / 1e6).toFixed(1)} MB`);
        expect(info.Config.Cmd).toEqual(['node', '--watch', '--import', './src/instrument.ts', 'src/main.ts']);
        expect(info.Config.Entrypoint ?? []).toEqual([]);
        expect(info.Config.User).toBe('1000:1000');

        const probe = `
            const fs = require('node:fs');
            fs.writeFileSync('/app/src/synced.txt', 'x');
            const tar = require('node:child_process').execFileSync('tar', ['--version'], { encoding: 'utf8' }).split('\\n')[0];
            process.stdout.write(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), tar }));
        `;
        const result = JSON.parse(await Container.podman(['run', '--rm', '--pull', 'never', '--network', 'none', '--cap-drop', 'ALL', image, 'node', '-e', probe])) as { uid: number; gid: number; tar: string };
        expect(result).toMatchObject({ uid: 1000, gid: 1000, tar: expect.stringMatching(/^tar \(GNU tar\)/) });
    });
});
