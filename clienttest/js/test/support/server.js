// Starts the server under test in a child process and stops it again.
//
//   SERVER=go   (default) builds ./cmd/conformance of the Go module this folder lives in and runs
//               `<binary> -suite client -addr 127.0.0.1:<free port>`
//   SERVER=node runs reference-server.js (real socket.io 4.8) on a free port
//   SERVER_URL=http://host:port uses a server that is already running (nothing is started)
//
// The server's output is kept in memory so that a failing test can show what the server logged.

import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const jsRoot = path.resolve(here, "..", ".."); // clienttest/js

let child = null;
let tmpDir = null;
let baseURL = null;
const logLines = [];
const MAX_LOG_LINES = 5000;

export function serverKind() {
  if (process.env.SERVER_URL) return "external";
  return (process.env.SERVER || "go").toLowerCase();
}

export function getBaseURL() {
  if (!baseURL) throw new Error("server under test is not started");
  return baseURL;
}

/** Number of log lines the server has printed so far (a marker for logSince). */
export function logMark() {
  return logLines.length;
}

/** The server's log lines printed since `mark`, at most `max` of the last ones. */
export function logSince(mark, max = 40) {
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

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

function collect(stream, prefix) {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop();
    for (const line of parts) {
      logLines.push(prefix + line);
      if (logLines.length > MAX_LOG_LINES) logLines.splice(0, logLines.length - MAX_LOG_LINES);
      if (process.env.SERVER_LOG) process.stderr.write(`[server] ${prefix}${line}\n`);
    }
  });
}

async function waitUntilAccepting(port, proc, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `server exited (${proc.exitCode ?? proc.signalCode}) before accepting:\n` +
          logLines.slice(-40).join("\n"),
      );
    }
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not accept on port ${port} within ${ms} ms:\n${logLines.slice(-40).join("\n")}`);
}

export async function startServer() {
  const kind = serverKind();
  if (kind === "external") {
    baseURL = process.env.SERVER_URL.replace(/\/+$/, "");
    return;
  }
  const port = await freePort();
  let cmd;
  let args;
  let cwd;
  if (kind === "go") {
    const root = findModuleRoot(jsRoot);
    tmpDir = mkdtempSync(path.join(os.tmpdir(), "maoga-clienttest-"));
    cmd = path.join(tmpDir, "conformance");
    await run("go", ["build", "-o", cmd, "./cmd/conformance"], { cwd: root });
    args = ["-suite", "client", "-addr", `127.0.0.1:${port}`];
    cwd = root;
  } else if (kind === "node") {
    cmd = process.execPath;
    args = [path.join(jsRoot, "reference-server.js"), "-addr", `127.0.0.1:${port}`];
    cwd = jsRoot;
  } else {
    throw new Error(`unknown SERVER=${process.env.SERVER} (want go or node)`);
  }
  child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  collect(child.stdout, "");
  collect(child.stderr, "");
  child.on("error", (err) => logLines.push(`spawn error: ${err.message}`));
  await waitUntilAccepting(port, child, 20000);
  baseURL = `http://127.0.0.1:${port}`;
}

export async function stopServer() {
  const proc = child;
  child = null;
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }
  if (tmpDir) {
    rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = null;
  }
}

// Never leave the server behind, even when mocha is interrupted.
process.on("exit", () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
});
