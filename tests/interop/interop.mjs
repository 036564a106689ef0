// interop.mjs - the Node.js side of the interoperability test
// (tests/interop/run.sh), using TokenService of the real npm package
// agent-iam@0.0.3. Every result is printed as one JSON line.
//
//   node interop.mjs PKGDIR mint KEYFILE OTHER_KEYFILE OUTDIR
//       Mint the Node-side tokens; write OUTDIR/<case>.tok, print
//       {"case","agentId","token"} per token.
//   node interop.mjs PKGDIR verify KEYFILE TOKEN
//       {"valid","error"?,"canonical","diff"?}: TokenService.verify, plus
//       whether the decoded JSON is exactly JSON.stringify(JSON.parse(it))
//       (what verify re-signs) and, if not, where the bytes differ.
//   node interop.mjs PKGDIR check KEYFILE TOKEN SCOPE RESOURCE
//       {"valid","error"?}: TokenService.checkPermission.
//   node interop.mjs PKGDIR delegate KEYFILE PARENT
//       TokenService.delegate from a (C-minted) parent: {"token"}.
//   node interop.mjs PKGDIR tamper TOKEN
//       The token with one byte of its signed JSON changed: {"token"}.
//
// Exit status: 0 valid/ok, 1 invalid, 2 usage or unexpected error.
import fs from "node:fs";
import path from "node:path";

const [pkgDir, cmd, ...args] = process.argv.slice(2);
if (!pkgDir || !cmd) {
  console.error("usage: node interop.mjs PKGDIR CMD ...");
  process.exit(2);
}
const pkg = (await import(path.resolve(pkgDir, "dist/index.js"))).default;
const { TokenService } = pkg;

const out = (obj) => console.log(JSON.stringify(obj));
const service = (keyFile) => {
  const secret = fs.readFileSync(keyFile);
  if (secret.length !== 32) throw new Error(`${keyFile}: not 32 bytes`);
  return new TokenService(secret);
};
const decode = (wire) => Buffer.from(wire, "base64url").toString("utf-8");

// Strings that JSON.stringify escapes in every way it can (quotes,
// backslash, control characters as \u001f, \n, \t) or leaves raw (`/`,
// non-ASCII incl. astral, U+2028, DEL).
const TRICKY = 'q"b\\s/é–€😀\u2028\u007f\u001f\n\t\b\f\r\u0001';
const FUTURE = new Date(Date.now() + 365 * 86400e3).toISOString();

function rootParams(agentId) {
  return {
    agentId,
    scopes: ["github:repo:*", "aws:s3:read", "slack:chat:write"],
    constraints: {
      "github:repo:*": {
        resources: ["myorg/*", "other/repo-?", 'x"y\\z/é'],
        maxUses: 10,
      },
      "aws:s3:read": {
        resources: ["bucket-*"],
        notBefore: "2020-01-01T00:00:00+02:00", // an offset, kept verbatim
        notAfter: "2099-12-31T23:59:59Z",
      },
      "slack:chat:write": { notBefore: FUTURE },
    },
    delegatable: true,
    maxDelegationDepth: 3,
    ttlDays: 7,
    identity: {
      systemId: `sys-${TRICKY}`,
      principalId: "ユーザー/π",
      principalType: "human",
      tenantId: "t\\1",
      externalAuth: {
        issuer: "https://idp.example/",
        subject: `sub ${TRICKY}`,
        authenticatedAt: "2026-01-01T00:00:00.000Z",
        // JS orders integer-like keys first; numbers JS-formatted.
        claims: { z: 1, 2: "two", 10: "ten", iat: 1700000000, ratio: 0.25,
                  neg: -3, nested: { arr: [1, "a", null, true, { k: "v" }] } },
      },
    },
    federation: {
      crossSystemAllowed: true,
      allowedSystems: ["sys/a", `sys-${TRICKY}`],
      originSystem: `origin "${TRICKY}"`,
      hopCount: 0,
      maxHops: 3,
      allowFurtherFederation: true,
    },
    agentCapabilities: {
      canSpawn: true,
      canMessage: false,
      visibility: "scope",
      custom: { [`flag ${TRICKY}`]: true, 7: false, "x/y": true },
    },
  };
}

