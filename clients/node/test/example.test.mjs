// examples/node/agent.mjs runs: the agent gets a credential and starts a
// sub-agent with a narrower delegated token, which gets its own and is
// refused the wider scope; nothing secret is printed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

import { agentId, env, rootToken } from './helpers.mjs';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(new URL('../../../examples/node/agent.mjs', import.meta.url));

for (const [where, urls] of [['leader', env.leader], ['follower after a dead URL', `${env.dead},${env.follower}`]]) {
  test(`the example agent and its sub-agent (${where})`, async () => {
    const root = await rootToken(agentId('example'), ['openai:chat:*', 'system:token:refresh']);
    const { stdout } = await run(process.execPath, [EXAMPLE], {
      env: { ...process.env, AGENT_TOKEN: root.token, AGENT_IAM_URL: urls, AGENT_IAM_CA_CERT: env.ca },
      timeout: 30000,
    });
    const lines = stdout.trim().split('\n');
    assert.ok(lines.includes('agent: credential for openai:chat:completions: api_key (secret not shown)'), stdout);
    assert.ok(lines.includes('agent: openai:chat:assistants allowed to me: true'), stdout);
    assert.ok(lines.includes(`sub-agent: I am ${root.agentId}-sub (delegated by ${root.agentId}), scopes openai:chat:completions`), stdout);
    assert.ok(lines.includes('sub-agent: credential for openai:chat:completions: api_key (secret not shown)'), stdout);
    assert.ok(lines.includes('sub-agent: credential for openai:chat:assistants: refused (403 forbidden)'), stdout);
    assert.equal(lines.at(-1), 'agent: sub-agent exited 0');
    assert.ok(!stdout.includes(env.apikeySecret) && !stdout.includes(root.token));
  });
}

test('the example fails cleanly without a token', async () => {
  const e = await run(process.execPath, [EXAMPLE], {
    env: { ...process.env, AGENT_TOKEN: '', AGENT_IAM_URL: env.leader }, timeout: 30000,
  }).then(() => null, (x) => x);
  assert.ok(e, 'exit 0 without a token');
  assert.equal(e.code, 1);
  assert.match(e.stdout, /agent: failed: invalid_config AGENT_TOKEN is not set/);
});
