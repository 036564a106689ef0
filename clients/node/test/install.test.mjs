// `npm install` of clients/node, offline, into a new project, which then
// imports the package by its name and calls the real leader.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

import { ROOT_SCOPES, agentId, env, rootToken } from './helpers.mjs';

const run = promisify(execFile);
const PKG = fileURLToPath(new URL('..', import.meta.url));

test('npm install --offline, then import agent-iam-client by name', { timeout: 90000 }, async () => {
  const dir = mkdtempSync(join(env.tmp, 'node-install-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'uses-agent-iam', private: true, type: 'module' }));
  const npmEnv = { ...process.env, npm_config_cache: join(dir, '.npm-cache'), npm_config_update_notifier: 'false' };
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', PKG], { cwd: dir, env: npmEnv, timeout: 60000 });
  const installed = join(dir, 'node_modules', 'agent-iam-client');
  const meta = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(meta.types, './index.d.ts');
  assert.ok(existsSync(join(installed, meta.types)));
  assert.deepEqual(meta.dependencies ?? {}, {});

  writeFileSync(join(dir, 'main.mjs'), `
    import { Client, AgentRuntime, AgentIAMError } from 'agent-iam-client';
    const c = new Client({ urls: process.env.URLS, token: process.env.AGENT_TOKEN, caFile: process.env.CA });
    const me = await c.whoami();
    const cred = await c.credential('openai:chat:completions');
    let code;
    try { await c.credential('aws:s3:read'); } catch (e) { code = e instanceof AgentIAMError && e.code; }
    const rt = AgentRuntime.fromEnvironment({ urls: process.env.URLS, caFile: process.env.CA });
    console.log(JSON.stringify({ agentId: me.agentId, same: cred.credential.apiKey === process.env.SECRET,
      code, runtime: typeof rt.createSubprocessEnv }));
  `);
  const root = await rootToken(agentId('install'), ROOT_SCOPES);
  const { stdout } = await run(process.execPath, ['main.mjs'], {
    cwd: dir, timeout: 20000,
    env: { ...process.env, URLS: env.leader, CA: env.ca, AGENT_TOKEN: root.token, SECRET: env.apikeySecret },
  });
  assert.deepEqual(JSON.parse(stdout), { agentId: root.agentId, same: true, code: 'forbidden', runtime: 'function' });
});
