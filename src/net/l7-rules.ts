// L7 rules per allowed destination: which HTTP methods and paths a sandbox may use there (GET
// only, /v1/* only). Threat: an allowed API host is also a write channel (POST the repository
// to a paste endpoint, push to another account's path); method and path narrow it to the use the
// policy meant. Judged on plain HTTP and inside intercepted TLS, request by request.
import type { NetRule } from '../config/index.ts';

export interface L7Rule { readonly methods?: ReadonlySet<string>; readonly paths?: readonly RegExp[]; readonly text: string }

/** `*` matches within one path segment, `**` across segments; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; }
    else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function compileL7(http: NetRule['http']): L7Rule | undefined {
  if (!http || (!http.methods && !http.paths)) return undefined;
  return {
    ...(http.methods ? { methods: new Set(http.methods) } : {}),
    ...(http.paths ? { paths: http.paths.map(globToRegExp) } : {}),
    text: [http.methods ? `methods ${http.methods.join(',')}` : '', http.paths ? `paths ${http.paths.join(',')}` : ''].filter(Boolean).join('; '),
  };
}

/** Why this request is outside the rule, or null. The path is the target without query/fragment. */
export function l7Violation(rule: L7Rule, method: string, target: string): string | null {
  if (rule.methods && !rule.methods.has(method.toUpperCase())) return `method ${method} is not allowed here (${rule.text})`;
  if (rule.paths) {
    const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/[?#].*$/, '') || '/';
    // Dot segments and encoded slashes would let /v1/../admin pass a /v1/* glob.
    if (/(^|\/)\.\.?(\/|$)|%2f|%5c|%2e/i.test(path)) return `path ${path.slice(0, 200)} has dot segments or encoded separators`;
    if (!rule.paths.some((r) => r.test(path))) return `path ${path.slice(0, 200)} is not allowed here (${rule.text})`;
  }
  return null;
}
