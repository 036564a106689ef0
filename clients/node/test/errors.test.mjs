// Every error code of the agent API a client can provoke, as the real
// servers answer it: the error's class, status and code, and no token in
// its message. (token_expired: runtime.test.mjs, which waits for an expiry.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import {
  AgentIAMError, AuthenticationError, Client, InvalidRequestError, PermissionDeniedError,
  RateLimitedError,
} from '../index.js';
import { ROOT_SCOPES, agentId, env, rejection, revokeAgent, rootToken } from './helpers.mjs';

function assertError(e, Cls, status, code, ...secrets) {
  assert.ok(e instanceof Cls, `${e.name}: ${e.message}`);
  assert.ok(e instanceof AgentIAMError);
  assert.equal(e.status, status, e.message);
  assert.equal(e.code, code, e.message);
  assert.ok(e.is(code));
  assert.ok(e.message.length > 0);
  for (const s of secrets) assert.ok(!e.message.includes(s), 'a token in the message');
}

for (const [where, url] of [['leader', env.leader], ['follower', env.follower]]) {
  describe(`errors on the ${where}`, () => {
    let root;
    let client;
    const make = (token) => new Client({ urls: url, token, caFile: env.ca });

    before(async () => {
      root = await rootToken(agentId(`err-${where}`), ROOT_SCOPES);
      client = make(root.token);
    });

    test('401 invalid_token: a garbled token', async () => {
      const garbled = 'garbled-not-a-token';
      const e = await rejection(make(garbled).whoami());
      assertError(e, AuthenticationError, 401, 'invalid_token', garbled);
      const cut = root.token.slice(0, -10);
      assertError(await rejection(make(cut).check('openai:chat:completions')),
        AuthenticationError, 401, 'invalid_token', cut);
    });

    test('401 invalid_token: a forged token (claims changed, signature kept)', async () => {
      const claims = JSON.parse(Buffer.from(root.token, 'base64url').toString());
      claims.scopes = ['*'];
      const forged = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const e = await rejection(make(forged).credential('openai:chat:completions'));
      assertError(e, AuthenticationError, 401, 'invalid_token', forged);
    });

    test('403 forbidden: a credential, a delegation beyond the token', async () => {
      assertError(await rejection(client.credential('openai:images:create')),
        PermissionDeniedError, 403, 'forbidden', root.token);
      assertError(await rejection(client.delegate({
        agentId: agentId('wide'), requestedScopes: ['github:repo:write'], ttlMinutes: 5,
      })), PermissionDeniedError, 403, 'forbidden', root.token);
    });

    test('403 forbidden: refresh without system:token:refresh', async () => {
      const kid = await client.delegate({
        agentId: agentId('norefresh'), requestedScopes: ['openai:chat:completions'], ttlMinutes: 5,
      });
      assertError(await rejection(make(kid.token).refresh()),
        PermissionDeniedError, 403, 'forbidden', kid.token);
    });

    test('400 bad_request: invalid bodies', async () => {
      assertError(await rejection(client.delegate({ agentId: 'x', requestedScopes: 'openai:chat:*' })),
        InvalidRequestError, 400, 'bad_request', root.token);
      assertError(await rejection(client.check(undefined)),
        InvalidRequestError, 400, 'bad_request', root.token);
      assertError(await rejection(client.refresh({ ttlMinutes: 'soon' })),
        InvalidRequestError, 400, 'bad_request', root.token);
    });

    test('404 not_found: a credential of a provider not configured', async () => {
      assertError(await rejection(client.credential('github:repo:read', 'myorg/repo')),
        InvalidRequestError, 404, 'not_found', root.token);
    });

    test('413 payload_too_large: a body over 64 KiB', async () => {
      assertError(await rejection(client.delegate({
        agentId: 'x'.repeat(70 * 1024), requestedScopes: ['openai:chat:completions'],
      })), InvalidRequestError, 413, 'payload_too_large', root.token);
    });

    test('401 token_revoked: the agent revoked, and its delegate with it', async () => {
      const id = agentId(`rev-${where}`);
      const r = await rootToken(id, ROOT_SCOPES);
      const c = make(r.token);
      const kid = await c.delegate({
        agentId: agentId('revkid'), requestedScopes: ['openai:chat:completions'], ttlMinutes: 5,
      });
      assert.equal((await c.check('openai:chat:completions')).valid, true);
      await revokeAgent(id);
      // the follower learns it through its change feed: give it a moment
      const until = Date.now() + 10000;
      let e;
      while (!(e = await c.whoami().then(() => null, (x) => x)) && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(e, 'still valid 10 s after the revocation');
      assertError(e, AuthenticationError, 401, 'token_revoked', r.token);
      assertError(await rejection(c.credential('openai:chat:completions')),
        AuthenticationError, 401, 'token_revoked', r.token);
      assertError(await rejection(make(kid.token).check('openai:chat:completions')),
        AuthenticationError, 401, 'token_revoked', kid.token);
    });
  });
}

test('429 rate_limited: an agent over its write rate, with retryAfter', async () => {
  const r = await rootToken(agentId('rate'), ROOT_SCOPES);
  const c = new Client({ urls: env.leader, token: r.token, caFile: env.ca });
  let limited;
  // 16 at a time: the other suites share the server's 64 connections per address
  for (let round = 0; round < 50 && !limited; round++) {
    const answers = await Promise.allSettled(Array.from({ length: 16 }, () => c.refresh({ ttlMinutes: 60 })));
    limited = answers.find((a) => a.status === 'rejected')?.reason;
  }
  assert.ok(limited, 'never rate limited');
  assertError(limited, RateLimitedError, 429, 'rate_limited', r.token);
  assert.ok(limited.retryAfter >= 1, `retryAfter ${limited.retryAfter}`);
  // check is not limited
  assert.equal((await c.check('openai:chat:completions')).valid, true);
});

test('a token a header cannot carry is refused before any call', () => {
  assert.throws(() => new Client({ urls: env.leader, token: 'a\r\nb', caFile: env.ca }),
    (e) => e instanceof AgentIAMError && e.code === 'invalid_config' && !e.message.includes('a\r\nb'));
  assert.throws(() => new Client({ urls: 'http://example.com', token: 't' }),
    (e) => e.code === 'invalid_config');
  assert.throws(() => new Client({ urls: '', token: 't' }), (e) => e.code === 'invalid_config');
  assert.throws(() => new Client({ urls: env.leader, token: 't', caFile: '/nonexistent/ca.pem' }),
    (e) => e.code === 'invalid_config' && /ENOENT/.test(e.message));
});
