/**
 * The loss curve of a run as SVG: every candidate's objective (points) and the best so far
 * (line) against evaluations, rendered headlessly by vega-lite/vega.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { GenerationRecord } from './adapt.ts';

export async function lossCurveSvg(trace: GenerationRecord[], title: string): Promise<string> {
  const points: { evaluation: number; objective: number }[] = [];
  const best: { evaluation: number; objective: number }[] = [];
  let e = 0;
  for (const rec of trace) {
    for (const v of rec.values) {
      e++;
      if (Number.isFinite(v)) points.push({ evaluation: e, objective: v });
    }
    best.push({ evaluation: rec.evaluations, objective: rec.best });
  }
  const x = { field: 'evaluation', type: 'quantitative', title: 'evaluations' } as const;
  const y = { field: 'objective', type: 'quantitative', title: 'objective (loss + 0.05·mean|w|)', scale: { zero: false } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 300,
    layer: [
      { data: { values: points }, mark: { type: 'point', size: 12, opacity: 0.35, color: '#888' }, encoding: { x, y } },
      { data: { values: best }, mark: { type: 'line', color: '#d62728', interpolate: 'step-after' }, encoding: { x, y } },
    ],
  };
  // Loaded here, not at the top: vega takes ~0.5 s to import, and every CLI command would pay it.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
