// Root hooks: one server under test for the whole run; every test's sockets closed after it; on a
// failure, what the server logged during that test is printed.

import { startServer, stopServer, serverKind, getBaseURL, logMark, logSince } from "./server.js";
import { closeAll } from "./util.js";

let mark = 0;

export const mochaHooks = {
  async beforeAll() {
    // building the Go server may take a while on a busy machine
    this.timeout(300000);
    await startServer();
    console.log(`  server under test: ${serverKind()} at ${getBaseURL()}`);
  },
  async afterAll() {
    this.timeout(10000);
    await stopServer();
  },
  beforeEach() {
    mark = logMark();
  },
  afterEach() {
    closeAll();
    const t = this.currentTest;
    if (t && t.state === "failed") {
      const lines = logSince(mark);
      if (lines.length) {
        console.log(`    server log during "${t.title}":\n      ` + lines.join("\n      "));
      }
    }
  },
};
