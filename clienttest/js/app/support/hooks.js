// Root hooks of the application suite: one cmd/maoga server for the whole run, every test's sockets
// closed after it, and on a failure the server's log lines printed during that test.

import { startServer, stopServer, getBaseURL, logMark, logSince } from "./server.js";
import { closeAll } from "./sockets.js";

let mark = 0;

export const mochaHooks = {
  async beforeAll() {
    this.timeout(300000); // go build on a busy machine
    await startServer();
    console.log(`  cmd/maoga under test at ${getBaseURL()}`);
  },
  async afterAll() {
    this.timeout(15000);
    closeAll();
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
      if (lines.length) console.log(`    server log during "${t.title}":\n      ` + lines.join("\n      "));
    }
  },
};
