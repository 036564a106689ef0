// AgentRuntime keeps a 1-minute token alive past its first expiry by
// refreshing it in the background (the suite's longest test: ~75 s).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { AgentRuntime, AuthenticationError, Client } from '../index.js';
import { env, rejection, shortToken } from './helpers.mjs';


test('a 1-minute token outlives its first expiry: refreshed in the background', { timeout: 120000 }, async () => {
  const { kid } = await shortToken('refresh', 1);
  const firstExp = Date.parse(kid.expiresAt);
  const rt = new AgentRuntime(kid.token, {
    urls: [env.dead, env.follower], caFile: env.ca, refreshBeforeMs: 20000, refreshTtlMinutes: 1,
  });
  const seen = [];
  const errors = [];
  rt.on('refresh', (t) => seen.push(t));
  rt.on('error', (e) => errors.push(e));
  assert.equal(rt.start(), true);
  assert.equal(rt.getStatus().refreshEnabled, true);
  try {
    const wait = firstExp + 12000 - Date.now(); // past the first expiry
    assert.ok(wait > 40000 && wait < 80000, `${wait} ms`);
    await sleep(wait);
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.ok(seen.length >= 1, 'no refresh happened');
    assert.equal(seen.at(-1), rt.token);
    assert.notEqual(rt.token, kid.token);
    assert.ok(Date.parse(rt.getToken().expiresAt) > Date.now());
    const st = rt.getStatus();
    assert.equal(st.tokenId, kid.tokenId);
    assert.equal(st.refreshFailures, 0);
    assert.ok(Date.parse(st.lastRefreshAt) > firstExp - 60000);
    // the current token works, on the leader too; the first one expired
    assert.equal((await rt.whoami()).agentId, kid.agentId);
    assert.equal((await rt.getCredential('openai:chat:completions')).credential.apiKey, env.apikeySecret);
    const now = new Client({ urls: env.leader, token: rt.token, caFile: env.ca });
    assert.equal((await now.check('openai:chat:completions')).valid, true);
    const old = new Client({ urls: env.leader, token: kid.token, caFile: env.ca });
    const e = await rejection(old.whoami());
    assert.ok(e instanceof AuthenticationError);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'token_expired');
  } finally {
    rt.stop();
  }
  assert.equal(rt.getStatus().refreshEnabled, false);
});

