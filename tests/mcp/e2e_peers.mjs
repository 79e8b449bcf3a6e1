// mcp_e2e_peers: two repos, two real daemons paired over the local transport (as
// scripts/demo-run.sh does). The official MCP SDK client, connected to `thrum mcp serve` for
// reviewer_api in repo "api", gets a push for a message coordinator_main sent in repo "main"
// that crossed the link; its reply crosses back, and message_status / list_agents /
// list_peers show the link.
// Usage: node e2e_peers.mjs PATH/TO/thrum
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  Repo, check, connect, failed, loadSdk, pairLocal, tempBase, thrumBin, tool, waitUntil,
} from './lib.mjs';

const sdk = await loadSdk();
const thrum = thrumBin();
const base = tempBase('peers');
// Peer timers ×0.05 (SPEC §7.4, tests only), as the C++ peer e2e tests do.
const daemonEnv = { THRUM_TIME_SCALE: '0.05' };
const main = new Repo(thrum, 'main', base);
const api = new Repo(thrum, 'api', base);
let reviewer;

try {
  main.start(daemonEnv);
  api.start(daemonEnv);
  main.register('coordinator_main', 'coordinator');
  api.register('reviewer_api', 'reviewer');
  await pairLocal(api, main);
  main.json('', ['peer', 'configure', 'api', 'add-agent', 'reviewer_api']);

  reviewer = await connect(sdk, api, 'reviewer_api');

  let pushed;
  await check('push: a message from the other repo arrives as notifications/claude/channel', async () => {
    await reviewer.client.subscribeResource({ uri: 'thrum://inbox' });
    const m = main.json('coordinator_main', ['send', 'Auth module ready for review', '--to', '@api:reviewer_api']);
    const n = await reviewer.next((x) => x.method === 'notifications/claude/channel', 20000);
    assert.equal(n.params.content, 'Auth module ready for review');
    assert.match(n.params.meta.from, /coordinator_main/);
    pushed = n.params.meta;
    await reviewer.next((x) => x.method === 'notifications/resources/updated');
    // The sender sees it delivered across the link.
    const st = await waitUntil(() => {
      const s = main.json('coordinator_main', ['sent', '--limit', '1']);
      const rec = s.messages.find((x) => x.message_id === m.message_id)?.recipients ?? [];
      return rec.length && rec.every((x) => x.state === 'delivered') && rec;
    });
    assert.ok(st, 'sender never saw delivered');
  });

  await check('send_message with reply_to crosses back into the same thread', async () => {
    // A reply needs no `to`: it goes to the parent's author, over the link it came by.
    const r = await tool(reviewer, 'send_message', { content: 'Reviewed: approve', reply_to: pushed.message_id });
    assert.ok(!r.isError, JSON.stringify(r));
    const got = await waitUntil(() => {
      const inbox = main.json('coordinator_main', ['inbox', '--unread']);
      return inbox.messages.find((x) => x.body === 'Reviewed: approve');
    });
    assert.ok(got, 'the reply never reached main');
    assert.ok(got.reply_to, 'it is a reply');
  });

  await check('message_status: per-recipient state of a message across the link', async () => {
    const inbox = await tool(reviewer, 'check_messages', { unread_only: false, peek: true });
    assert.ok(!inbox.isError);
    const s = main.json('coordinator_main', ['sent', '--limit', '5']);
    const id = s.messages.find((x) => x.body === 'Auth module ready for review').message_id;
    // Ask on the sending side with a second server, in main.
    const coord = await connect(sdk, main, 'coordinator_main');
    const r = await waitUntil(async () => {
      const x = await tool(coord, 'message_status', { message_id: id });
      return x.structuredContent.recipients[0]?.state === 'read' && x;
    });
    assert.ok(r, 'reviewer read it (check_messages / reply) but the sender never saw read');
    assert.match(r.structuredContent.recipients[0].agent_id, /reviewer_api/);
    const agents = await tool(coord, 'list_agents');
    const proxy = agents.structuredContent.agents.find((a) => a.name === 'api:reviewer_api');
    assert.ok(proxy, JSON.stringify(agents.structuredContent));
    assert.equal(proxy.local, false);
    assert.equal(proxy.via_peer, 'api');
    const peers = await tool(coord, 'list_peers');
    const p = peers.structuredContent.peers.find((x) => x.name === 'api');
    assert.ok(p, JSON.stringify(peers.structuredContent));
    assert.equal(p.connected, true);
    assert.ok(!JSON.stringify(peers.structuredContent).includes('token'), 'no secrets in list_peers');
    await coord.client.close();
  });
} finally {
  await reviewer?.client.close().catch(() => {});
  main.stop();
  api.stop();
  fs.rmSync(base, { recursive: true, force: true });
}
const n = failed();
console.log(n ? `${n} check(s) failed` : 'all checks passed');
process.exit(n ? 1 : 0);
