// Test support for the browser tests: builds and starts cmd/maoga on a free port with a fresh embedded
// store, and launches Debian's Chromium through playwright-core (no browser download).
//
//   CHROMIUM=/path/to/chromium   browser to drive (default /usr/bin/chromium; `apt-get install -y chromium`)
//   SERVER_LOG=1                 copy the server's log to stderr
//   SERVER_LOG_LEVEL=debug       the server's LOG_LEVEL (default info)
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const outputDir = path.join(repoRoot, 'test-output', 'web');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling Google's hosts, which this sandbox refuses.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n${stdout}${stderr}`;
        reject(err);
      } else resolve();
    });
  });
}

// startServer builds cmd/maoga (which embeds web/dist) and runs it; stop() kills it and removes its data.
export async function startServer() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'maoga-web-e2e-'));
  const bin = path.join(tmp, 'maoga');
  await run('go', ['build', '-o', bin, './cmd/maoga'], { cwd: repoRoot });
  const port = await freePort();
  const log = [];
  const child = spawn(bin, [], {
    cwd: tmp,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME || tmp,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: path.join(tmp, 'data'),
      JWT_SECRET: 'web-e2e-secret-0123456789abcdef',
      BCRYPT_COST: '4',
      LOG_LEVEL: process.env.SERVER_LOG_LEVEL || 'info',
      MATCH_TICK: '100ms',
      MATCH_STATUS_INTERVAL: '500ms',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      for (const line of chunk.split('\n')) {
        if (!line) continue;
        log.push(line);
        if (log.length > 2000) log.shift();
        if (process.env.SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
      }
    });
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}):\n${log.slice(-40).join('\n')}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server not healthy in 60 s:\n${log.slice(-40).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

// launchBrowser starts headless Chromium. playwright-core's launch() gives every run a fresh, empty
// temporary profile (its own --user-data-dir) and removes it on close.
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export function screenshotDir(name) {
  const dir = path.join(outputDir, name);
  rmSync(dir, { recursive: true, force: true }); // no screenshots left over from an earlier run
  mkdirSync(dir, { recursive: true });
  return dir;
}
