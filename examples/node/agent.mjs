#!/usr/bin/env node
// examples/node/agent.mjs - an agent and its sub-agent, with the Node
// client (clients/node) against a remote agent-iam leader or follower.
//
//   AGENT_TOKEN=... AGENT_IAM_URL=https://host:8443 [AGENT_IAM_CA_CERT=ca.pem] \
//     node examples/node/agent.mjs [SCOPE [WIDER]]
//
// The agent (its token holds SCOPE and WIDER, e.g. openai:chat:*) gets a
// credential for SCOPE, then starts itself again as a sub-agent with a
// token delegated for SCOPE only (createSubprocessEnv). The sub-agent
// gets its credential for SCOPE and is refused WIDER. Secrets are never
// printed. Exit 0 when all went as described.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { AgentRuntime } from '../../clients/node/index.js';

const [scope = 'openai:chat:completions', wider = 'openai:chat:assistants'] =
  process.argv.slice(2).filter((a) => a !== '--child');
const child = process.argv.includes('--child');
const who = child ? 'sub-agent' : 'agent';
const say = (msg) => console.log(`${who}: ${msg}`);

async function parent() {
  const rt = AgentRuntime.fromEnvironment(); // AGENT_TOKEN, AGENT_IAM_URL, AGENT_IAM_CA_CERT
  rt.on('error', (e) => say(`refresh failed: ${e.code}: ${e.message}`));
  rt.start(); // background refresh (when the token may refresh); never holds the process
  try {
    const me = await rt.whoami();
    say(`I am ${me.agentId}, scopes ${me.scopes.join(' ')}`);
    const cred = await rt.getCredential(scope);
    say(`credential for ${scope}: ${cred.credentialType} (secret not shown)`);
    say(`${wider} allowed to me: ${await rt.checkPermission(wider)}`);
    const env = await rt.createSubprocessEnv({
      agentId: `${me.agentId}-sub`, requestedScopes: [scope], ttlMinutes: 5,
    });
    say(`starting a sub-agent with a token for ${scope} only`);
    const code = await new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', scope, wider], {
        env: { ...process.env, ...env }, stdio: 'inherit',
      });
      p.on('error', reject);
      p.on('exit', (c, sig) => resolve(sig ? 1 : c));
    });
    say(`sub-agent exited ${code}`);
    return code;
  } finally {
    rt.stop();
  }
}

async function subAgent() {
  const rt = AgentRuntime.fromEnvironment();
  const me = await rt.whoami();
  say(`I am ${me.agentId} (delegated by ${me.parentId}), scopes ${me.scopes.join(' ')}`);
  const cred = await rt.getCredential(scope);
  say(`credential for ${scope}: ${cred.credentialType} (secret not shown)`);
  try {
    await rt.getCredential(wider);
    say(`credential for ${wider}: given, which it should not be`);
    return 1;
  } catch (e) {
    say(`credential for ${wider}: refused (${e.status} ${e.code})`);
    return e.code === 'forbidden' ? 0 : 1;
  }
}

try {
  process.exitCode = await (child ? subAgent() : parent());
} catch (e) {
  say(`failed: ${e.code ?? ''} ${e.message}`);
  process.exitCode = 1;
}
