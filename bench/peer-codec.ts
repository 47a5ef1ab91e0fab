// The peer codec alone, in one process (issue 15 item 2): CPU per frame to
// encode and decode the hot messages as msgpack (protocol version 4) and as
// hot frames (version 5, src/transport/hot-codec.ts), in messages of 16
// frames as the outbox coalesces them under load (the sender's encode and
// seal, the receiver's open and decode), A and B alternated over ROUNDS
// rounds. CPU time of this process only (process.cpuUsage), so what else
// runs on the machine moves it less than wall time; the ratio is the figure.
// It runs the compiled dist/ (npm run build:ts first), as a node does: tsx's
// transform of the sources wraps every closure in a naming helper, which
// would weigh on the codecs as it never does in a node.
//
//   npm run bench:peer-codec [-- --write]     PEER_CODEC_ROUNDS [7], PEER_CODEC_FRAMES [200000]
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, decodeFrames, encodeReply, encodeRequest, openMessage, sealMessage } from '../dist/transport/frames.js';
import { machineLine, recordSection, today } from './results-file.js';

const ROUNDS = Number(process.env.PEER_CODEC_ROUNDS ?? 7);
const FRAMES = Number(process.env.PEER_CODEC_FRAMES ?? 200_000);
const PER_MESSAGE = 16;
const TAG = 0x5eed;

const b = Buffer.from('usertable');
const k = Buffer.from('user6284781860667377211');
// A YCSB record as the engine stores it: ~1.1 KB.
const record = Buffer.alloc(1_130, 0x61);

type Case = { name: string; frame: (version: number, id: number) => Buffer };
const cases: Case[] = [
  { name: 'kv.get request', frame: (v, id) => encodeRequest({ kind: 'req', id, type: 'kv.get', body: { b, k, ring: 42 } }, v) },
  { name: 'kv.get reply (1.1 KB record)', frame: (v, id) => encodeReply({ kind: 'res', id, ok: { record, reaped: null } }, 'kv.get', v) },
  { name: 'kv.merge request (1.1 KB record)', frame: (v, id) => encodeRequest({ kind: 'req', id, type: 'kv.merge', body: { b, k, record, lww: false, durable: false } }, v) },
  { name: 'kv.merge reply', frame: (v, id) => encodeReply({ kind: 'res', id, ok: { durable: false } }, 'kv.merge', v) },
];

/** CPU µs per frame: encode PER_MESSAGE frames, concatenate and seal, open, decode. */
function measure(c: Case, version: number): number {
  const hot = version >= 5;
  let sink = 0;
  const run = (messages: number) => {
    for (let m = 0; m < messages; m++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < PER_MESSAGE; i++) frames.push(c.frame(version, m * PER_MESSAGE + i));
      const sealed = sealMessage(m + 1, Buffer.concat(frames), TAG);
      const opened = openMessage(m + 1, sealed, TAG);
      if (!opened.ok) throw new Error(opened.reason);
      const d = decodeFrames(opened.payload, hot);
      if (!d.ok) throw new Error(d.reason);
      sink += d.frames.length;
    }
  };
  run(500); // warm-up
  const messages = Math.ceil(FRAMES / PER_MESSAGE);
  const before = process.cpuUsage();
  run(messages);
  const used = process.cpuUsage(before);
  if (sink === 0) throw new Error('nothing decoded');
  return (used.user + used.system) / (messages * PER_MESSAGE);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
for (const c of cases) {
  const a: number[] = [];
  const bb: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first.
    let x: number;
    let y: number;
    if (r % 2 === 0) {
      x = measure(c, MIN_PROTOCOL_VERSION);
      y = measure(c, PROTOCOL_VERSION);
    } else {
      y = measure(c, PROTOCOL_VERSION);
      x = measure(c, MIN_PROTOCOL_VERSION);
    }
    a.push(x);
    bb.push(y);
    ratios.push(y / x);
  }
  const line = `| ${c.name} | ${median(a).toFixed(3)} | ${median(bb).toFixed(3)} | ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) |`;
  rows.push(line);
  console.log(line);
}
const table = ['| frame | msgpack (v4) CPU µs/frame | hot (v5) CPU µs/frame | ratio hot/msgpack, median of rounds (min–max) |', '|---|---:|---:|---|', ...rows].join('\n');
console.log(`\n${table}`);
if (process.argv.includes('--write')) {
  recordSection(
    'peer-codec',
    `## Peer codec alone: msgpack (v4) against hot frames (v5)\n\nCommand: \`npm run bench:peer-codec -- --write\` (bench/peer-codec.ts) — in one process, per frame: encode, concatenate ${PER_MESSAGE} frames into a message, seal, open, decode (what a sender and a receiver of a coalesced message do), ${FRAMES.toLocaleString('en')} frames per measurement, ${ROUNDS} rounds alternating which goes first; CPU time of the process (process.cpuUsage). Machine: ${machineLine()}, shared with other helpers' test runs. Date: ${today()}.\n\n${table}`,
  );
}
