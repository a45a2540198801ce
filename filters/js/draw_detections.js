// draw_detections: every detection's box with a "label NN%" tag, in ONE draw-boxes call.
//
// The JS twin of filters/c/draw_detections.c.
// config: r, g, b (box colour, default 0 255 0), thickness (1..64, default 2).
import { getDetections } from 'pipeless:filter/detections@0.1.0';
import { boxRect, failed, number, parseConfig } from './pipeless_guest.js';

let color = { r: 0, g: 255, b: 0 };
let thickness = 2;

/** "<label> <percent>%" with percent = int(score * 100 + 0.5) clamped to 0..100. */
function tag(label, score) {
  const s = score * 100 + 0.5;
  const pct = s < 0 ? 0 : s > 100 ? 100 : Math.trunc(s);
  return `${label} ${pct}%`;
}

export function init(config) {
  let cfg;
  try {
    cfg = parseConfig(config);
  } catch (e) {
    throw `bad config: ${e.message}`;
  }
  const [r, g, b] = [['r', 0], ['g', 255], ['b', 0]].map(([k, d]) => Math.trunc(number(cfg, k, d)) & 0xff);
  const t = Math.trunc(number(cfg, 'thickness', 2));
  if (t < 1 || t > 64) throw 'thickness must be 1..64';
  color = { r, g, b };
  thickness = t;
}

export function process(frame) {
  try {
    const dets = getDetections(frame);
    if (dets.length) {
      frame.drawBoxes(dets.map((d) => ({ rect: boxRect(d.box), color, thickness, label: tag(d.label, d.score) })));
    }
  } catch (e) {
    throw failed(e);
  }
}
