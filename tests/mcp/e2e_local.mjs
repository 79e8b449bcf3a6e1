// mcp_e2e_local: the official MCP TypeScript SDK client drives `thrum mcp serve` against one
// real daemon: startup refusals, initialize, tools/list, every tool, the error cases, a push
// for a local message, and a message sent while the server was down.
// Usage: node e2e_local.mjs PATH/TO/thrum
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  Repo, check, connect, failed, loadSdk, rawServe, tempBase, thrumBin, tool,
} from './lib.mjs';

const sdk = await loadSdk();
const thrum = thrumBin();
const base = tempBase('local');
const repo = new Repo(thrum, 'repo', base);
const clients = [];
const open = async (agent) => { const c = await connect(sdk, repo, agent); clients.push(c); return c; };

try {
  await check('refuses to start when the daemon is not running', async () => {
    const r = await rawServe(repo, { THRUM_NAME: 'bob' }, '');
    assert.equal(r.code, 1);
    assert.equal(r.out, '', 'nothing on stdout (it is the MCP channel)');
    assert.match(r.err, /^thrum mcp serve: the daemon is not running .*start it with: thrum daemon start\n$/);
  });

  repo.start();
  repo.register('alice');
  repo.register('bob');

  await check('refuses to start for an unknown agent', async () => {
    const r = await rawServe(repo, { THRUM_NAME: 'nobody' }, '');
    assert.equal(r.code, 1);
    assert.match(r.err, /^thrum mcp serve: unknown agent "nobody": register it first/);
  });

  await check('initialize negotiates 2025-06-18 with a client that asks for it', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
    const r = await rawServe(repo, { THRUM_NAME: 'bob' },
      `${JSON.stringify(init)}\n{oops\n{"jsonrpc":"2.0","id":2,"method":"ping"}\n`);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].result.protocolVersion, '2025-06-18');
    assert.equal(lines[1].error.code, -32700, 'a bad line is a parse error, not the end');
    assert.deepEqual(lines[2], { jsonrpc: '2.0', id: 2, result: {} });
  });

  const bob = await open('bob');

  await check('initialize: server info, tools, resources and the claude/channel capability', async () => {
    assert.equal(bob.client.getServerVersion().name, 'thrum');
    const caps = bob.client.getServerCapabilities();
    assert.ok(caps.tools);
    assert.equal(caps.resources.subscribe, true);
    assert.deepEqual(caps.experimental['claude/channel'], {});
    assert.match(bob.client.getInstructions(), /@bob/);
  });

  await check('tools/list: the six tools, each with an inputSchema, ≤ 6 KB in all', async () => {
    const l = await bob.client.listTools();
    assert.deepEqual(l.tools.map((t) => t.name),
      ['send_message', 'check_messages', 'wait_for_message', 'list_agents', 'message_status', 'list_peers']);
    for (const t of l.tools) assert.equal(t.inputSchema.type, 'object', t.name);
    const size = Buffer.byteLength(JSON.stringify(l));
    assert.ok(size <= 6144, `tools/list is ${size} bytes`);
    console.log(`     tools/list: ${size} bytes`);
  });

  let sent;
  await check('send_message: returns message_id, thread_id and recipients', async () => {
    const r = await tool(bob, 'send_message', { to: '@alice', content: 'hello from bob' });
    assert.ok(!r.isError, JSON.stringify(r));
    sent = r.structuredContent;
    assert.match(sent.message_id, /^msg_/);
    assert.ok('thread_id' in sent);
    assert.deepEqual(sent.recipients, ['alice']);
    assert.deepEqual(JSON.parse(r.content[0].text), sent, 'text content mirrors structuredContent');
  });

  await check('message_status: delivered, then read once alice reads it', async () => {
    let r = await tool(bob, 'message_status', { message_id: sent.message_id });
    assert.deepEqual(r.structuredContent.recipients.map((x) => [x.agent_id, x.state]), [['alice', 'delivered']]);
    repo.json('alice', ['inbox']);
    r = await tool(bob, 'message_status', { message_id: sent.message_id });
    assert.equal(r.structuredContent.recipients[0].state, 'read');
    assert.ok(r.structuredContent.recipients[0].read_at);
  });

  await check('push: a local message arrives as notifications/claude/channel and resources/updated', async () => {
    await bob.client.subscribeResource({ uri: 'thrum://inbox' });
    const m = repo.json('alice', ['send', 'review PR 12 please', '--to', '@bob']);
    const n = await bob.next((x) => x.method === 'notifications/claude/channel');
    assert.equal(n.params.content, 'review PR 12 please');
    assert.equal(n.params.meta.message_id, m.message_id);
    assert.equal(n.params.meta.from, 'alice');
    const u = await bob.next((x) => x.method === 'notifications/resources/updated');
    assert.equal(u.params.uri, 'thrum://inbox');
    const res = await bob.client.readResource({ uri: 'thrum://inbox' });
    const inbox = JSON.parse(res.contents[0].text);
    assert.ok(inbox.messages.some((x) => x.message_id === m.message_id));
  });

  await check('push: a broadcast to @everyone is pushed to the other agents', async () => {
    const alice = await open('alice');
    const m = repo.json('bob', ['send', 'standup in 5', '--to', '@everyone']);
    const n = await alice.next((x) => x.method === 'notifications/claude/channel' && x.params.meta.message_id === m.message_id);
    assert.equal(n.params.content, 'standup in 5');
    await alice.client.close();
  });

  await check('check_messages: peek shows without marking read; default marks read', async () => {
    let r = await tool(bob, 'check_messages', { peek: true });
    const ids = r.structuredContent.messages.map((x) => x.message_id);
    assert.ok(ids.length >= 1, JSON.stringify(r));
    r = await tool(bob, 'check_messages', { peek: true });
    assert.deepEqual(r.structuredContent.messages.map((x) => x.message_id), ids, 'peek did not mark read');
    r = await tool(bob, 'check_messages', {});
    assert.equal(r.structuredContent.marked_read, ids.length);
    r = await tool(bob, 'check_messages', {});
    assert.deepEqual(r.structuredContent.messages, []);
    r = await tool(bob, 'check_messages', { unread_only: false, limit: 1 });
    assert.equal(r.structuredContent.messages.length, 1);
  });

  await check('wait_for_message: returns at once when something is unread', async () => {
    const m = repo.json('alice', ['send', 'already here', '--to', '@bob']);
    const r = await tool(bob, 'wait_for_message', { timeout: 600 });
    assert.equal(r.structuredContent.status, 'received');
    assert.equal(r.structuredContent.messages[0].message_id, m.message_id);
    assert.equal(r.structuredContent.messages[0].body, 'already here');
  });

  await check('wait_for_message: wakes for a message sent while it waits', async () => {
    const pending = tool(bob, 'wait_for_message', { timeout: 30 });
    // Other requests are still answered while the wait blocks.
    const agents = await tool(bob, 'list_agents');
    assert.ok(!agents.isError);
    const m = repo.json('alice', ['send', 'wake up', '--to', '@bob']);
    const r = await pending;
    assert.equal(r.structuredContent.status, 'received');
    assert.equal(r.structuredContent.messages[0].message_id, m.message_id);
  });

  await check('wait_for_message: timeout when nothing comes', async () => {
    const r = await tool(bob, 'wait_for_message', { timeout: 1 });
    assert.equal(r.structuredContent.status, 'timeout');
    assert.deepEqual(r.structuredContent.messages, []);
  });

  await check('list_agents: both agents with status; list_peers: none yet', async () => {
    const r = await tool(bob, 'list_agents');
    const names = r.structuredContent.agents.map((a) => a.name).sort();
    assert.deepEqual(names, ['alice', 'bob']);
    const me = r.structuredContent.agents.find((a) => a.name === 'bob');
    assert.equal(me.me, true);
    assert.equal(me.local, true);
    assert.ok(['active', 'offline'].includes(me.status));
    const p = await tool(bob, 'list_peers');
    assert.deepEqual(p.structuredContent, { peers: [] });
  });

  await check('errors: an unknown recipient is a tool error with the CLI\'s message', async () => {
    const cli = repo.run(['send', 'x', '--to', '@nobody'], { THRUM_NAME: 'bob' });
    assert.equal(cli.code, 1);
    const cliMsg = cli.err.replace(/^Error: /, '').trim();
    const r = await tool(bob, 'send_message', { to: '@nobody', content: 'x' });
    assert.equal(r.isError, true);
    assert.equal(r.content[0].text, cliMsg);
  });

  await check('errors: bad arguments are tool errors naming the argument', async () => {
    const cases = [
      ['send_message', { to: '@alice' }, /content is required/],
      ['send_message', { to: 7, content: 'x' }, /to must be a string or an array/],
      ['check_messages', { limit: 0 }, /limit must be between 1 and 100/],
      ['check_messages', { peek: 'yes' }, /peek must be true or false/],
      ['wait_for_message', { timeout: 601 }, /timeout must be between 0 and 600/],
      ['wait_for_message', { timeout: 'soon' }, /timeout must be a number/],
      ['message_status', {}, /message_id is required/],
      ['message_status', { message_id: 'msg_NOPE' }, /message not found: msg_NOPE/],
      ['list_agents', { extra: 1 }, /unknown argument 'extra'/],
      ['no_such_tool', {}, /unknown tool 'no_such_tool'/],
    ];
    for (const [name, args, re] of cases) {
      const r = await tool(bob, name, args);
      assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}: ${JSON.stringify(r)}`);
      assert.match(r.content[0].text, re);
    }
    // An unknown resource is MCP's "resource not found" (-32002).
    await assert.rejects(bob.client.readResource({ uri: 'thrum://nope' }),
      (e) => e.code === -32002 && /unknown resource/.test(e.message));
    // The server is still there.
    assert.deepEqual(await bob.client.ping(), {});
  });

  await check('a message sent while the server was down is shown by check_messages', async () => {
    await bob.client.close();
    const m = repo.json('alice', ['send', 'while you were out', '--to', '@bob']);
    const again = await open('bob');
    const r = await tool(again, 'check_messages', { peek: true });
    assert.ok(r.structuredContent.messages.some((x) => x.message_id === m.message_id && x.body === 'while you were out'),
      JSON.stringify(r.structuredContent));
  });
  await check('push survives a daemon restart (the server resubscribes)', async () => {
    const c = await open('bob');
    repo.stop();
    repo.start();
    // The server notices within a second and resubscribes; until then messages wait in the
    // inbox. Send until one is pushed (each attempt is a real message; none is lost).
    let pushed = null;
    for (let i = 0; i < 40 && !pushed; i++) {
      const m = repo.json('alice', ['send', `after restart ${i}`, '--to', '@bob']);
      pushed = await c.next((x) => x.method === 'notifications/claude/channel' &&
        x.params.meta.message_id === m.message_id, 500).catch(() => null);
    }
    assert.ok(pushed, `no push after the restart; server stderr: ${c.stderr()}`);
    assert.match(c.stderr(), /push connection to the daemon restored/);
    const r = await tool(c, 'check_messages', { peek: true, limit: 100 });
    assert.ok(!r.isError, JSON.stringify(r));
  });
} finally {
  for (const c of clients) await c.client.close().catch(() => {});
  repo.stop();
  fs.rmSync(base, { recursive: true, force: true });
}
const n = failed();
console.log(n ? `${n} check(s) failed` : 'all checks passed');
process.exit(n ? 1 : 0);
