// AgentRuntime against the real servers: revocation seen as 'error', backoff,
// stop(), maxExpiresAt, refresh by hand, fromEnvironment,
// createSubprocessEnv, and timers that never keep the process alive (the
// background refresh past an expiry: refresh.test.mjs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { AgentRuntime } from '../index.js';
import {
  ROOT_SCOPES, agentId, env, rejection, revokeAgent, rootToken, shortToken,
} from './helpers.mjs';

const INDEX = fileURLToPath(new URL('../index.js', import.meta.url));

test('a revoked agent: each refresh is an error, retried with backoff until stop', async () => {
  const { root, kid } = await shortToken('revoked', 2);
  await revokeAgent(root.agentId);
  const errors = [];
  const rt = new AgentRuntime(kid.token, {
    urls: env.leader, caFile: env.ca, retryMinMs: 200, retryMaxMs: 400,
    onError: (e) => errors.push({ e, at: Date.now() }),
  });
  const t0 = Date.now();
  rt.start(); // due at once: expiresAt - 5 min is past
  while (errors.length < 3 && Date.now() - t0 < 10000) await sleep(50);
  rt.stop();
  assert.ok(errors.length >= 3, `${errors.length} errors`);
  for (const { e } of errors) {
    assert.equal(e.code, 'token_revoked');
    assert.equal(e.status, 401);
    assert.ok(!e.message.includes(kid.token));
  }
  assert.ok(errors[1].at - errors[0].at >= 180, 'no backoff');
  assert.ok(errors[2].at - errors[1].at >= 380, 'the backoff did not double');
  const st = rt.getStatus();
  assert.ok(st.refreshFailures >= 3);
  assert.equal(typeof st.lastError, 'string');
  const n = errors.length;
  await sleep(1000);
  assert.equal(errors.length, n, 'an error after stop()');
  assert.equal((await rejection(rt.checkPermission('openai:chat:completions'))).code, 'token_revoked');
  assert.equal((await rejection(rt.createSubprocessEnv({ requestedScopes: ['openai:chat:*'] }))).code,
    'token_revoked');
});

test('a token at its maxExpiresAt: one error, refreshing ends', async () => {
  const root = await rootToken(agentId('maxexp'), ROOT_SCOPES, { maxTtlDays: 1 });
  const errors = [];
  const rt = new AgentRuntime(root.token, {
    urls: env.leader, caFile: env.ca, refreshBeforeMs: 2 * 86400000, onError: (e) => errors.push(e),
  });
  rt.start();
  const t0 = Date.now();
  while (errors.length === 0 && Date.now() - t0 < 5000) await sleep(20);
  await sleep(300);
  rt.stop();
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /maxExpiresAt/);
  assert.equal(errors[0].code, 'forbidden');
  assert.equal(rt.getStatus().refreshEnabled, false);
});

test('refresh() by hand swaps the token in and emits refresh', async () => {
  const { kid } = await shortToken('manual', 5);
  const rt = AgentRuntime.fromSerialized(kid.token, { urls: env.leader, caFile: env.ca });
  const got = new Promise((res) => rt.once('refresh', res));
  const r = await rt.refresh({ ttlMinutes: 10 });
  assert.equal(await got, r.token);
  assert.equal(rt.token, r.token);
  assert.equal(rt.getSerializedToken(), r.token);
  assert.equal(rt.getToken().expiresAt, r.expiresAt);
  assert.ok(await rt.checkPermission('openai:chat:completions'));
  assert.equal(await rt.checkPermission('github:repo:read', 'a/b'), false);
});

test('fromEnvironment and createSubprocessEnv: a narrower token for a child', async () => {
  const { kid } = await shortToken('env', 10);
  const saved = { ...process.env };
  try {
    delete process.env.AGENT_TOKEN;
    assert.throws(() => AgentRuntime.fromEnvironment(), (e) => e.code === 'invalid_config');
    process.env.AGENT_TOKEN = kid.token;
    process.env.AGENT_IAM_URL = `${env.dead},${env.leader}`;
    process.env.AGENT_IAM_CA_CERT = env.ca;
    const rt = AgentRuntime.fromEnvironment();
    assert.equal((await rt.whoami()).agentId, kid.agentId);
    const childId = agentId('child');
    const cenv = await rt.createSubprocessEnv({
      agentId: childId, requestedScopes: ['openai:chat:completions'], ttlMinutes: 5,
    });
    assert.deepEqual(Object.keys(cenv).sort(), ['AGENT_IAM_CA_CERT', 'AGENT_IAM_URL', 'AGENT_TOKEN']);
    assert.equal(cenv.AGENT_IAM_URL, `${env.dead},${env.leader}`);
    assert.equal(cenv.AGENT_IAM_CA_CERT, env.ca);
    Object.assign(process.env, cenv);
    const child = AgentRuntime.fromEnvironment();
    assert.equal(child.start(), false, 'no system:token:refresh: nothing to start');
    const me = await child.whoami();
    assert.equal(me.agentId, childId);
    assert.equal(me.parentId, kid.agentId);
    assert.ok(await child.checkPermission('openai:chat:completions'));
    assert.equal(await child.checkPermission('openai:chat:other'), false);
  } finally {
    process.env = saved;
  }
});

test('createSubprocessEnv with ca (PEM) only: no AGENT_IAM_CA_CERT to pass on', async () => {
  const { kid } = await shortToken('pem', 10);
  const rt = new AgentRuntime(kid.token, { urls: env.leader, ca: readFileSync(env.ca, 'utf8') });
  const cenv = await rt.createSubprocessEnv({ requestedScopes: ['openai:chat:completions'], ttlMinutes: 5 });
  assert.deepEqual(Object.keys(cenv).sort(), ['AGENT_IAM_URL', 'AGENT_TOKEN']);
});

test('a started runtime never keeps the process alive', async () => {
  const root = await rootToken(agentId('unref'), ROOT_SCOPES);
  const t0 = Date.now();
  const { status, stderr, signal } = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { AgentRuntime } from ${JSON.stringify(INDEX)};
    const rt = AgentRuntime.fromEnvironment();
    if (!rt.start()) process.exit(3);
  `], {
    env: { ...process.env, AGENT_TOKEN: root.token, AGENT_IAM_URL: env.leader, AGENT_IAM_CA_CERT: env.ca },
    timeout: 10000, encoding: 'utf8',
  });
  assert.equal(signal, null, 'still running after 10 s');
  assert.equal(status, 0, stderr);
  assert.ok(Date.now() - t0 < 5000);
});