function mint(keyFile, otherKeyFile, outDir) {
  const svc = service(keyFile);
  const other = service(otherKeyFile);
  const tokens = {};
  const put = (name, s, tok) => {
    const wire = s.serialize(tok);
    fs.writeFileSync(path.join(outDir, `${name}.tok`), wire);
    tokens[name] = tok;
    out({ case: name, agentId: tok.agentId, token: wire });
  };

  put("node_root", svc, svc.createRootToken(rootParams(`node-root ${TRICKY}`)));
  put("node_child", svc, svc.delegate(tokens.node_root, {
    agentId: `node-child ${TRICKY}`,
    requestedScopes: ["github:repo:read", "aws:s3:read"],
    requestedConstraints: { "github:repo:read": { resources: ["myorg/api"], maxUses: 3 } },
    ttlMinutes: 30,
    federation: { maxHops: 1 },
    agentCapabilities: { canSpawn: false, custom: { "x/y": false } },
  }));
  put("node_grandchild", svc, svc.delegate(tokens.node_child, {
    agentId: "node-grandchild",
    requestedScopes: ["github:repo:read"],
    delegatable: false,
    inheritIdentity: false,
  }));
  // No ttlDays: Node mints a token without expiresAt.
  put("node_noexp", svc, svc.createRootToken({ agentId: "node-noexp", scopes: ["github:repo:read"] }));
  // Signed with a different secret.
  put("node_otherkey", other, other.createRootToken(rootParams("node-otherkey")));
}

function verify(keyFile, wire) {
  const svc = service(keyFile);
  const raw = decode(wire);
  const res = { valid: false };
  try {
    Object.assign(res, svc.verify(svc.deserialize(wire)));
  } catch (e) {
    res.valid = false;
    res.error = `exception: ${e.message}`;
  }
  let js;
  try {
    js = JSON.stringify(JSON.parse(raw));
  } catch (e) {
    js = null;
  }
  res.canonical = js === raw;
  if (!res.canonical && js !== null) {
    let i = 0;
    while (i < raw.length && raw[i] === js[i]) i++;
    const from = Math.max(0, i - 24);
    res.diff = { offset: i, token: raw.slice(from, i + 40), jsonStringify: js.slice(from, i + 40) };
  }
  out(res);
  return res.valid ? 0 : 1;
}

function check(keyFile, wire, scope, resource) {
  const svc = service(keyFile);
  let res;
  try {
    res = svc.checkPermission(svc.deserialize(wire), scope, resource);
  } catch (e) {
    res = { valid: false, error: `exception: ${e.message}` };
  }
  out(res);
  return res.valid ? 0 : 1;
}

function delegate(keyFile, wire) {
  const svc = service(keyFile);
  const parent = svc.deserialize(wire);
  const v = svc.verify(parent);
  if (!v.valid) {
    out(v);
    return 1;
  }
  const child = svc.delegate(parent, {
    agentId: `node-child-of-c ${TRICKY}`,
    requestedScopes: ["github:repo:read"],
    requestedConstraints: { "github:repo:read": { resources: ["myorg/*"] } },
    ttlMinutes: 20,
  });
  out({ token: svc.serialize(child) });
  return 0;
}

function tamper(wire) {
  const raw = Buffer.from(wire, "base64url");
  const at = raw.indexOf('"agentId":"') + '"agentId":"'.length;
  raw[at] = raw[at] === 0x58 ? 0x59 : 0x58; // a different ASCII letter
  out({ token: raw.toString("base64url") });
  return 0;
}

let rc;
try {
  switch (cmd) {
    case "mint": rc = (mint(args[0], args[1], args[2]), 0); break;
    case "verify": rc = verify(args[0], args[1]); break;
    case "check": rc = check(args[0], args[1], args[2], args[3]); break;
    case "delegate": rc = delegate(args[0], args[1]); break;
    case "tamper": rc = tamper(args[0]); break;
    default:
      console.error(`interop.mjs: unknown command ${cmd}`);
      rc = 2;
  }
} catch (e) {
  console.error(`interop.mjs: ${e.stack || e}`);
  rc = 2;
}
process.exit(rc);
