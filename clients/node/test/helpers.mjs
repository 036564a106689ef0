// helpers.mjs - what the suites share: the fixture's environment
// (tests/clients/fixture.py), root tokens made with the leader's admin API,
// and revocations. Agent ids are unique to this suite ("node-" prefix):
// other suites run against the same servers at the same time.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

import { Client } from '../index.js';
import { Transport } from '../src/transport.js';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through tests/clients/run.sh`);
  return v;
}

export const env = {
  leader: need('AGENT_IAM_TEST_LEADER'),
  follower: need('AGENT_IAM_TEST_FOLLOWER'),
  dead: need('AGENT_IAM_TEST_DEAD'),
  ca: need('AGENT_IAM_TEST_CA'),
  admin: need('AGENT_IAM_TEST_ADMIN_TOKEN'),
  apikey: need('AGENT_IAM_TEST_APIKEY'),
  apikeySecret: need('AGENT_IAM_TEST_APIKEY_SECRET'),
  tmp: need('AGENT_IAM_TEST_TMP'),
};

/** An agent id of this suite's own. */
export function agentId(what) {
  return `node-${what}-${randomBytes(4).toString('hex')}`;
}

const admin = new Transport({ urls: env.leader, caFile: env.ca });

function adminCall(path, body) {
  return admin.request('POST', path, { token: env.admin, body });
}

/** A root token from POST /v1/admin/tokens: {token, tokenId, agentId, expiresAt}. */
export function rootToken(id, scopes, more = {}) {
  return adminCall('/v1/admin/tokens', { agentId: id, scopes, ttlDays: 1, ...more });
}

export function revokeAgent(id) {
  return adminCall('/v1/admin/revoke', { agentId: id, reason: 'node client suite' });
}

/** The scopes a typical root gets: the API key's and refresh. */
export const ROOT_SCOPES = ['openai:chat:*', 'github:repo:read', 'system:token:refresh'];

/** Resolves with the error a promise rejected with (fails when it resolved). */
export async function rejection(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, the call succeeded');
}

/** A token delegated from a new root, living ttlMinutes. */
export async function shortToken(what, ttlMinutes, scopes = ['openai:chat:*', 'system:token:refresh']) {
  const root = await rootToken(agentId(what), ROOT_SCOPES);
  const c = new Client({ urls: env.leader, token: root.token, caFile: env.ca });
  const kid = await c.delegate({ agentId: agentId(`${what}-kid`), requestedScopes: scopes, ttlMinutes });
  return { root, kid };
}

/** A local server: handler(req, res) once the request's body was read. */
export async function local(handler) {
  const s = http.createServer((req, res) => {
    s.hits++;
    req.resume();
    req.on('end', () => handler(req, res));
  });
  s.hits = 0;
  s.connections = 0;
  s.on('connection', () => s.connections++);
  await new Promise((res) => s.listen(0, '127.0.0.1', res));
  s.url = `http://127.0.0.1:${s.address().port}`;
  return s;
}

export const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
