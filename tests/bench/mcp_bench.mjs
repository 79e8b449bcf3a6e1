// MCP push latency (issue 14): message sent → `notifications/claude/channel` received by the
// official MCP SDK client connected to `thrum mcp serve`, locally and across a peer link, with
// an anchor measured in the same run, interleaved sample by sample: the same send answered by
// a `message.wait` long poll held on the daemon's socket (what `thrum wait` does). Results are
// reported as ratios against the anchor (docs/benchmarks.md, "MCP"). Not a test; ctest never
// runs it.
//
// Usage: node tests/bench/mcp_bench.mjs PATH/TO/thrum [--samples N]   (Release build)
import fs from 'node:fs';
import {
  DaemonSocket, Repo, connect, loadSdk, pairLocal, tempBase, thrumBin,
} from '../mcp/lib.mjs';

const sdk = await loadSdk();
const thrum = thrumBin();
const argSamples = process.argv.indexOf('--samples');
const samples = argSamples > 0 ? Number(process.argv[argSamples + 1]) : 300;
const warmup = 20;
const base = tempBase('bench');
const now = () => Number(process.hrtime.bigint()) / 1e6;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** One sample: time from just before message.send to the MCP client's channel notification. */
async function mcpSample(sender, from, to, mcp, i) {
  const body = `mcp-${i}-${Math.random()}`;
  const t0 = now();
  const got = mcp.next((n) => n.method === 'notifications/claude/channel' && n.params.content === body, 30000);
  await sender.call('message.send', { caller_agent_id: from, to: [to], content: body });
  await got;
  return now() - t0;
}

/** One anchor sample: the same send, answered by a message.wait held on `waitSock`. The
 *  waiter's earlier messages are read, so whether the daemon takes the wait or the send first,
 *  the wait answers with this message (a wait counts what is unread since a second ago). */
async function anchorSample(sender, from, to, waitSock, waiter, i) {
  const body = `anchor-${i}`;
  const woke = waitSock.call('message.wait', { caller_agent_id: waiter, timeout_ms: 30000 });
  const t0 = now();
  await sender.call('message.send', { caller_agent_id: from, to: [to], content: body });
  const r = await woke;
  if (r.status !== 'received') throw new Error(`anchor wait: ${JSON.stringify(r)}`);
  return now() - t0;
}

async function measure(name, run) {
  const mcp = [], anchor = [];
  for (let i = 0; i < warmup + samples; i++) {
    const [a, b] = await run(i);
    if (i >= warmup) { mcp.push(a); anchor.push(b); }
  }
  const r = {
    name, samples,
    mcp_p50: pct(mcp, 50), mcp_p99: pct(mcp, 99),
    anchor_p50: pct(anchor, 50), anchor_p99: pct(anchor, 99),
  };
  r.ratio_p50 = r.mcp_p50 / r.anchor_p50;
  r.ratio_p99 = r.mcp_p99 / r.anchor_p99;
  console.log(`${name}: MCP push p50 ${r.mcp_p50.toFixed(2)} ms p99 ${r.mcp_p99.toFixed(2)} ms | ` +
    `anchor message.wait p50 ${r.anchor_p50.toFixed(2)} ms p99 ${r.anchor_p99.toFixed(2)} ms | ` +
    `ratio p50 ${r.ratio_p50.toFixed(2)} p99 ${r.ratio_p99.toFixed(2)}`);
  return r;
}

const main = new Repo(thrum, 'main', base);
const api = new Repo(thrum, 'api', base);
const open = [];
try {
  main.start();
  api.start();
  for (const n of ['alice', 'bob', 'carol']) main.register(n);
  api.register('reviewer_api');
  api.register('anchor_api');
  await pairLocal(api, main);
  main.json('', ['peer', 'configure', 'api', 'add-agent', 'reviewer_api']);
  main.json('', ['peer', 'configure', 'api', 'add-agent', 'anchor_api']);

  const sender = await DaemonSocket.open(main.sock);
  const mainWait = await DaemonSocket.open(main.sock);
  const apiWait = await DaemonSocket.open(api.sock);
  const mainMark = await DaemonSocket.open(main.sock);
  const apiMark = await DaemonSocket.open(api.sock);
  open.push(sender, mainWait, apiWait, mainMark, apiMark);
  const bob = await connect(sdk, main, 'bob');
  const reviewer = await connect(sdk, api, 'reviewer_api');

  console.log(`load average at start: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  const local = await measure('local', async (i) => {
    const a = await mcpSample(sender, 'alice', '@bob', bob, i);
    const b = await anchorSample(sender, 'alice', '@carol', mainWait, 'carol', i);
    await mainMark.call('message.markRead', { caller_agent_id: 'carol', all: true });
    return [a, b];
  });
  const peer = await measure('peer', async (i) => {
    const a = await mcpSample(sender, 'alice', '@api:reviewer_api', reviewer, i);
    const b = await anchorSample(sender, 'alice', '@api:anchor_api', apiWait, 'anchor_api', i);
    await apiMark.call('message.markRead', { caller_agent_id: 'anchor_api', all: true });
    return [a, b];
  });
  console.log(`load average at end: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  console.log(JSON.stringify({ local, peer }));
  await bob.client.close();
  await reviewer.client.close();
} finally {
  for (const s of open) s.close();
  main.stop();
  api.stop();
  fs.rmSync(base, { recursive: true, force: true });
}
