//! face_tracker (stateful): follows detections across frames by IoU and emits
//! enter/leave events. Same rules and output as filters/c/face_tracker.c:
//! detections in order each take the live track with the highest IoU >= min_iou
//! (ties: the lower id); unmatched -> new track ("enter"); a track unseen for
//! more than max_missing frames closes ("leave"). Arithmetic in f64.
//! config: min_iou (0.3), max_missing (5), label (only this label; default all).
//! Each stream has its own tracks (frame indices count per stream); ids are unique across streams.
mod pipeless;
use pipeless::{json_num, BoxF, FilterError, Frame};

struct Track {
    id: i32,
    stream: String,
    b: [f64; 4],
    last_seen: u64,
}

struct State {
    tracks: Vec<Track>,
    next_id: i32,
    min_iou: f64,
    max_missing: u64,
    label: Option<String>,
}

static mut STATE: Option<State> = None;

fn init(cfg: &str) -> Result<(), String> {
    let min_iou = pipeless::config_number(cfg, "min_iou", 0.3);
    let mm = pipeless::config_number(cfg, "max_missing", 5.0);
    if min_iou <= 0.0 || min_iou > 1.0 || mm < 0.0 {
        return Err("min_iou must be in (0, 1], max_missing >= 0".to_string());
    }
    let label = pipeless::config_string(cfg, "label").filter(|l| !l.is_empty());
    unsafe {
        STATE = Some(State { tracks: Vec::new(), next_id: 1, min_iou, max_missing: mm as u64, label });
    }
    Ok(())
}

fn iou(t: &[f64; 4], b: &BoxF) -> f64 {
    let (bx1, by1, bx2, by2) = (b.x1 as f64, b.y1 as f64, b.x2 as f64, b.y2 as f64);
    let ix1 = if t[0] > bx1 { t[0] } else { bx1 };
    let iy1 = if t[1] > by1 { t[1] } else { by1 };
    let ix2 = if t[2] < bx2 { t[2] } else { bx2 };
    let iy2 = if t[3] < by2 { t[3] } else { by2 };
    let (iw, ih) = (ix2 - ix1, iy2 - iy1);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    let ua = (t[2] - t[0]) * (t[3] - t[1]) + (bx2 - bx1) * (by2 - by1) - inter;
    if ua > 0.0 { inter / ua } else { 0.0 }
}

fn process(frame: &Frame) -> Result<(), FilterError> {
    let st = unsafe { STATE.as_mut() }.ok_or_else(|| FilterError::Fatal("not initialised".into()))?;
    let now = frame.index();
    let stream = frame.stream_id();
    let dets = pipeless::get_detections(frame);
    let mut used = vec![false; st.tracks.len()];
    let mut events: Vec<String> = Vec::new();
    for d in &dets {
        if let Some(l) = &st.label {
            if &d.label != l {
                continue;
            }
        }
        let mut best: Option<usize> = None;
        let mut best_iou = 0.0;
        for (i, t) in st.tracks.iter().enumerate() {
            if used[i] || t.stream != stream {
                continue;
            }
            let v = iou(&t.b, &d.bbox);
            let better = match best {
                None => true,
                Some(bi) => v > best_iou || (v == best_iou && t.id < st.tracks[bi].id),
            };
            if v >= st.min_iou && better {
                best = Some(i);
                best_iou = v;
            }
        }
        let i = match best {
            Some(i) => i,
            None => {
                if st.tracks.len() >= 64 {
                    return Err(FilterError::Failed("more than 64 live tracks".into()));
                }
                st.tracks.push(Track { id: st.next_id, stream: stream.clone(), b: [0.0; 4], last_seen: now });
                used.push(false);
                st.next_id += 1;
                events.push(format!("{{\"event\":\"enter\",\"id\":{}}}", st.next_id - 1));
                st.tracks.len() - 1
            }
        };
        used[i] = true;
        let t = &mut st.tracks[i];
        t.b = [d.bbox.x1 as f64, d.bbox.y1 as f64, d.bbox.x2 as f64, d.bbox.y2 as f64];
        t.last_seen = now;
    }
    let max_missing = st.max_missing;
    let mut keep = Vec::new();
    for (i, t) in st.tracks.drain(..).enumerate() {
        if t.stream == stream && !used[i] && now > t.last_seen + max_missing {
            events.push(format!("{{\"event\":\"leave\",\"id\":{}}}", t.id));
        } else {
            keep.push(t);
        }
    }
    keep.sort_by_key(|t| t.id);
    st.tracks = keep;
    let tracks: Vec<String> = st
        .tracks
        .iter()
        .filter(|t| t.stream == stream)
        .map(|t| {
            format!("{{\"id\":{},\"box\":[{},{},{},{}]}}", t.id, json_num(t.b[0]), json_num(t.b[1]), json_num(t.b[2]), json_num(t.b[3]))
        })
        .collect();
    pipeless::emit(&format!("{{\"frame\":{},\"events\":[{}],\"tracks\":[{}]}}", now, events.join(","), tracks.join(",")));
    Ok(())
}
