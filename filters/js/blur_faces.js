// blur_faces: Gaussian-blur every detection's box in place, in ONE blur call.
//
// The JS twin of filters/c/blur_faces.c: same config, same box -> rect
// conversion, same single batched `blur`, so the pixels are identical.
// config: kernel (odd, 1..255, default 31).
import { getDetections } from 'pipeless:filter/detections@0.1.0';
import { boxRect, failed, number, parseConfig } from './pipeless_guest.js';

let kernel = 31;

export function init(config) {
  let k;
  try {
    k = number(parseConfig(config), 'kernel', 31);
  } catch (e) {
    throw `bad config: ${e.message}`;
  }
  if (k < 1 || k > 255 || Math.trunc(k) % 2 === 0) throw 'kernel must be odd, 1..255';
  kernel = Math.trunc(k);
}

export function process(frame) {
  try {
    const dets = getDetections(frame);
    if (dets.length) frame.blur(dets.map((d) => boxRect(d.box)), kernel);
  } catch (e) {
    throw failed(e);
  }
}
