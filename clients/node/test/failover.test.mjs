// A list of URLs (src/http/failover.c's rule), 307s, timeouts and
// AbortSignal. The real leader and follower answer; small local HTTP
// servers stand in for what the fixture cannot show on demand: a voter in
// an election (503), a voter that is not the leader (307), a server that
// drops a request it has read, one that never answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, InvalidRequestError, ServerError, UnavailableError } from '../index.js';
import {
  ROOT_SCOPES, agentId, env, json, local, rejection, rootToken,
} from './helpers.mjs';

describe('failover and cancellation', () => {
  let root;
  let servers;
  let busy; // 503: a voter without a leader
  let redirect; // 307 to the real leader
  let dropper; // reads the request, then closes without an answer
  let broken; // 500
  let counter; // counts what reached it
  let silent; // never answers
  let loop; // 307 to itself
  let cut; // an answer cut short
  let elsewhere; // 307 to an https server not in the client's list
  let odd; // 200 with a body that is not a JSON object

  before(async () => {
    root = await rootToken(agentId('failover'), ROOT_SCOPES);
    busy = await local((req, res) => json(res, 503,
      { error: 'no leader yet', code: 'unavailable' }, { 'Retry-After': '1' }));
    redirect = await local((req, res) => json(res, 307,
      { error: 'not the leader', code: 'not_leader', leader: env.leader },
      { Location: env.leader + req.url }));
    dropper = await local((req, res) => res.socket.destroy());
    broken = await local((req, res) => json(res, 500, { error: 'boom', code: 'internal_error' }));
    counter = await local((req, res) => json(res, 200, { valid: true }));
    silent = await local(() => {});
    loop = await local((req, res) => json(res, 307,
      { error: 'not the leader', code: 'not_leader', leader: loop.url },
      { Location: loop.url + req.url }));
    cut = await local((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"valid":');
      setTimeout(() => res.socket.destroy(), 50);
    });
    // the same port as counter, https: another origin (scheme, host, port)
    elsewhere = await local((req, res) => json(res, 307,
      { error: 'not the leader', code: 'not_leader' },
      { Location: `https://127.0.0.1:${counter.address().port}${req.url}` }));
    const bodies = ['null', '[1,2]', '"text"', 'not json', ''];
    odd = await local((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(bodies[(odd.hits - 1) % bodies.length]);
    });
    servers = [busy, redirect, dropper, broken, counter, silent, loop, cut, elsewhere, odd];
  });

  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  const make = (urls, more = {}) => new Client({ urls, token: root.token, caFile: env.ca, ...more });

  test('a dead first URL: the next one answers (leader, follower)', async () => {
    for (const live of [env.leader, env.follower]) {
      const t0 = Date.now();
      const cred = await make([env.dead, live]).credential('openai:chat:completions');
      assert.equal(cred.credential.apiKey, env.apikeySecret);
      assert.ok(Date.now() - t0 < 2000);
    }
    assert.equal((await make(`${env.dead},${env.leader}`).whoami()).agentId, root.agentId);
  });

  test('one dead URL: connection_failed at once, status 0', async () => {
    const t0 = Date.now();
    const e = await rejection(make(env.dead).whoami());
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.code, 'connection_failed');
    assert.equal(e.status, 0);
    assert.ok(!e.message.includes(root.token));
    assert.ok(Date.now() - t0 < 2000);
  });

  test('only dead URLs: tried again for about 4 s, then connection_failed', async () => {
    const t0 = Date.now();
    const e = await rejection(make([env.dead, env.dead]).whoami());
    const took = Date.now() - t0;
    assert.equal(e.code, 'connection_failed');
    assert.ok(took >= 3900 && took < 8000, `${took} ms`);
  });

  test('503: the next URL answers; alone, the 503 is the error', async () => {
    const before503 = busy.hits;
    const cred = await make([busy.url, env.leader]).credential('openai:chat:completions');
    assert.equal(cred.credential.apiKey, env.apikeySecret);
    assert.equal(busy.hits, before503 + 1);
    const e = await rejection(make(busy.url).whoami());
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.status, 503);
    assert.equal(e.code, 'unavailable');
    assert.equal(e.retryAfter, 1);
  });

  test('307: followed to the leader (one of the URLs) with the same request', async () => {
    const before307 = redirect.hits;
    const cred = await make([redirect.url, env.leader]).credential('openai:chat:completions');
    assert.equal(cred.credential.apiKey, env.apikeySecret);
    assert.equal(redirect.hits, before307 + 1);
    const kid = await make([redirect.url, env.dead, env.leader]).delegate({
      agentId: agentId('via307'), requestedScopes: ['openai:chat:completions'], ttlMinutes: 5,
    });
    assert.equal(typeof kid.token, 'string');
  });

  test('307: a few hops at most, then too_many_redirects', async () => {
    const n = loop.hits;
    const e = await rejection(make(loop.url).whoami());
    assert.ok(e instanceof InvalidRequestError);
    assert.equal(e.status, 307);
    assert.equal(e.code, 'too_many_redirects');
    assert.equal(loop.hits, n + 4);
  });

  test('307 to a server not in the list: not followed, the bearer stays here', async () => {
    const conns = counter.connections;
    const e = await rejection(make([elsewhere.url, env.leader]).credential('openai:chat:completions'));
    assert.ok(e instanceof InvalidRequestError, `${e.name}: ${e.message}`);
    assert.equal(e.status, 307);
    assert.equal(e.code, 'not_leader');
    assert.ok(e.message.includes(`https://127.0.0.1:${counter.address().port}`), e.message);
    assert.ok(!e.message.includes(root.token));
    assert.equal(counter.connections, conns, 'the other host was reached');
    // the leader alone: a 307 to a follower not in the list is refused too
    const e2 = await rejection(make(redirect.url).whoami());
    assert.equal(e2.code, 'not_leader');
  });

  test('a 2xx answer that is not a JSON object: bad_answer', async () => {
    for (let i = 0; i < 5; i++) {
      const e = await rejection(make(odd.url).check('a:b:c'));
      assert.ok(e instanceof ServerError, `${e.name}: ${e.message}`);
      assert.equal(e.code, 'bad_answer');
      assert.equal(e.status, 200);
    }
  });

  test('a request that may have arrived is never sent again', async () => {
    const n = counter.hits;
    const e = await rejection(make([dropper.url, counter.url]).credential('openai:chat:completions'));
    assert.equal(e.code, 'connection_failed');
    assert.equal(e.status, 0);
    const e500 = await rejection(make([broken.url, counter.url]).credential('openai:chat:completions'));
    assert.equal(e500.status, 500);
    assert.equal(e500.code, 'internal_error');
    const ecut = await rejection(make([cut.url, counter.url]).credential('openai:chat:completions'));
    assert.equal(ecut.code, 'connection_failed');
    assert.equal(counter.hits, n, 'the request was sent again');
    assert.deepEqual(await make([env.dead, counter.url]).check('a:b:c'), { valid: true });
    assert.equal(counter.hits, n + 1);
  });

  test('timeoutMs: no answer in time is a timeout, not sent again', async () => {
    const n = counter.hits;
    const t0 = Date.now();
    const e = await rejection(make([silent.url, counter.url], { timeoutMs: 300 }).whoami());
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.code, 'timeout');
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(counter.hits, n);
  });

  test('AbortSignal cancels a call under way, or before it starts', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    const e = await rejection(make(silent.url).whoami({ signal: ac.signal }));
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.code, 'aborted');
    assert.ok(Date.now() - t0 < 2000);

    const conns = silent.connections;
    const e2 = await rejection(make(silent.url).credential('openai:chat:completions',
      '', { signal: AbortSignal.abort() }));
    assert.equal(e2.code, 'aborted');
    assert.equal(silent.connections, conns, 'an aborted call connected');

    // the real leader, aborted while the request is in flight
    const ac3 = new AbortController();
    const p = make(env.leader).whoami({ signal: ac3.signal });
    ac3.abort();
    assert.equal((await rejection(p)).code, 'aborted');

    // between the tries of a failover
    const t1 = Date.now();
    const e4 = await rejection(make([env.dead, env.dead]).whoami({ signal: AbortSignal.timeout(300) }));
    assert.equal(e4.code, 'aborted');
    assert.ok(Date.now() - t1 < 2000);
  });
});
