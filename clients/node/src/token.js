// token.js - reading a serialized agent token without verifying it (the
// client holds no key; the server verifies on every call): base64url of
// the token's JSON. Used for its expiry and scopes, to plan refreshes.
import { AgentIAMError } from './errors.js';

/** The claims of a serialized token (unverified). */
export function decodeToken(serialized) {
  try {
    const o = JSON.parse(Buffer.from(serialized, 'base64url').toString('utf8'));
    if (o === null || typeof o !== 'object' || typeof o.agentId !== 'string' ||
        !Array.isArray(o.scopes) || !o.scopes.every((x) => typeof x === 'string')) {
      throw new Error();
    }
    return o;
  } catch {
    throw new AgentIAMError('the token does not decode', { code: 'invalid_token' });
  }
}

/** A time member of a token in ms since the epoch (0: absent). */
export function timeMs(iso) {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t : 0;
}

/** Does scope pattern p grant scope s? ("a:*" any suffix, "*" one segment,
 * a final "*" any further segments), as the server's ai_scope_matches. */
export function scopeMatches(p, s) {
  if (!p || !s) return false;
  if (!p.includes('*')) return p === s;
  if (p === '*' || (p.endsWith(':*') && p.indexOf('*') === p.length - 1)) {
    return s.startsWith(p.slice(0, -1));
  }
  const ps = p.split(':');
  const ss = s.split(':');
  for (let i = 0; i < ps.length; i++) {
    if (ps[i] === '*' && i === ps.length - 1) return i < ss.length;
    if (i >= ss.length || (ps[i] !== '*' && ps[i] !== ss[i])) return false;
  }
  return ps.length === ss.length;
}
