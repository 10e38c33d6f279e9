// A real `nanodb serve` for the SDK tests: a temporary data directory with one superuser,
// a free port on 127.0.0.1, the health check awaited; stopped with SIGTERM (which must exit
// 0: a graceful shutdown) and restartable on the same port and directory.
//
// The binary is $NANODB_BIN (scripts/test.sh sets it), else target/debug/nanodb.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "admin-password-1";

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.NANODB_BIN ?? join(HERE, "..", "..", "..", "target", "debug", "nanodb");
/** Longest wait for the server to answer its health check, in milliseconds. */
const START_TIMEOUT_MS = 20_000;

/** A free TCP port on 127.0.0.1 (the OS picks one; it is released before use). */
async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export class NanoServer {
  constructor(dir, port, args) {
    this.dir = dir;
    this.port = port;
    this.args = args;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.log = "";
  }

  /** A fresh server with the superuser ADMIN_EMAIL; `args` go after `serve`. */
  static async start(args = []) {
    if (!existsSync(BIN)) {
      throw new Error(`no nanodb binary at ${BIN}: build it (cargo build -p nanodb-cli) or set NANODB_BIN`);
    }
    const dir = mkdtempSync(join(tmpdir(), "nanodb-sdk-"));
    execFileSync(BIN, ["superuser", "create", ADMIN_EMAIL, ADMIN_PASSWORD, "--dir", dir], {
      stdio: "pipe",
      env: { ...process.env, NANODB_LOG: "warn" },
    });
    const server = new NanoServer(dir, await freePort(), args);
    await server.spawn();
    return server;
  }

  async spawn() {
    this.child = spawn(BIN, ["serve", "--http", `127.0.0.1:${this.port}`, "--dir", this.dir, ...this.args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NANODB_LOG: process.env.NANODB_LOG ?? "warn" },
    });
    this.child.stderr.on("data", (chunk) => {
      this.log += chunk;
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`${this.url}/api/health`);
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (this.child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`nanodb serve did not start:\n${this.log}`);
  }

  /** SIGTERM; resolves once it exited, and throws unless it exited 0. */
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill("SIGTERM");
    const { code, signal } = await this.exited;
    this.child = null;
    if (code !== 0) throw new Error(`nanodb serve exited with ${code ?? signal}:\n${this.log}`);
  }

  /** Stops and starts again on the same port and directory. */
  async restart() {
    await this.stop();
    await this.spawn();
  }

  /** Stops and deletes the data directory. */
  async close() {
    try {
      await this.stop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Polls `check` every 20 ms until it returns a truthy value; throws after `timeoutMs`. */
/** Creates users `<name>@example.com` (password "12345678", `name` set) as `admin`; the
 * records by name. */
export async function createUsers(admin, names) {
  const users = {};
  for (const name of names) {
    users[name] = await admin.collection("users").create({
      email: `${name}@example.com`,
      password: "12345678",
      passwordConfirm: "12345678",
      name,
    });
  }
  return users;
}

export async function eventually(check, timeoutMs = 10_000, what = "a condition") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The JSON payload of a JWT (base64url). */
export function tokenPayload(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}
