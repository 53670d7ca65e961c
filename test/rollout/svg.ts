import type { Phase } from './pods.ts';
import type { Kind } from './load.ts';
import type { Series } from './report.ts';


// One section per scenario, sharing nothing but the width: request rate, failures by kind,
// latency (log scale), then one lane per pod with its phases. Rollouts are shaded across the
// section, darker until `kubectl rollout status` would return, lighter until the replaced pods
// are gone.

const internals = {
    width: 1400,
    left: 150,
    right: 30,
    laneHeight: 13,
    panel: { rate: 70, errors: 70, latency: 90 },
    gap: 22,

    phases: {
        starting: '#f0c05a',
        ready: '#3a9d5d',
        unready: '#e8873a',
        terminating: '#8e5bb5',
        gone: '#ffffff'
    } satisfies Record<Phase, string>,

    kinds: [['refused', '#d62728'], ['reset', '#ff7f0e'], ['5xx', '#9467bd'], ['timeout', '#8c564b'], ['client', '#7f7f7f'], ['other', '#bcbd22']] as [Kind, string][],

    escape: (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),

    text(x: number, y: number, content: string, attributes = ''): string {

        return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${internals.escape(content)}</text>`;
    },

    niceMax(value: number): number {

        if (value <= 1) {
            return 1;
        }

        const target = value * 1.05;
        const magnitude = 10 ** Math.floor(Math.log10(target));
        return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((step) => step * magnitude).find((candidate) => candidate >= target) ?? 10 * magnitude;
    },

    section(series: Series, top: number): { svg: string; height: number } {

        const { left, right, width, gap, panel, laneHeight } = internals;
        const plotWidth = width - left - right;
        const x = (t: number) => left + Math.max(0, Math.min(t, series.duration)) / series.duration * plotWidth;
        const out: string[] = [];
        let y = top;

        out.push(internals.text(10, y + 16, series.title, 'class="title"'));
        out.push(internals.text(10, y + 34, series.headline, 'class="note"'));
        y += 46;

        const sectionTop = y;
        const lanesHeight = series.lanes.length * laneHeight;
        const bodyHeight = panel.rate + gap + panel.errors + gap + panel.latency + gap + lanesHeight;

        // Warm-up and rollout windows behind everything.
        out.push(`<rect x="${left}" y="${sectionTop}" width="${(x(series.warmup) - left).toFixed(1)}" height="${bodyHeight}" class="warmup"/>`);
        out.push(internals.text(left + 2, sectionTop + 10, 'warm-up', 'class="small"'));
        for (const [i, rollout] of series.rollouts.entries()) {
            out.push(`<rect x="${x(rollout.from).toFixed(1)}" y="${sectionTop}" width="${(x(rollout.to) - x(rollout.from)).toFixed(1)}" height="${bodyHeight}" class="settling"/>`);
            out.push(`<rect x="${x(rollout.from).toFixed(1)}" y="${sectionTop}" width="${(x(rollout.complete) - x(rollout.from)).toFixed(1)}" height="${bodyHeight}" class="rollout"/>`);
            out.push(internals.text(x(rollout.from) + 2, sectionTop + 10, `${series.windowLabel ?? 'rollout'} ${i + 1}`, 'class="small"'));
        }

        const frame = (label: string, height: number, axis: string[]) => {

            out.push(`<rect x="${left}" y="${y}" width="${plotWidth}" height="${height}" class="frame"/>`);
            out.push(internals.text(10, y + height / 2 + 4, label, 'class="label"'));
            for (const line of axis) {
                out.push(line);
            }
        };

        const buckets = series.buckets;
        const step = plotWidth / Math.max(buckets.length, 1);

        // Request rate: sent and answered successfully, per second.
        const rateMax = internals.niceMax(Math.max(...buckets.map((bucket) => bucket.sent), 1));
        const rateY = (value: number) => y + panel.rate - value / rateMax * panel.rate;
        frame('requests/s', panel.rate, [internals.text(left - 8, y + 9, String(rateMax), 'class="tick" text-anchor="end"'), internals.text(left - 8, y + panel.rate, '0', 'class="tick" text-anchor="end"')]);
        const line = (values: (number | null)[], scale: (value: number) => number, cls: string) => {

            const points = values.map((value, i) => (value === null ? null : `${(left + (i + 0.5) * step).toFixed(1)},${scale(value).toFixed(1)}`));
            const runs: string[][] = [[]];
            for (const point of points) {
                if (point === null) {
                    runs.push([]);
                }
                else {
                    runs.at(-1)!.push(point);
                }
            }

            for (const run of runs.filter((points) => points.length)) {
                out.push(`<polyline points="${run.join(' ')}" class="${cls}"/>`);
            }
        };

        line(buckets.map((bucket) => bucket.sent), rateY, 'sent');
        line(buckets.map((bucket) => bucket.ok), rateY, 'ok');
        out.push(internals.text(left + plotWidth - 4, y + 12, 'sent (grey) · 2xx (green)', 'class="small" text-anchor="end"'));
        y += panel.rate + gap;

        // Failures per second, stacked by kind.
        const failedPerBucket = buckets.map((bucket) => internals.kinds.reduce((sum, [kind]) => sum + bucket.failed[kind], 0));
        const errorMax = internals.niceMax(Math.max(...failedPerBucket, 1));
        frame('failures/s', panel.errors, [internals.text(left - 8, y + 9, String(errorMax), 'class="tick" text-anchor="end"'), internals.text(left - 8, y + panel.errors, '0', 'class="tick" text-anchor="end"')]);
        for (const [i, bucket] of buckets.entries()) {
            let base = y + panel.errors;
            for (const [kind, color] of internals.kinds) {
                const count = bucket.failed[kind];
                if (count) {
                    const height = Math.max(count / errorMax * panel.errors, 1.5);
                    base -= height;
                    out.push(`<rect x="${(left + i * step + 0.5).toFixed(1)}" y="${base.toFixed(1)}" width="${Math.max(step - 1, 1).toFixed(1)}" height="${height.toFixed(1)}" fill="${color}"><title>${kind}: ${count}</title></rect>`);
                }
            }
        }

        const total = failedPerBucket.reduce((sum, value) => sum + value, 0);
        let legendX = left + plotWidth - 4;
        for (const [kind, color] of [...internals.kinds].reverse()) {
            out.push(internals.text(legendX, y + 12, kind, 'class="small" text-anchor="end"'));
            legendX -= kind.length * 6 + 4;
            out.push(`<rect x="${legendX - 8}" y="${y + 4}" width="8" height="8" fill="${color}"/>`);
            legendX -= 16;
        }

        if (!total) {
            out.push(internals.text(left + plotWidth / 2, y + panel.errors / 2 + 5, 'no failed request', 'class="none" text-anchor="middle"'));
        }

        y += panel.errors + gap;

        // Latency of answered requests, p50 and p99 per second, log scale from 1 ms to 10 s.
        const latencyY = (ms: number) => y + panel.latency - (Math.log10(Math.max(ms, 1)) / 4) * panel.latency;
        const ticks = [1, 10, 100, 1000, 10000].map((ms) => internals.text(left - 8, latencyY(ms) + 4, ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`, 'class="tick" text-anchor="end"'));
        frame('latency', panel.latency, ticks);
        for (const ms of [10, 100, 1000]) {
            out.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${latencyY(ms).toFixed(1)}" y2="${latencyY(ms).toFixed(1)}" class="grid"/>`);
        }

        line(buckets.map((bucket) => bucket.p50), latencyY, 'p50');
        line(buckets.map((bucket) => bucket.p99), latencyY, 'p99');
        out.push(internals.text(left + plotWidth - 4, y + 12, 'p50 (blue) · p99 (red)', 'class="small" text-anchor="end"'));
        y += panel.latency + gap;

        // Pods, one lane each.
        for (const lane of series.lanes) {
            out.push(internals.text(left - 8, y + laneHeight - 3, `${lane.name} (r${lane.revision})`, 'class="lane" text-anchor="end"'));
            for (const segment of lane.segments) {
                out.push(`<rect x="${x(segment.from).toFixed(1)}" y="${y + 1}" width="${Math.max(x(segment.to) - x(segment.from), 0.5).toFixed(1)}" height="${laneHeight - 2}" fill="${internals.phases[segment.phase]}"><title>${lane.name} ${segment.phase} ${segment.from.toFixed(1)}-${segment.to.toFixed(1)} s</title></rect>`);
            }

            for (const at of lane.sigkills) {
                out.push(internals.text(x(at), y + laneHeight - 2, '✕', 'class="kill" text-anchor="middle"'));
            }

            y += laneHeight;
        }

        // Time axis.
        const tickEvery = series.duration > 240 ? 30 : series.duration > 90 ? 10 : 5;
        for (let t = 0; t <= series.duration; t += tickEvery) {
            out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${y}" y2="${y + 4}" class="axis"/>`);
            out.push(internals.text(x(t), y + 15, `${t} s`, 'class="tick" text-anchor="middle"'));
        }

        y += 20;
        let legend = left;
        for (const phase of ['starting', 'ready', 'unready', 'terminating'] as const) {
            out.push(`<rect x="${legend}" y="${y}" width="10" height="10" fill="${internals.phases[phase]}"/>`);
            out.push(internals.text(legend + 14, y + 9, phase, 'class="small"'));
            legend += 90;
        }

        out.push(internals.text(legend, y + 9, series.windowLegend ?? '✕ SIGKILL · shaded: rollout until complete, lighter until the replaced pods are gone', 'class="small"'));
        y += 24;

        return { svg: out.join('\n'), height: y - top };
    }
};


