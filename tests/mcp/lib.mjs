// Shared by the MCP end-to-end tests and the MCP benchmark: real repos with real daemons
// (through the real CLI), and the official MCP TypeScript SDK client driving `thrum mcp serve`.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Loads the SDK from tests/mcp/node_modules, or explains how to install it. */
export async function loadSdk() {
  try {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
    const types = await import('@modelcontextprotocol/sdk/types.js');
    return { Client, StdioClientTransport, types };
  } catch (e) {
    console.error(`cannot load @modelcontextprotocol/sdk from ${here}/node_modules (${e.message});` +
      ' install it with: scripts/install-deps.sh');
    process.exit(1);
  }
}

export const thrumBin = () => {
  const b = process.argv[2];
  if (!b || !fs.existsSync(b)) {
    console.error('usage: node <test>.mjs PATH/TO/thrum');
    process.exit(2);
  }
  return path.resolve(b);
};

/** A repo in a temp dir with `thrum init` run; stop() stops its daemon and removes it. */
export class Repo {
  constructor(thrum, name, base) {
    this.thrum = thrum;
    this.root = path.join(base, name);
    fs.mkdirSync(this.root, { recursive: true });
    this.run(['init', '-q']);
  }
  /** `thrum args...` in the repo; returns {code, out, err}. */
  run(args, env = {}, input) {
    try {
      const out = execFileSync(this.thrum, args, {
        cwd: this.root, env: { ...process.env, ...env }, input, encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'], timeout: 60000,
      });
      return { code: 0, out, err: '' };
    } catch (e) {
      return { code: e.status ?? -1, out: e.stdout ?? '', err: e.stderr ?? String(e) };
    }
  }
  /** `thrum --json args...` as `agent`; throws unless it exits 0. */
  json(agent, args) {
    const r = this.run(['--json', ...args], agent ? { THRUM_NAME: agent } : {});
    if (r.code !== 0) throw new Error(`thrum ${args.join(' ')} as ${agent}: ${r.out}${r.err}`);
    return JSON.parse(r.out);
  }
  start(env = {}) {
    const r = this.run(['daemon', 'start'], env);
    if (r.code !== 0) throw new Error(`daemon start: ${r.out}${r.err}`);
  }
  stop() { this.run(['daemon', 'stop']); }
  register(name, role = 'agent') { this.json('', ['quickstart', '--name', name, '--role', role]); }
  get sock() { return path.join(this.root, '.thrum', 'var', 'thrum.sock'); }
}

export function tempBase(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `thrum-mcp-${tag}-`));
}

/** The SDK client connected to `thrum mcp serve` in `repo` as `agent`. Every notification
 *  the server sends is kept in `notes`; `next(pred)` waits for one. */
export async function connect(sdk, repo, agent, extraArgs = []) {
  const transport = new sdk.StdioClientTransport({
    command: repo.thrum, args: ['mcp', 'serve', ...extraArgs], cwd: repo.root,
    env: { ...process.env, THRUM_NAME: agent }, stderr: 'pipe',
  });
  let stderr = '';
  const client = new sdk.Client({ name: 'thrum-e2e', version: '1.0.0' }, { capabilities: {} });
  const notes = [];
  const waiters = [];
  client.fallbackNotificationHandler = async (n) => {
    notes.push(n);
    for (const w of [...waiters]) if (w.pred(n)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(n); }
  };
  await client.connect(transport);
  transport.stderr?.on('data', (d) => { stderr += d; });
  const next = (pred, ms = 10000) => {
    const seen = notes.find(pred);
    if (seen) { notes.splice(notes.indexOf(seen), 1); return Promise.resolve(seen); }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (n) => { clearTimeout(t); notes.splice(notes.indexOf(n), 1); resolve(n); } };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`no matching notification within ${ms} ms; got ${JSON.stringify(notes)}; ` +
          `server stderr: ${stderr}`));
      }, ms);
      waiters.push(w);
    });
  };
  return { client, transport, notes, next, stderr: () => stderr };
}

/** Calls a tool and returns its result. */
export const tool = (c, name, args = {}) => c.client.callTool({ name, arguments: args });

/** Runs `thrum mcp serve` as a plain child with `input` lines and returns {code, out, err}. */
export function rawServe(repo, env, input, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const p = spawn(repo.thrum, ['mcp', 'serve'], { cwd: repo.root, env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
    p.stdin.on('error', () => {});  // it may exit (refusing to start) before reading
    p.stdin.end(input);
  });
}

/** A minimal newline-delimited JSON-RPC client for the daemon's socket (benchmarks, anchors). */
export class DaemonSocket {
  static open(sockPath) {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(sockPath, () => resolve(new DaemonSocket(s)));
      s.on('error', reject);
    });
  }
  constructor(s) {
    this.s = s; this.buf = ''; this.id = 1; this.pending = new Map();
    s.setEncoding('utf8');
    s.on('data', (d) => {
      this.buf += d;
      for (let nl; (nl = this.buf.indexOf('\n')) >= 0;) {
        const line = this.buf.slice(0, nl); this.buf = this.buf.slice(nl + 1);
        const m = JSON.parse(line);
        const p = this.pending.get(m.id);
        if (p) { this.pending.delete(m.id); m.error ? p.reject(new Error(m.error.message)) : p.resolve(m.result); }
      }
    });
  }
  call(method, params) {
    const id = this.id++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.s.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }
  close() { this.s.destroy(); }
}

/** Polls `fn` (sync or async) until truthy or `ms` pass. */
export async function waitUntil(fn, ms = 20000, step = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, step));
  }
}

/** Pairs `dialer` with `listener` over the local transport, as scripts/demo-run.sh does. */
export async function pairLocal(listener, dialer) {
  const add = spawn(listener.thrum, ['peer', 'add', '--type', 'local'], { cwd: listener.root });
  let out = '';
  add.stdout.on('data', (d) => { out += d; });
  add.stderr.on('data', (d) => { out += d; });
  const done = new Promise((r) => add.on('close', r));
  const code = await waitUntil(() => (out.match(/--peercode (\S+)/) || [])[1], 20000);
  if (!code) { add.kill(); throw new Error(`peer add printed no peercode: ${out}`); }
  const j = dialer.run(['peer', 'join', '--type', 'local', '--peercode', code, '--repo-path', listener.root]);
  if (j.code !== 0) { add.kill(); throw new Error(`peer join: ${j.out}${j.err}`); }
  const rc = await done;
  if (rc !== 0) throw new Error(`peer add exited ${rc}: ${out}`);
}

let failures = 0;
/** A named check: runs `fn`, prints ok/FAIL, keeps going. */
export async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}\n     ${(e.stack || String(e)).split('\n').join('\n     ')}`);
  }
}
export const failed = () => failures;
