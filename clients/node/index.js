// agent-iam-client: the Node.js client of agent-iam's agent API (DESIGN
// §10). No dependencies: node:https only. Types: index.d.ts.
export {
  AgentIAMError,
  AuthenticationError,
  PermissionDeniedError,
  InvalidRequestError,
  RateLimitedError,
  UnavailableError,
  ServerError,
} from './src/errors.js';
export { Client } from './src/client.js';
export {
  AgentRuntime,
  AGENT_TOKEN_ENV,
  AGENT_IAM_URL_ENV,
  AGENT_IAM_CA_CERT_ENV,
} from './src/runtime.js';
export { decodeToken } from './src/token.js';
