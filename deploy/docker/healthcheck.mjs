// The container's HEALTHCHECK: exit 0 when GET /ping answers 200 within 2 s.
// GET /ping needs no token. RINGKV_HEALTHCHECK_URL overrides the URL (a TLS
// node: https://localhost:8087/ping, with NODE_EXTRA_CA_CERTS naming the CA).
const url = process.env.RINGKV_HEALTHCHECK_URL || 'http://127.0.0.1:8087/ping';
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  process.stderr.write(`ringkv healthcheck: ${url}: ${err?.cause?.code ?? err?.message ?? err}\n`);
  process.exit(1);
}
