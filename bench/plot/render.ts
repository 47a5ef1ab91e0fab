// Vega-Lite spec → SVG text, in Node without a canvas: Vega's headless view
// (renderer 'none') writes the SVG itself and estimates text widths.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Look shared by every picture: readable type, a light frame, white background. */
export const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  background: 'white',
  padding: 12,
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: '#555', anchor: 'start', offset: 12 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6' },
  // Long stroke symbols so that dashed and dotted lines are told apart in the legend.
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 320, symbolSize: 260, symbolStrokeWidth: 2 },
  header: { labelFontSize: 12 },
  view: { stroke: '#ccc' },
} as const;

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile({ ...spec, config: { ...CONFIG, ...spec.config } } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
