// A uPlot time-series chart as a Preact component: made once, fed new data
// on every render.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  /** One value per x; null leaves a gap. */
  values: Array<number | null>;
}

export function TimeChart(props: { title: string; unit: string; xs: number[]; series: ChartSeries[]; height?: number; testId: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: props.height ?? 170,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // At least the last minute, at most the history's five: a young page does not stretch a few points over years.
        x: {
          time: true,
          range: (_u, min, max) => {
            const end = Number.isFinite(max) ? max : Date.now() / 1000;
            return [Math.min(Number.isFinite(min) ? min : end, end - 60), end];
          },
        },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        { stroke: '#8b93a7', grid: { stroke: 'rgba(139,147,167,0.12)' }, ticks: { stroke: 'rgba(139,147,167,0.2)' } },
        { stroke: '#8b93a7', grid: { stroke: 'rgba(139,147,167,0.12)' }, ticks: { stroke: 'rgba(139,147,167,0.2)' }, size: 68, values: (_u, vals) => vals.map((v) => `${fmt(v)}${props.unit}`) },
      ],
      series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, points: { show: false } }))],
    };
    plot.current = new uPlot(opts, [props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: props.height ?? 170 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // A new set of lines needs a new chart; new values only new data.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return (
    <div class="chart" data-testid={props.testId}>
      <h3>{props.title}</h3>
      <div ref={box} />
    </div>
  );
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (Math.abs(v) >= 10) return v.toFixed(0);
  return v.toFixed(Math.abs(v) >= 1 ? 1 : 2);
}
