//! blur_faces: Gaussian-blur every detection's box in place, in ONE blur call.
//! config: kernel (odd, default 31).
mod pipeless;
use pipeless::{FilterError, Frame, Rect};

static mut KERNEL: u32 = 31;

fn init(cfg: &str) -> Result<(), String> {
    let k = pipeless::config_number(cfg, "kernel", 31.0);
    if k < 1.0 || k > 255.0 || (k as i32) % 2 == 0 {
        return Err("kernel must be odd, 1..255".to_string());
    }
    unsafe { KERNEL = k as u32 };
    Ok(())
}

fn process(frame: &Frame) -> Result<(), FilterError> {
    let dets = pipeless::get_detections(frame);
    if dets.is_empty() {
        return Ok(());
    }
    let rects: Vec<Rect> = dets.iter().map(|d| pipeless::box_rect(&d.bbox)).collect();
    frame.blur(&rects, unsafe { KERNEL });
    Ok(())
}