export const render = function (all: readonly Series[], title: string): string {

    const parts: string[] = [];
    let y = 40;
    for (const series of all) {
        const section = internals.section(series, y);
        parts.push(section.svg);
        y += section.height + 24;
    }

    return `<svg xmlns="http://www.w3.org/2000/svg" width="${internals.width}" height="${y}" viewBox="0 0 ${internals.width} ${y}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 15px; font-weight: bold; fill: #222; }
  .heading { font-size: 18px; font-weight: bold; fill: #111; }
  .note { font-size: 12px; fill: #333; }
  .label { font-size: 12px; fill: #333; }
  .lane { font-size: 10px; fill: #444; }
  .tick { font-size: 10px; fill: #555; }
  .small { font-size: 10px; fill: #444; }
  .none { font-size: 13px; fill: #3a9d5d; }
  .kill { font-size: 12px; font-weight: bold; fill: #d62728; }
  .frame { fill: none; stroke: #bbb; }
  .grid { stroke: #e4e4e4; }
  .axis { stroke: #888; }
  .rollout { fill: #3b7dd8; fill-opacity: 0.10; }
  .warmup { fill: #999; fill-opacity: 0.10; }
  .settling { fill: #3b7dd8; fill-opacity: 0.05; }
  .sent { fill: none; stroke: #999; stroke-width: 1.5; }
  .ok { fill: none; stroke: #3a9d5d; stroke-width: 1.2; }
  .p50 { fill: none; stroke: #1f77b4; stroke-width: 1.2; }
  .p99 { fill: none; stroke: #d62728; stroke-width: 1.2; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
${internals.text(10, 24, title, 'class="heading"')}
${parts.join('\n')}
</svg>
`;
};
