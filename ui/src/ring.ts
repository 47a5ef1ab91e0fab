// The ring as a picture: partitions around a circle, each coloured by its
// owner, the angle being the partition's place on the hash ring. Up to 256
// partitions are one band; above that each of the 256 spokes stacks its run
// of consecutive partitions from the inside out (Q = 4096: 16 per spoke), so
// every partition keeps a cell of a few pixels and stays readable. An outer
// band marks the spokes holding partitions this node is handing over,
// coloured by the member receiving them.

/** Hand-picked distinct colours on a dark background; beyond them golden-angle hues. */
const PALETTE = ['#4e9cff', '#ff6b8b', '#5fd068', '#ffb347', '#b38cff', '#3fd0d4', '#ff8c4a', '#e3e36a', '#ff7ad9', '#8fd3ff', '#a4e57a', '#d9a0ff'];

export function memberColor(index: number): string {
  if (index < PALETTE.length) return PALETTE[index]!;
  const hue = Math.round((index * 137.508 + 200) % 360);
  return `hsl(${hue} 70% ${index % 2 === 0 ? 62 : 48}%)`;
}

/** Member id → colour, by the sorted ids (stable while the membership is). */
export function colorsFor(ids: readonly string[]): Map<string, string> {
  return new Map([...ids].sort().map((id, i) => [id, memberColor(i)]));
}

/** Most spokes drawn; more partitions stack on them. */
export const MAX_SPOKES = 256;

export interface Layout {
  spokes: number;
  /** Partitions per spoke (1 up to Q = 256). */
  tracks: number;
}

export function layoutFor(q: number): Layout {
  const spokes = Math.min(q, MAX_SPOKES);
  return { spokes, tracks: Math.max(1, Math.ceil(q / spokes)) };
}

export interface RingGeometry {
  size: number;
  outer: number;
  inner: number;
  bandOuter: number;
}

export function geometry(size: number): RingGeometry {
  const outer = size / 2 - 20;
  return { size, outer, inner: outer * 0.5, bandOuter: outer + 12 };
}

/** Angle of the start of spoke s (0 at the top, clockwise). */
const angleOf = (s: number, spokes: number): number => -Math.PI / 2 + (2 * Math.PI * s) / spokes;

export interface Cell {
  a0: number;
  a1: number;
  r0: number;
  r1: number;
}

export function cellOf(p: number, layout: Layout, g: RingGeometry): Cell {
  const spoke = Math.floor(p / layout.tracks);
  const track = p % layout.tracks;
  const width = (g.outer - g.inner) / layout.tracks;
  return { a0: angleOf(spoke, layout.spokes), a1: angleOf(spoke + 1, layout.spokes), r0: g.inner + track * width, r1: g.inner + (track + 1) * width };
}

export interface RingPicture {
  owners: readonly string[];
  colors: ReadonlyMap<string, string>;
  /** Partition → the member it is being handed to. */
  moving: ReadonlyMap<number, string>;
  /** Members shown as down (their cells are darkened). */
  suspect: ReadonlySet<string>;
  /** Partition under the pointer, outlined. */
  highlight?: number | null;
}

function cellPath(ctx: CanvasRenderingContext2D, c: number, cell: Cell, inset: number): void {
  ctx.beginPath();
  ctx.arc(c, c, cell.r1 - inset, cell.a0, cell.a1);
  ctx.arc(c, c, cell.r0 + inset, cell.a1, cell.a0, true);
  ctx.closePath();
}

export function drawRing(ctx: CanvasRenderingContext2D, pic: RingPicture, g: RingGeometry): void {
  const q = pic.owners.length;
  const c = g.size / 2;
  ctx.clearRect(0, 0, g.size, g.size);
  if (q === 0) return;
  const layout = layoutFor(q);
  // Gaps between cells where there is room for them (a gap under a pixel would only muddy the colours).
  const spokeGap = layout.spokes <= 128;
  const trackInset = layout.tracks > 1 ? 0.6 : 0;
  pic.owners.forEach((owner, p) => {
    cellPath(ctx, c, cellOf(p, layout, g), trackInset);
    ctx.fillStyle = pic.colors.get(owner) ?? '#666';
    ctx.fill();
    if (pic.suspect.has(owner)) {
      ctx.fillStyle = 'rgba(12, 14, 20, 0.6)';
      ctx.fill();
    }
  });
  if (spokeGap) {
    ctx.strokeStyle = '#171b25';
    ctx.lineWidth = 1.5;
    for (let s = 0; s < layout.spokes; s++) {
      const a = angleOf(s, layout.spokes);
      ctx.beginPath();
      ctx.moveTo(c + g.inner * Math.cos(a), c + g.inner * Math.sin(a));
      ctx.lineTo(c + g.outer * Math.cos(a), c + g.outer * Math.sin(a));
      ctx.stroke();
    }
  }
  // Pending transfers: the outer band of each spoke holding one, in the receiver's colour.
  const bySpoke = new Map<number, string>();
  for (const [p, to] of pic.moving) if (p < q) bySpoke.set(Math.floor(p / layout.tracks), to);
  for (const [s, to] of bySpoke) {
    cellPath(ctx, c, { a0: angleOf(s, layout.spokes), a1: angleOf(s + 1, layout.spokes), r0: g.outer + 4, r1: g.bandOuter }, 0);
    ctx.fillStyle = pic.colors.get(to) ?? '#fff';
    ctx.fill();
  }
  if (pic.highlight !== null && pic.highlight !== undefined && pic.highlight < q) {
    cellPath(ctx, c, cellOf(pic.highlight, layout, g), -1);
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

/** The partition under a point of the canvas (CSS pixels), or null off the ring. */
export function partitionAt(x: number, y: number, q: number, g: RingGeometry): number | null {
  const c = g.size / 2;
  const r = Math.hypot(x - c, y - c);
  if (q === 0 || r < g.inner || r >= g.outer) return null;
  const layout = layoutFor(q);
  let a = Math.atan2(y - c, x - c) + Math.PI / 2;
  if (a < 0) a += 2 * Math.PI;
  const spoke = Math.min(layout.spokes - 1, Math.floor((a / (2 * Math.PI)) * layout.spokes));
  const track = Math.min(layout.tracks - 1, Math.floor(((r - g.inner) / (g.outer - g.inner)) * layout.tracks));
  return Math.min(q - 1, spoke * layout.tracks + track);
}
