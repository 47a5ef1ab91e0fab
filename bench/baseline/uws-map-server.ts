// The baseline for the YCSB suite: a bare uWebSockets.js server answering
// GET/PUT /kv/:bucket/:key from an in-memory Map (and GET /ping) — the
// ceiling of ringkv's HTTP front end on this machine: same server library,
// same URL shape, no storage, no replication.
//
//   node --import tsx bench/baseline/uws-map-server.ts PORT    # prints "ready"
//
// In-process (tests), `stall(ms)` holds every answer due in the next ms
// milliseconds until the window ends: a server stall without SIGSTOP.
import { fileURLToPath } from 'node:url';
import { assertNativeUws, uWS, type HttpResponse, type us_listen_socket } from '../../src/transport/uws.js';

export interface BaselineServer {
  address: string;
  port: number;
  /** Holds answers until `ms` from now (test-only stall). */
  stall(ms: number): void;
  close(): void;
}

export async function startBaselineServer(opts: { host?: string; port?: number } = {}): Promise<BaselineServer> {
  assertNativeUws();
  const host = opts.host ?? '127.0.0.1';
  const store = new Map<string, Buffer>();
  let stalledUntil = 0;

  // Answers now, or when the stall window ends (the client's connection may close meanwhile).
  const answer = (res: HttpResponse, state: { aborted: boolean }, send: () => void) => {
    const wait = stalledUntil - performance.now();
    if (wait <= 0) {
      res.cork(send);
      return;
    }
    setTimeout(() => {
      if (!state.aborted) res.cork(send);
    }, wait);
  };

  const app = uWS.App()
    .get('/ping', (res) => {
      res.end('pong');
    })
    .get('/kv/:bucket/:key', (res, req) => {
      const state = { aborted: false };
      res.onAborted(() => (state.aborted = true));
      const value = store.get(`${req.getParameter(0)}/${req.getParameter(1)}`);
      answer(res, state, () => {
        if (value) res.end(value);
        else res.writeStatus('404 Not Found').end();
      });
    })
    .put('/kv/:bucket/:key', (res, req) => {
      const name = `${req.getParameter(0)}/${req.getParameter(1)}`;
      const state = { aborted: false };
      res.onAborted(() => (state.aborted = true));
      const chunks: Buffer[] = [];
      res.onData((chunk, isLast) => {
        // uWS reuses the chunk's memory after the callback: copy it.
        chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
        if (!isLast) return;
        store.set(name, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        answer(res, state, () => res.writeStatus('204 No Content').end());
      });
    });

  const { socket, port } = await new Promise<{ socket: us_listen_socket; port: number }>((resolve, reject) => {
    app.listen(host, opts.port ?? 0, (s: us_listen_socket | false) => {
      if (!s) reject(new Error(`baseline server cannot listen on ${host}:${opts.port ?? 0}`));
      else resolve({ socket: s, port: uWS.us_socket_local_port(s as never) });
    });
  });
  return {
    address: `${host}:${port}`,
    port,
    stall: (ms) => {
      stalledUntil = Math.max(stalledUntil, performance.now() + ms);
    },
    close: () => {
      uWS.us_listen_socket_close(socket);
      (app as { close?: () => void }).close?.();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    process.stderr.write('usage: uws-map-server.ts PORT\n');
    process.exit(2);
  }
  const server = await startBaselineServer({ port });
  process.stdout.write(`ready ${server.address}\n`);
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
