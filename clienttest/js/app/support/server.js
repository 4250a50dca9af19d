// Builds cmd/maoga and runs it for the application suite: a free port on 127.0.0.1, a fresh temporary
// DATA_DIR (so the embedded store starts empty every run), cheap bcrypt, and a fast matcher so that
// matching, status updates and expiry can be watched within seconds.
//
//   APP_URL=http://host:port  use a server that is already running (nothing is built or started;
//                             the JWT secret and the timing settings below must then match it)
//   SERVER_LOG=1              copy the server's log to stderr while the tests run
//
// The server's log is also kept in memory: a failing test prints what the server logged during it.

import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const jsRoot = path.resolve(here, "..", ".."); // clienttest/js

/** The settings the tests rely on; exported so tests can compute their waits from them. */
export const SETTINGS = {
  JWT_SECRET: "app-suite-secret-0123456789abcdef",
  BCRYPT_COST: "4",
  LOG_LEVEL: "info",
  // chat: a small message limit so the rate-limit test crosses it quickly
  CHAT_MESSAGE_LIMIT: "12",
  CHAT_MESSAGE_WINDOW: "10s",
  CHAT_TYPING_LIMIT: "8",
  CHAT_TYPING_WINDOW: "10s",
  // chat rooms one connection may be in at once
  CHAT_MAX_JOINED: "4",
  // matchmaking: rounds every 100 ms, status every 500 ms, relaxation after 1 s, expiry after 5 s
  MATCH_TICK: "100ms",
  MATCH_STATUS_INTERVAL: "500ms",
  MATCH_MAX_SEARCH: "5s",
  MATCH_RELAXATION: "0s:100,1s:*",
};
export const MATCH_MAX_SEARCH_MS = 5000;
export const MATCH_STATUS_INTERVAL_MS = 500;
export const CHAT_MESSAGE_LIMIT = 12;
export const CHAT_TYPING_LIMIT = 8;
export const CHAT_MAX_JOINED = 4;

let child = null;
let tmpDir = null;
let baseURL = null;
const logLines = [];
const MAX_LOG_LINES = 5000;

export function getBaseURL() {
  if (!baseURL) throw new Error("server under test is not started");
  return baseURL;
}

export function logMark() {
  return logLines.length;
}

export function logSince(mark, max = 60) {
  const lines = logLines.slice(mark);
  return lines.slice(Math.max(0, lines.length - max));
}

function findModuleRoot(start) {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, "go.mod"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no go.mod above ${start}`);
    dir = parent;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
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

function collect(stream) {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop();
    for (const line of parts) {
      logLines.push(line);
      if (logLines.length > MAX_LOG_LINES) logLines.splice(0, logLines.length - MAX_LOG_LINES);
      if (process.env.SERVER_LOG) process.stderr.write(`[server] ${line}\n`);
    }
  });
}

// Ready means /healthz answers 200: REST and Socket.IO share the port, so the socket side is up too.
async function waitUntilHealthy(url, proc, ms) {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before it was healthy:\n` +
        logLines.slice(-40).join("\n"));
    }
    try {
      const res = await fetch(url + "/healthz");
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not healthy within ${ms} ms (${last}):\n${logLines.slice(-40).join("\n")}`);
}

export async function startServer() {
  if (process.env.APP_URL) {
    baseURL = process.env.APP_URL.replace(/\/+$/, "");
    return;
  }
  const root = findModuleRoot(jsRoot);
  tmpDir = mkdtempSync(path.join(os.tmpdir(), "maoga-appsuite-"));
  const bin = path.join(tmpDir, "maoga");
  await run("go", ["build", "-o", bin, "./cmd/maoga"], { cwd: root });
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || tmpDir,
    TMPDIR: process.env.TMPDIR || os.tmpdir(),
    ...SETTINGS,
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: path.join(tmpDir, "data"),
    SHUTDOWN_TIMEOUT: "5s",
  };
  child = spawn(bin, [], { cwd: tmpDir, env, stdio: ["ignore", "pipe", "pipe"] });
  collect(child.stdout);
  collect(child.stderr);
  child.on("error", (err) => logLines.push(`spawn error: ${err.message}`));
  const url = `http://127.0.0.1:${port}`;
  // the embedded store creates its files on first start
  await waitUntilHealthy(url, child, 60000);
  baseURL = url;
}

export async function stopServer() {
  const proc = child;
  child = null;
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 8000);
    await exited;
    clearTimeout(timer);
  }
  if (tmpDir) {
    rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = null;
  }
}

process.on("exit", () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
});
