// Small charts drawn as inline SVG: lines over time and a bar histogram. Colours come from the stylesheet's
// series classes (s0, s1, ...), shared with the legends.
import { h, s } from './dom.js';

const COLORS = ['#2f7d32', '#b3261e', '#1f5fbf', '#8a5a00', '#6b7280'];
const WIDTH = 480;
const HEIGHT = 180;
const PAD = { left: 36, right: 8, top: 10, bottom: 22 };

function niceMax(value) {
  if (value <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

function frame(title, max) {
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const grid = [0, 0.5, 1].map((share) => {
    const y = PAD.top + plotHeight * (1 - share);
    const label = Math.round(max * share * 100) / 100;
    return [
      s('line', { class: 'grid', x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y }),
      s('text', { x: PAD.left - 4, y: y + 3, 'text-anchor': 'end' }, label),
    ];
  });
  return s('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': title },
    s('title', null, title), grid,
    s('line', { class: 'axis', x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: HEIGHT - PAD.bottom }),
    s('line', { class: 'axis', x1: PAD.left, x2: WIDTH - PAD.right, y1: HEIGHT - PAD.bottom, y2: HEIGHT - PAD.bottom }));
}

function legend(names) {
  return h('ul', { class: 'legend' }, names.map((name, index) =>
    h('li', null, h('span', { class: `swatch s${index % COLORS.length}`, 'aria-hidden': 'true' }), name)));
}

// series: [{name, values: [number]}], all as long as labels (one label per point, e.g. a clock time).
export function lineChart(title, labels, series) {
  const max = niceMax(Math.max(0, ...series.flatMap((line) => line.values)));
  const svg = frame(title, max);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = labels.length > 1 ? plotWidth / (labels.length - 1) : 0;
  series.forEach((line, index) => {
    const points = line.values.map((value, i) =>
      `${(PAD.left + i * step).toFixed(1)},${(PAD.top + plotHeight * (1 - value / max)).toFixed(1)}`);
    svg.append(s('polyline', { points: points.join(' '), fill: 'none', stroke: COLORS[index % COLORS.length],
      'stroke-width': 2, 'stroke-linejoin': 'round' }));
  });
  const ticks = labels.length > 1 ? [0, Math.floor((labels.length - 1) / 2), labels.length - 1] : [0];
  for (const i of new Set(ticks)) {
    if (labels[i] === undefined) continue;
    const anchor = i === 0 ? 'start' : i === labels.length - 1 ? 'end' : 'middle';
    svg.append(s('text', { x: PAD.left + i * step, y: HEIGHT - 6, 'text-anchor': anchor }, labels[i]));
  }
  return h('figure', { class: 'figure' }, svg, legend(series.map((line) => line.name)));
}

// bars: [{label, value}]
export function barChart(title, bars) {
  const max = niceMax(Math.max(0, ...bars.map((bar) => bar.value)));
  const svg = frame(title, max);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const width = bars.length ? plotWidth / bars.length : plotWidth;
  bars.forEach((bar, i) => {
    const height = (plotHeight * bar.value) / max;
    const x = PAD.left + i * width;
    svg.append(s('rect', { x: x + 1, y: PAD.top + plotHeight - height, width: Math.max(width - 2, 1), height,
      fill: COLORS[2] }, s('title', null, `${bar.label}: ${bar.value}`)));
    if (bars.length <= 12 || i % Math.ceil(bars.length / 8) === 0) {
      svg.append(s('text', { x: x + width / 2, y: HEIGHT - 6, 'text-anchor': 'middle' }, bar.label));
    }
  });
  return h('figure', { class: 'figure' }, svg);
}
