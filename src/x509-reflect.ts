// @peculiar/x509 depends on tsyringe, which refuses to load without the Reflect metadata API
// (normally the reflect-metadata package, which this project does not ship). x509 only uses it
// for its internal container: a minimal, standard-shaped polyfill is installed when absent.
// It must be imported before @peculiar/x509.
type Md = WeakMap<object, Map<string | symbol | undefined, Map<unknown, unknown>>>;
const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== 'function') {
  const store: Md = new WeakMap();
  const own = (target: object, prop: string | symbol | undefined, create: boolean) => {
    let byProp = store.get(target);
    if (!byProp) { if (!create) return undefined; byProp = new Map(); store.set(target, byProp); }
    let m = byProp.get(prop);
    if (!m) { if (!create) return undefined; m = new Map(); byProp.set(prop, m); }
    return m;
  };
  const getOwn = (k: unknown, t: object, p?: string | symbol) => own(t, p, false)?.get(k);
  const get = (k: unknown, t: object, p?: string | symbol): unknown => {
    for (let o: object | null = t; o; o = Object.getPrototypeOf(o) as object | null) {
      const m = own(o, p, false);
      if (m?.has(k)) return m.get(k);
    }
    return undefined;
  };
  Object.assign(R, {
    defineMetadata: (k: unknown, v: unknown, t: object, p?: string | symbol) => { own(t, p, true)!.set(k, v); },
    getOwnMetadata: getOwn,
    getMetadata: get,
    hasOwnMetadata: (k: unknown, t: object, p?: string | symbol) => own(t, p, false)?.has(k) ?? false,
    hasMetadata: (k: unknown, t: object, p?: string | symbol) => get(k, t, p) !== undefined,
    metadata: (k: unknown, v: unknown) => (t: object, p?: string | symbol) => { own(t, p, true)!.set(k, v); },
  });
}
export {};
