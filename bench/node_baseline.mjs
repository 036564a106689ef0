// node_baseline.mjs - the same operations with the Node.js package
// agent-iam@0.0.3, on the same machine, in the same run as bench/verify:
// deserialize + checkPermission of distinct tokens (the package verifies
// inside checkPermission) and delegate. Prints one JSON line of
// [median, best] operations per second over 7 trials of 0.3 s.
// Usage: node bench/node_baseline.mjs PATH/TO/node_modules/agent-iam
import { pathToFileURL } from "node:url";
import crypto from "node:crypto";
const pkg = process.argv[2];
const { TokenService } = await import(pathToFileURL(pkg + "/dist/index.js").href);
const svc = new TokenService(crypto.randomBytes(32));
const root = svc.createRootToken({ agentId: "orchestrator", scopes: ["github:repo:read","github:repo:write","openai:chat:*","system:token:refresh"],
  constraints: { "github:repo:*": { resources: ["myorg/*"] } }, ttlDays: 7 });
const req = { agentId: "code-reviewer", requestedScopes: ["github:repo:read","openai:chat:completions"],
  requestedConstraints: { "github:repo:read": { resources: ["myorg/frontend"] } }, ttlMinutes: 60 };
const N = 2000, wires = [];
for (let i = 0; i < N; i++) wires.push(svc.serialize(svc.delegate(root, req)));
function rate(fn, secs = 0.3) { let n = 0; const t0 = process.hrtime.bigint(); let el;
  do { for (let i = 0; i < 1000; i++) fn(n++); el = Number(process.hrtime.bigint() - t0) / 1e9; } while (el < secs); return n / el; }
function best(fn) { const r = []; for (let t = 0; t < 7; t++) r.push(rate(fn)); r.sort((a,b)=>a-b); return [r[3], r[6]]; }
const a = best(i => { const t = svc.deserialize(wires[i % N]); if (!svc.checkPermission(t, "github:repo:read", "myorg/frontend").valid) throw 1; });
const d = best(i => svc.delegate(root, req));
console.log(JSON.stringify({ deserialize_check: a, delegate: d, token_chars: wires[0].length }));
