// The ring as a picture: Q partitions around a circle, each coloured by its
// owner, and an outer band marking partitions this node is handing over
// (coloured by their new owner). Contiguous partitions of one owner are one
// arc, so Q = 4096 over 30 owners stays a few hundred arcs and readable.

/** Distinct colours for up to ~40 members: golden-angle hues, two lightness steps. */
export function memberColor(index: number): string {
  const hue = Math.round((index * 137.508 + 200) % 360);
  return `hsl(${hue} 70% ${index % 2 === 0 ? 58 : 44}%)`;
}

/** Member id → colour, by the sorted ids (stable while the membership is). */
export function colorsFor(ids: readonly string[]): Map<string, string> {
  return new Map([...ids].sort().map((id, i) => [id, memberColor(i)]));
}

export interface Run {
  owner: string;
  /** First partition and count. */
  start: number;
  length: number;
}

/** Contiguous runs of one owner around the ring. */
export function ownerRuns(owners: readonly string[]): Run[] {
  const runs: Run[] = [];
  owners.forEach((owner, p) => {
    const last = runs.at(-1);
    if (last !== undefined && last.owner === owner) last.length++;
    else runs.push({ owner, start: p, length: 1 });
  });
  return runs;
}

export interface RingPicture {
  owners: readonly string[];
  colors: ReadonlyMap<string, string>;
  /** Partition → the member it is being handed to. */
  moving: ReadonlyMap<number, string>;
  /** Members shown as down (their arcs are hatched dark). */
  suspect: ReadonlySet<string>;
  /** Partition under the pointer, outlined. */
  highlight?: number | null;
}

export interface RingGeometry {
  size: number;
  outer: number;
  inner: number;
  bandOuter: number;
}

export function geometry(size: number): RingGeometry {
  const outer = size / 2 - 18;
  return { size, outer, inner: outer * 0.62, bandOuter: outer + 12 };
}

/** Angle of the start of partition p (0 at the top, clockwise). */
const angleOf = (p: number, q: number): number => -Math.PI / 2 + (2 * Math.PI * p) / q;

export function drawRing(ctx: CanvasRenderingContext2D, pic: RingPicture, g: RingGeometry): void {
  const q = pic.owners.length;
  const c = g.size / 2;
  ctx.clearRect(0, 0, g.size, g.size);
  if (q === 0) return;
  // Thin separators only where they would not swamp the colours.
  const separators = q <= 256;
  for (const run of ownerRuns(pic.owners)) {
    ctx.beginPath();
    ctx.arc(c, c, g.outer, angleOf(run.start, q), angleOf(run.start + run.length, q));
    ctx.arc(c, c, g.inner, angleOf(run.start + run.length, q), angleOf(run.start, q), true);
    ctx.closePath();
    ctx.fillStyle = pic.colors.get(run.owner) ?? '#666';
    ctx.fill();
    if (pic.suspect.has(run.owner)) {
      ctx.fillStyle = 'rgba(20, 20, 28, 0.55)';
      ctx.fill();
    }
  }
  if (separators) {
    ctx.strokeStyle = 'rgba(15, 18, 25, 0.9)';
    ctx.lineWidth = 1;
    for (let p = 0; p < q; p++) {
      const a = angleOf(p, q);
      ctx.beginPath();
      ctx.moveTo(c + g.inner * Math.cos(a), c + g.inner * Math.sin(a));
      ctx.lineTo(c + g.outer * Math.cos(a), c + g.outer * Math.sin(a));
      ctx.stroke();
    }
  }
  // Pending transfers: the outer band, in the colour of the receiving member; at least 0.6° wide to stay visible at Q = 4096.
  const minArc = (0.6 * Math.PI) / 180;
  for (const [p, to] of pic.moving) {
    const a0 = angleOf(p, q);
    const a1 = Math.max(angleOf(p + 1, q), a0 + minArc);
    ctx.beginPath();
    ctx.arc(c, c, g.bandOuter, a0, a1);
    ctx.arc(c, c, g.outer + 3, a1, a0, true);
    ctx.closePath();
    ctx.fillStyle = pic.colors.get(to) ?? '#fff';
    ctx.fill();
  }
  if (pic.highlight !== null && pic.highlight !== undefined && pic.highlight < q) {
    ctx.beginPath();
    ctx.arc(c, c, g.bandOuter + 2, angleOf(pic.highlight, q), angleOf(pic.highlight + 1, q) + (q > 256 ? minArc : 0));
    ctx.arc(c, c, g.inner - 2, angleOf(pic.highlight + 1, q) + (q > 256 ? minArc : 0), angleOf(pic.highlight, q), true);
    ctx.closePath();
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

/** The partition under a point of the canvas (CSS pixels), or null off the ring. */
export function partitionAt(x: number, y: number, q: number, g: RingGeometry): number | null {
  const c = g.size / 2;
  const r = Math.hypot(x - c, y - c);
  if (q === 0 || r < g.inner || r > g.bandOuter) return null;
  let a = Math.atan2(y - c, x - c) + Math.PI / 2;
  if (a < 0) a += 2 * Math.PI;
  return Math.min(q - 1, Math.floor((a / (2 * Math.PI)) * q));
}
