// Seeds given as host names: resolved again at every join attempt (a
// Kubernetes headless Service's name changes its addresses as pods come and
// go), one seed per address, this node's own addresses left out (joining
// through itself would make a cluster of one).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatHostPort } from '../transport/uws.js';

/** Every address a host name has (empty when it has none, or not yet). */
export type LookupAll = (host: string) => Promise<string[]>;

/** How long one attempt waits for a name (getaddrinfo can hang on a broken resolver); unanswered names are dialled as given. */
export const SEED_LOOKUP_TIMEOUT_MS = 2_000;

function splitSeed(seed: string): { host: string; port: number } {
  const at = seed.lastIndexOf(':');
  const host = seed.slice(0, at);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(seed.slice(at + 1)) };
}

/** The names among `addresses` (host:port) that need a lookup: not IP literals. */
export function namesOf(addresses: readonly string[]): string[] {
  return [...new Set(addresses.map((a) => splitSeed(a).host).filter((h) => isIP(h) === 0))];
}

/** `address` (host:port) as every host:port it stands for, given the names resolved; a name not resolved stays as given. */
function expand(address: string, resolved: ReadonlyMap<string, readonly string[]>): string[] {
  const { host, port } = splitSeed(address);
  const ips = isIP(host) === 0 ? resolved.get(host) : undefined;
  return ips === undefined || ips.length === 0 ? [address] : ips.map((ip) => formatHostPort(ip, port));
}

/**
 * The seed addresses of one join attempt (pure): each seed as every address
 * its name resolved to, without duplicates and without any address of this
 * node (`self`: its advertised and listen addresses, resolved the same way).
 */
export function expandSeeds(seeds: readonly string[], self: readonly string[], resolved: ReadonlyMap<string, readonly string[]>): string[] {
  const own = new Set(self.flatMap((a) => [a, ...expand(a, resolved)]));
  const out: string[] = [];
  for (const seed of seeds) {
    for (const address of expand(seed, resolved)) if (!own.has(address) && !out.includes(address)) out.push(address);
  }
  return out;
}

const systemLookup: LookupAll = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** Resolves one name, bounded in time; a failure or a timeout resolves to no address (the name is then dialled as given). */
async function lookupBounded(host: string, lookupAll: LookupAll, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), timeoutMs);
  });
  try {
    return await Promise.race([lookupAll(host).catch(() => []), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A function giving the seed addresses of each join attempt, resolving names afresh every time it is called. */
export function seedResolver(seeds: readonly string[], self: readonly string[], lookupAll: LookupAll = systemLookup, timeoutMs = SEED_LOOKUP_TIMEOUT_MS): () => Promise<string[]> {
  const names = namesOf([...seeds, ...self]);
  return async () => {
    const answers = await Promise.all(names.map(async (n) => [n, await lookupBounded(n, lookupAll, timeoutMs)] as const));
    return expandSeeds(seeds, self, new Map(answers));
  };
}
