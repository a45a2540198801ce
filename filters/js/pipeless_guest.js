// Helpers shared by the shipped JS guest filters (bundled into each component).
//
// They mirror filters/c/pipeless.h exactly, so a JS filter turns a detection
// box into the same integer rectangle, bit for bit, as the C and Rust ones:
// the pixels the host then changes are identical.

const LIMIT = 16777216;

/** One box edge -> a pixel coordinate: clamp to +-16777216, truncate toward zero, NaN -> 0 (pl_f2i). */
export function f2i(v) {
  if (Number.isNaN(v)) return 0;
  if (v > LIMIT) return LIMIT;
  if (v < -LIMIT) return -LIMIT;
  return Math.trunc(v) | 0;
}

/** A detection box -> the integer rect every shipped filter uses (pl_box_rect). */
export function boxRect(b) {
  const x1 = f2i(b.x1), y1 = f2i(b.y1), x2 = f2i(b.x2), y2 = f2i(b.y2);
  return { x: x1, y: y1, width: x2 > x1 ? x2 - x1 : 0, height: y2 > y1 ? y2 - y1 : 0 };
}

/** The filter's [filters.config] table, as the host hands it to init (JSON). */
export function parseConfig(text) {
  const cfg = text.trim() ? JSON.parse(text) : {};
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('config must be a JSON object');
  return cfg;
}

/** A numeric config value, or `dflt` when absent or not a number (pl_config_number). */
export function number(cfg, key, dflt) {
  const v = cfg[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}

/** A failure of this frame only (the instance is kept). */
export function failed(err) {
  return { tag: 'failed', val: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
}
