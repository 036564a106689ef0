// What the real servers cannot show on demand, with local stand-ins and
// made-up (unsigned) tokens: listeners that throw, a refresh answer whose
// token does not decode, stop() then start() during a refresh, a refresh
// in flight that must not keep the process alive; and TLS checks that
// NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn off.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { AgentRuntime } from '../index.js';
import { env, json, local } from './helpers.mjs';

const INDEX = fileURLToPath(new URL('../index.js', import.meta.url));
const HELPERS = fileURLToPath(new URL('./helpers.mjs', import.meta.url));

/** A token the client can decode (the stand-ins do not check it), expiring in ms. */
function fakeToken(ms, scopes = ['system:token:refresh']) {
  const claims = {
    agentId: 'node-fake', tokenId: 'tok-fake', scopes,
    expiresAt: new Date(Date.now() + ms).toISOString(),
    maxExpiresAt: new Date(Date.now() + 3600000).toISOString(),
  };
  return Buffer.from(JSON.stringify(claims)).toString('base64url');
}

/** Runs a module in a child node: {status, signal, stdout, stderr, ms}. */
function child(code, { extraEnv = {}, killAfterMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, ['--input-type=module', '-e', code],
      { env: { ...process.env, ...extraEnv } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    const kill = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('close', (status, signal) => {
      clearTimeout(kill);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const servers = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});
async function standIn(handler) {
  const s = await local(handler);
  servers.push(s);
  return s;
}

test("listeners that throw: reported, the runtime keeps refreshing, no crash", async () => {
  // in a child: an uncaught throw or an unhandled rejection would end it
  const r = await child(`
    import { AgentRuntime } from ${JSON.stringify(INDEX)};
    import { json, local } from ${JSON.stringify(HELPERS)};
    const fake = ${fakeToken.toString()};
    // every other refresh succeeds (a new 400 ms token), the others are a 500
    const s = await local((req, res) => (s.hits % 2
      ? json(res, 200, { token: fake(400), tokenId: 'tok-fake', agentId: 'node-fake', expiresAt: 'x' })
      : json(res, 500, { error: 'boom', code: 'internal_error' })));
    const rt = new AgentRuntime(fake(400), {
      urls: s.url, refreshBeforeMs: 300, retryMinMs: 50, retryMaxMs: 100,
    });
    const seen = { refresh: 0, error: 0 };
    rt.on('refresh', () => { throw new Error('refresh listener'); });
    rt.on('error', () => { throw new Error('error listener'); });
    rt.on('refresh', () => seen.refresh++);
    rt.on('error', () => seen.error++);
    rt.start();
    await new Promise((res) => setTimeout(res, 1500));
    rt.stop();
    s.close();
    console.log(JSON.stringify(seen));
  `);
  assert.equal(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout);
  assert.ok(seen.refresh >= 2 && seen.error >= 2, r.stdout);
  assert.match(r.stderr, /'refresh' listener threw: refresh listener/);
  assert.match(r.stderr, /'error' listener threw: error listener/);
});

test('a refresh answer whose token does not decode: the old token stays, an error', async () => {
  const s = await standIn((req, res) => json(res, 200,
    { token: 'bm90LWEtdG9rZW4', tokenId: 't', agentId: 'node-fake', expiresAt: 'x' }));
  const token = fakeToken(600000);
  const rt = new AgentRuntime(token, { urls: s.url });
  const claims = rt.getToken();
  await assert.rejects(rt.refresh(), (e) => e.code === 'invalid_token');
  assert.equal(rt.token, token);
  assert.deepEqual(rt.getToken(), claims);

  // the same in the background: reported as an error, still the old token
  const errors = [];
  const bg = new AgentRuntime(fakeToken(400), {
    urls: s.url, refreshBeforeMs: 300, retryMinMs: 50, onError: (e) => errors.push(e),
  });
  const before = bg.token;
  bg.start();
  const t0 = Date.now();
  while (errors.length === 0 && Date.now() - t0 < 3000) await sleep(20);
  bg.stop();
  assert.equal(errors[0]?.code, 'invalid_token');
  assert.equal(bg.token, before);
});

test('stop() then start() during a refresh: no stray aborted error', async () => {
  const silent = await standIn(() => {});
  const errors = [];
  const rt = new AgentRuntime(fakeToken(400), {
    urls: silent.url, refreshBeforeMs: 300, onError: (e) => errors.push(e),
  });
  rt.start();
  const t0 = Date.now();
  while (silent.hits === 0 && Date.now() - t0 < 3000) await sleep(10);
  assert.equal(silent.hits, 1, 'no refresh under way');
  rt.stop();
  assert.equal(rt.start(), true);
  await sleep(300);
  rt.stop();
  assert.deepEqual(errors.map((e) => e.code), []);
});

test('a background refresh in flight does not keep the process alive', async () => {
  const silent = await standIn(() => {});
  const r = await child(`
    import { AgentRuntime } from ${JSON.stringify(INDEX)};
    const fake = ${fakeToken.toString()};
    const rt = new AgentRuntime(fake(60000), { urls: ${JSON.stringify(silent.url)}, timeoutMs: 8000 });
    rt.start(); // due at once: 1 min left, refreshBeforeMs 5 min
    setTimeout(() => {}, 500); // time for the refresh to be sent; then nothing else to do
  `);
  assert.equal(r.signal, null, 'killed: still running after 10 s');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(silent.hits >= 1, 'the refresh never reached the stand-in');
  assert.ok(r.ms < 4000, `${r.ms} ms`);
});

test('NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn off the certificate check', async () => {
  const r = await child(`
    import { Client } from ${JSON.stringify(INDEX)};
    const c = new Client({ urls: ${JSON.stringify(env.leader)}, token: 'a-token' });
    try {
      await c.whoami();
      console.log('answered');
    } catch (e) {
      console.log(e.code);
    }
  `, { extraEnv: { NODE_TLS_REJECT_UNAUTHORIZED: '0' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'connection_failed');
});

test('a runtime checks with a reason: check() is {valid, error}', async () => {
  const s = await standIn((req, res) => json(res, 200, { valid: false, error: 'scope not granted' }));
  const rt = new AgentRuntime(fakeToken(600000), { urls: s.url });
  assert.deepEqual(await rt.check('a:b:c'), { valid: false, error: 'scope not granted' });
  assert.equal(await rt.checkPermission('a:b:c'), false);
});

test('options: ca and caFile together, a refreshTtlMinutes that is not an integer', () => {
  const token = fakeToken(600000);
  assert.throws(() => new AgentRuntime(token, { urls: env.leader, caFile: env.ca, ca: 'PEM' }),
    (e) => e.code === 'invalid_config' && /not both/.test(e.message));
  assert.throws(() => new AgentRuntime(token, { urls: env.leader, refreshTtlMinutes: 1.5 }),
    (e) => e.code === 'invalid_config' && /integer/.test(e.message));
  assert.ok(new AgentRuntime(token, { urls: env.leader, refreshTtlMinutes: 2 }));
});
