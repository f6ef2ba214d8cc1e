// `praetor serve`: the HTTP + WebSocket API (sandboxes, episodes, ROCK/GEM, MCP, model gateway,
// e2b) over the core that owns sandboxes per tenant, plus the tokens it checks (tenant quotas live in src/config).
// The cluster builds its control server and node role from these.
export { startServer, asPraetorError, presentedToken, sendError, VERSION, type PraetorServer, type ServeOptions } from './app.ts';
export { createToken, tokensPath, TokenStore, TENANT_RE, type Principal, type TokenRecord } from './auth.ts';
export { ServerCore, DEFAULT_BODY_LIMIT, type CoreOptions, type SandboxEntry, type SandboxIdSource } from './core.ts';
export { ROCK_SANDBOX_BASE } from './routes/rock-envelope.ts';
export { e2bErrorBody, notSupported as e2bNotSupported, statusOf as e2bStatusOf } from './e2b/index.ts';
