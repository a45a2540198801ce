//! draw_detections: every detection's box with a "label NN%" tag, in ONE draw-boxes call.
//! config: r, g, b (box colour, default 0 255 0), thickness (default 2).
mod pipeless;
use pipeless::{BoxShape, Color, FilterError, Frame};

static mut COLOR: Color = Color { r: 0, g: 255, b: 0 };
static mut THICKNESS: i32 = 2;

fn init(cfg: &str) -> Result<(), String> {
    let t = pipeless::config_number(cfg, "thickness", 2.0) as i32;
    if !(1..=64).contains(&t) {
        return Err("thickness must be 1..64".to_string());
    }
    unsafe {
        COLOR = Color {
            r: pipeless::config_number(cfg, "r", 0.0) as u8,
            g: pipeless::config_number(cfg, "g", 255.0) as u8,
            b: pipeless::config_number(cfg, "b", 0.0) as u8,
        };
        THICKNESS = t;
    }
    Ok(())
}

/// "<label> <percent>%" with percent = int(score * 100 + 0.5) clamped to 0..100.
fn tag(label: &str, score: f32) -> String {
    let s = score as f64 * 100.0 + 0.5;
    let pct = if s < 0.0 { 0 } else if s > 100.0 { 100 } else { s as i32 };
    format!("{} {}%", label, pct)
}

fn process(frame: &Frame) -> Result<(), FilterError> {
    let dets = pipeless::get_detections(frame);
    if dets.is_empty() {
        return Ok(());
    }
    let (color, thickness) = unsafe { (COLOR, THICKNESS) };
    let boxes: Vec<BoxShape> = dets
        .iter()
        .map(|d| BoxShape { rect: pipeless::box_rect(&d.bbox), color, thickness, label: tag(&d.label, d.score) })
        .collect();
    frame.draw_boxes(&boxes);
    Ok(())
}
