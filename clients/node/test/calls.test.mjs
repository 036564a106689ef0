// Every call of the agent API, on the leader and on the follower.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { Client, decodeToken } from '../index.js';
import { ROOT_SCOPES, agentId, env, rootToken } from './helpers.mjs';

for (const [where, url] of [['leader', env.leader], ['follower', env.follower]]) {
  describe(`every call on the ${where}`, () => {
    let root;
    let client;

    before(async () => {
      root = await rootToken(agentId(`calls-${where}`), ROOT_SCOPES);
      client = new Client({ urls: url, token: root.token, caFile: env.ca });
    });

    test('whoami answers the token\'s claims', async () => {
      const me = await client.whoami();
      assert.equal(me.agentId, root.agentId);
      assert.equal(me.tokenId, root.tokenId);
      assert.deepEqual(me.scopes, ROOT_SCOPES);
      assert.equal(me.signature, undefined);
    });

    test('check: allowed and denied', async () => {
      assert.deepEqual(await client.check('openai:chat:completions'), { valid: true });
      const no = await client.check('openai:images:create', '');
      assert.equal(no.valid, false);
      assert.equal(typeof no.error, 'string');
    });

    test('credential gives the API key\'s secret', async () => {
      const cred = await client.credential('openai:chat:completions');
      assert.equal(cred.credentialType, 'api_key');
      assert.equal(cred.credential.apiKey, env.apikeySecret);
    });

    test('delegate gives a narrower token that works', async () => {
      const id = agentId(`kid-${where}`);
      const kid = await client.delegate({
        agentId: id, requestedScopes: ['openai:chat:completions'], ttlMinutes: 10,
      });
      assert.equal(kid.agentId, id);
      assert.equal(typeof kid.tokenId, 'string');
      assert.deepEqual(kid.narrowed, []);
      assert.ok(Date.parse(kid.expiresAt) <= Date.now() + 10 * 60 * 1000 + 5000);
      const kc = new Client({ urls: url, token: kid.token, caFile: env.ca });
      const me = await kc.whoami();
      assert.equal(me.agentId, id);
      assert.equal(me.parentId, root.agentId);
      assert.deepEqual(me.scopes, ['openai:chat:completions']);
      assert.equal((await kc.check('openai:chat:completions')).valid, true);
      assert.equal((await kc.check('github:repo:read', 'a/b')).valid, false);
    });

    test('refresh gives a new token with the ttl asked', async () => {
      const r = await client.refresh({ ttlMinutes: 30 });
      assert.equal(r.tokenId, root.tokenId);
      assert.notEqual(r.token, root.token);
      const exp = Date.parse(r.expiresAt);
      assert.ok(Math.abs(exp - (Date.now() + 30 * 60 * 1000)) < 60 * 1000, r.expiresAt);
      assert.equal(decodeToken(r.token).expiresAt, r.expiresAt);
      const c2 = new Client({ urls: url, token: r.token, caFile: env.ca });
      assert.equal((await c2.whoami()).agentId, root.agentId);
      const plain = await client.refresh(); // no ttl: the server's default
      assert.equal(plain.tokenId, root.tokenId);
    });
  });
}

test('a comma-separated list and an array are the same', () => {
  const a = new Client({ urls: `${env.leader}, ${env.follower}/`, token: 'x', caFile: env.ca });
  const b = new Client({ urls: [env.leader, env.follower], token: 'x', caFile: env.ca });
  assert.deepEqual(a.urls, [env.leader, env.follower]);
  assert.deepEqual(b.urls, a.urls);
});
