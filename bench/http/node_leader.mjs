// node_leader.mjs - the Node.js package's leader (agent-iam@0.0.3
// LeaderServer) over TLS on 127.0.0.1, for bench/http/run.sh.
//
// LeaderServer(broker, configDir, {port, host, tlsCertPath, tlsKeyPath,
// followerAuthToken}) serves https when both TLS paths are given. Its
// routes are POST /sync, GET /status, POST /rotate-key, POST /revoke/ID,
// all behind `Authorization: Bearer <followerAuthToken>`; it has no token
// check route, so the benchmark uses GET /status (a string compare of the
// bearer, then JSON.stringify of a small object).
//
// With mode "check" it instead serves POST /v1/check from a plain
// https.createServer wrapper (same TLS files) that does what our /v1/check
// does with the package's TokenService: deserialize (which verifies the
// HMAC) + checkPermission, answering {"valid":true} or
// {"valid":false,"error":...}. That is not part of the package; it only
// shows what a token check costs over Node's https. The token it accepts
// is written to CONFIGDIR/root.tok.
//
// Usage: node node_leader.mjs PKGDIR CONFIGDIR PORT CERT KEY AUTHTOKEN [status|check]
// Prints "ready" on stdout once listening; exits on SIGTERM or SIGINT.
import { pathToFileURL } from "node:url";
import fs from "node:fs";
import https from "node:https";

const [pkgDir, configDir, portArg, cert, key, authToken, mode = "status"] =
    process.argv.slice(2);
if (!authToken) {
    console.error("usage: node node_leader.mjs PKGDIR CONFIGDIR PORT CERT KEY AUTHTOKEN [status|check]");
    process.exit(2);
}
const port = Number(portArg);
const pkg = await import(pathToFileURL(pkgDir + "/dist/index.js").href);

let server = null;
if (mode === "status") {
    const broker = new pkg.Broker(configDir);
    const leader = new pkg.LeaderServer(broker, configDir, {
        port, host: "127.0.0.1", tlsCertPath: cert, tlsKeyPath: key,
        followerAuthToken: authToken,
    });
    await leader.start();           // logs "Leader server listening on ..."
    server = leader;
} else if (mode === "check") {
    const broker = new pkg.Broker(configDir);  // creates CONFIGDIR/token_secret
    const secret = fs.readFileSync(configDir + "/token_secret");
    const svc = new pkg.TokenService(secret);
    const root = svc.createRootToken({ agentId: "bench", scopes: ["github:repo:read"], ttlDays: 1 });
    fs.writeFileSync(configDir + "/root.tok", svc.serialize(root), { mode: 0o600 });
    void broker;
    const s = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) },
        (req, res) => {
            const chunks = [];
            req.on("data", (c) => chunks.push(c));
            req.on("end", () => {
                res.setHeader("Content-Type", "application/json");
                const auth = req.headers.authorization ?? "";
                if (req.method !== "POST" || req.url !== "/v1/check" || !auth.startsWith("Bearer ")) {
                    res.statusCode = 404;
                    res.end(JSON.stringify({ error: "not found" }));
                    return;
                }
                try {
                    const body = JSON.parse(Buffer.concat(chunks).toString());
                    const tok = svc.deserialize(auth.slice(7));
                    const r = svc.checkPermission(tok, body.scope, body.resource ?? "");
                    res.statusCode = 200;
                    res.end(JSON.stringify(r.valid ? { valid: true } : { valid: false, error: r.error }));
                } catch (e) {
                    res.statusCode = 401;
                    res.end(JSON.stringify({ error: String(e && e.message || e), code: "invalid_token" }));
                }
            });
        });
    await new Promise((resolve, reject) => {
        s.on("error", reject);
        s.listen(port, "127.0.0.1", resolve);
    });
    server = { stop: () => new Promise((r) => { s.closeAllConnections?.(); s.close(() => r()); }) };
} else {
    console.error(`node_leader.mjs: unknown mode ${mode}`);
    process.exit(2);
}
console.log("ready");

let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
        if (stopping) process.exit(1);
        stopping = true;
        // keep-alive connections would hold server.close() open: exit soon anyway
        setTimeout(() => process.exit(0), 500).unref();
        server.stop().then(() => process.exit(0));
    });
}
