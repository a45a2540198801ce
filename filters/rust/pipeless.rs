//! Hand-written Rust bindings for the WIT world pipeless:filter/filter@0.1.0
//! (wit/), no crates: built with `rustc --target wasm32-unknown-unknown`.
//!
//! A filter crate declares `mod pipeless;` and defines, at its root,
//!     fn init(config_json: &str) -> Result<(), String>
//!     fn process(frame: &pipeless::Frame) -> Result<(), pipeless::FilterError>
//! This module provides the canonical-ABI exports around them, the drop of
//! the frame borrow, cabi_realloc on the std allocator, and safe wrappers of
//! every import. `#[repr(C)]` layouts equal the canonical-ABI layouts of the
//! WIT records; tests/test_wasm_abi.py checks the built components' imports
//! against wit/.
#![allow(dead_code)]

use std::alloc::{alloc, realloc, Layout};

// ---- types ----
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BoxF {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}
#[derive(Clone, Copy, Debug)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}
#[derive(Debug)]
pub enum FilterError {
    /// This frame failed; the instance stays.
    Failed(String),
    /// This frame failed and the state is broken: the host rebuilds the instance.
    Fatal(String),
}

#[repr(C)]
#[derive(Clone, Copy)]
struct WStr {
    ptr: *const u8,
    len: usize,
}
impl WStr {
    fn of(s: &str) -> WStr {
        WStr { ptr: s.as_ptr(), len: s.len() }
    }
}

// ---- frame ----
#[repr(C)]
struct RawFrameInfo {
    width: u32,
    height: u32,
    channels: u32,
    stream_id: WStr,
    index: u64,
    pts: f64,
    has_model_input: bool,
}
#[derive(Clone, Debug)]
pub struct FrameInfo {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub stream_id: String,
    pub index: u64,
    pub pts: f64,
    pub has_model_input: bool,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InputTransform {
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}
pub enum ColorConversion {
    SwapRb = 0,
    Grayscale = 1,
    Invert = 2,
}
pub struct BoxShape {
    pub rect: Rect,
    pub color: Color,
    pub thickness: i32,
    pub label: String,
}
#[repr(C)]
struct RawBoxShape {
    rect: Rect,
    color: Color,
    thickness: i32,
    label: WStr,
}
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LineShape {
    pub start: Point,
    pub end: Point,
    pub color: Color,
    pub thickness: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CircleShape {
    pub center: Point,
    pub radius: i32,
    pub color: Color,
    pub thickness: i32,
}
pub struct TextShape {
    pub origin: Point,
    pub text: String,
    pub color: Color,
    pub scale: f32,
    pub thickness: i32,
}
#[repr(C)]
struct RawTextShape {
    origin: Point,
    text: WStr,
    color: Color,
    scale: f32,
    thickness: i32,
}
#[repr(C)]
struct RawList {
    ptr: *mut u8,
    len: usize,
}

#[link(wasm_import_module = "pipeless:filter/frame@0.1.0")]
extern "C" {
    #[link_name = "[method]frame.width"]
    fn frame_width(f: i32) -> u32;
    #[link_name = "[method]frame.height"]
    fn frame_height(f: i32) -> u32;
    #[link_name = "[method]frame.channels"]
    fn frame_channels(f: i32) -> u32;
    #[link_name = "[method]frame.stream-id"]
    fn frame_stream_id(f: i32, ret: *mut WStr);
    #[link_name = "[method]frame.index"]
    fn frame_index(f: i32) -> u64;
    #[link_name = "[method]frame.pts"]
    fn frame_pts(f: i32) -> f64;
    #[link_name = "[method]frame.info"]
    fn frame_info(f: i32, ret: *mut RawFrameInfo);
    #[link_name = "[method]frame.prepare-input"]
    fn frame_prepare_input(f: i32, some: i32, x: i32, y: i32, w: i32, h: i32, ret: *mut InputTransform);
    #[link_name = "[method]frame.convert-color"]
    fn frame_convert_color(f: i32, some: i32, x: i32, y: i32, w: i32, h: i32, conv: i32);
    #[link_name = "[method]frame.blur"]
    fn frame_blur(f: i32, ptr: *const Rect, len: usize, kernel: u32);
    #[link_name = "[method]frame.pixelate"]
    fn frame_pixelate(f: i32, ptr: *const Rect, len: usize, block: u32);
    #[link_name = "[method]frame.fill"]
    fn frame_fill(f: i32, ptr: *const Rect, len: usize, r: i32, g: i32, b: i32);
    #[link_name = "[method]frame.copy-region"]
    fn frame_copy_region(f: i32, sx: i32, sy: i32, sw: i32, sh: i32, dx: i32, dy: i32, dw: i32, dh: i32);
    #[link_name = "[method]frame.draw-boxes"]
    fn frame_draw_boxes(f: i32, ptr: *const RawBoxShape, len: usize);
    #[link_name = "[method]frame.draw-lines"]
    fn frame_draw_lines(f: i32, ptr: *const LineShape, len: usize);
    #[link_name = "[method]frame.draw-circles"]
    fn frame_draw_circles(f: i32, ptr: *const CircleShape, len: usize);
    #[link_name = "[method]frame.draw-texts"]
    fn frame_draw_texts(f: i32, ptr: *const RawTextShape, len: usize);
    #[link_name = "[method]frame.read-region"]
    fn frame_read_region(f: i32, x: i32, y: i32, w: i32, h: i32, ret: *mut RawList);
    #[link_name = "[method]frame.write-region"]
    fn frame_write_region(f: i32, x: i32, y: i32, w: i32, h: i32, ptr: *const u8, len: usize);
    #[link_name = "[resource-drop]frame"]
    fn frame_drop(f: i32);
}

unsafe fn take_string(s: WStr) -> String {
    if s.len == 0 {
        return String::new();
    }
    String::from_raw_parts(s.ptr as *mut u8, s.len, s.len)
}

/// The frame being processed (a borrow, valid during `process` only).
pub struct Frame(i32);

impl Frame {
    pub fn width(&self) -> u32 {
        unsafe { frame_width(self.0) }
    }
    pub fn height(&self) -> u32 {
        unsafe { frame_height(self.0) }
    }
    pub fn channels(&self) -> u32 {
        unsafe { frame_channels(self.0) }
    }
    pub fn stream_id(&self) -> String {
        let mut s = WStr { ptr: std::ptr::null(), len: 0 };
        unsafe {
            frame_stream_id(self.0, &mut s);
            take_string(s)
        }
    }
    pub fn index(&self) -> u64 {
        unsafe { frame_index(self.0) }
    }
    pub fn pts(&self) -> f64 {
        unsafe { frame_pts(self.0) }
    }
    pub fn info(&self) -> FrameInfo {
        unsafe {
            let mut raw: RawFrameInfo = std::mem::zeroed();
            frame_info(self.0, &mut raw);
            FrameInfo {
                width: raw.width,
                height: raw.height,
                channels: raw.channels,
                stream_id: take_string(raw.stream_id),
                index: raw.index,
                pts: raw.pts,
                has_model_input: raw.has_model_input,
            }
        }
    }
    pub fn prepare_input(&self, region: Option<Rect>) -> InputTransform {
        let mut t = InputTransform::default();
        let r = region.unwrap_or_default();
        unsafe { frame_prepare_input(self.0, region.is_some() as i32, r.x, r.y, r.width, r.height, &mut t) };
        t
    }
    pub fn convert_color(&self, region: Option<Rect>, conv: ColorConversion) {
        let r = region.unwrap_or_default();
        unsafe { frame_convert_color(self.0, region.is_some() as i32, r.x, r.y, r.width, r.height, conv as i32) }
    }
    pub fn blur(&self, regions: &[Rect], kernel: u32) {
        unsafe { frame_blur(self.0, regions.as_ptr(), regions.len(), kernel) }
    }
    pub fn pixelate(&self, regions: &[Rect], block: u32) {
        unsafe { frame_pixelate(self.0, regions.as_ptr(), regions.len(), block) }
    }
    pub fn fill(&self, regions: &[Rect], c: Color) {
        unsafe { frame_fill(self.0, regions.as_ptr(), regions.len(), c.r as i32, c.g as i32, c.b as i32) }
    }
    pub fn copy_region(&self, s: Rect, d: Rect) {
        unsafe { frame_copy_region(self.0, s.x, s.y, s.width, s.height, d.x, d.y, d.width, d.height) }
    }
    pub fn draw_boxes(&self, boxes: &[BoxShape]) {
        let raw: Vec<RawBoxShape> = boxes
            .iter()
            .map(|b| RawBoxShape { rect: b.rect, color: b.color, thickness: b.thickness, label: WStr::of(&b.label) })
            .collect();
        unsafe { frame_draw_boxes(self.0, raw.as_ptr(), raw.len()) }
    }
    pub fn draw_lines(&self, lines: &[LineShape]) {
        unsafe { frame_draw_lines(self.0, lines.as_ptr(), lines.len()) }
    }
    pub fn draw_circles(&self, circles: &[CircleShape]) {
        unsafe { frame_draw_circles(self.0, circles.as_ptr(), circles.len()) }
    }
    pub fn draw_texts(&self, texts: &[TextShape]) {
        let raw: Vec<RawTextShape> = texts
            .iter()
            .map(|t| RawTextShape { origin: t.origin, text: WStr::of(&t.text), color: t.color, scale: t.scale, thickness: t.thickness })
            .collect();
        unsafe { frame_draw_texts(self.0, raw.as_ptr(), raw.len()) }
    }
    pub fn read_region(&self, r: Rect) -> Vec<u8> {
        let mut l = RawList { ptr: std::ptr::null_mut(), len: 0 };
        unsafe {
            frame_read_region(self.0, r.x, r.y, r.width, r.height, &mut l);
            if l.len == 0 {
                return Vec::new();
            }
            Vec::from_raw_parts(l.ptr, l.len, l.len)
        }
    }
    pub fn write_region(&self, r: Rect, pixels: &[u8]) {
        unsafe { frame_write_region(self.0, r.x, r.y, r.width, r.height, pixels.as_ptr(), pixels.len()) }
    }
}

// ---- detections ----
#[derive(Clone, Debug)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    pub bbox: BoxF,
}
#[repr(C)]
struct RawDetection {
    label: WStr,
    score: f32,
    bbox: BoxF,
}

#[link(wasm_import_module = "pipeless:filter/detections@0.1.0")]
extern "C" {
    #[link_name = "get-detections"]
    fn get_detections_raw(f: i32, ret: *mut RawList);
    #[link_name = "set-detections"]
    fn set_detections_raw(f: i32, ptr: *const RawDetection, len: usize);
}

pub fn get_detections(frame: &Frame) -> Vec<Detection> {
    let mut l = RawList { ptr: std::ptr::null_mut(), len: 0 };
    unsafe {
        get_detections_raw(frame.0, &mut l);
        if l.len == 0 {
            return Vec::new();
        }
        let raw: Vec<RawDetection> = Vec::from_raw_parts(l.ptr as *mut RawDetection, l.len, l.len);
        raw.into_iter().map(|d| Detection { label: take_string(d.label), score: d.score, bbox: d.bbox }).collect()
    }
}

pub fn set_detections(frame: &Frame, dets: &[Detection]) {
    let raw: Vec<RawDetection> =
        dets.iter().map(|d| RawDetection { label: WStr::of(&d.label), score: d.score, bbox: d.bbox }).collect();
    unsafe { set_detections_raw(frame.0, raw.as_ptr(), raw.len()) }
}

// ---- output ----
#[link(wasm_import_module = "pipeless:filter/output@0.1.0")]
extern "C" {
    #[link_name = "emit"]
    fn emit_raw(ptr: *const u8, len: usize);
    #[link_name = "log"]
    fn log_raw(level: i32, ptr: *const u8, len: usize);
}

pub fn emit(json: &str) {
    unsafe { emit_raw(json.as_ptr(), json.len()) }
}
pub fn log(level: LogLevel, msg: &str) {
    unsafe { log_raw(level as i32, msg.as_ptr(), msg.len()) }
}

// ---- helpers shared by the filters (same rules as filters/c/pipeless.h) ----

/// Float -> int as every shipped filter does it: NaN -> 0, clamp to +-2^24, truncate.
pub fn f2i(v: f32) -> i32 {
    if v.is_nan() {
        0
    } else if v > 16777216.0 {
        16777216
    } else if v < -16777216.0 {
        -16777216
    } else {
        v as i32
    }
}

/// Detection box -> rect: each edge truncated toward zero.
pub fn box_rect(b: &BoxF) -> Rect {
    let (x1, y1, x2, y2) = (f2i(b.x1), f2i(b.y1), f2i(b.x2), f2i(b.y2));
    Rect { x: x1, y: y1, width: if x2 > x1 { x2 - x1 } else { 0 }, height: if y2 > y1 { y2 - y1 } else { 0 } }
}

/// The number after `"key":` in a flat JSON object, or `dflt`.
pub fn config_number(json: &str, key: &str, dflt: f64) -> f64 {
    let pat = format!("\"{}\"", key);
    let at = match json.find(&pat) {
        Some(at) => at,
        None => return dflt,
    };
    let rest = json[at + pat.len()..].trim_start_matches(|c: char| c == ' ' || c == ':');
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+')).unwrap_or(rest.len());
    rest[..end].parse().unwrap_or(dflt)
}

/// The string after `"key":` in a flat JSON object (no escapes), or None.
pub fn config_string(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{}\"", key);
    let at = json.find(&pat)?;
    let rest = json[at + pat.len()..].trim_start_matches(|c: char| c == ' ' || c == ':');
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A number with 3 decimals, rounded half away from zero (as the C filters print it).
pub fn json_num(v: f64) -> String {
    if v.is_nan() || v > 9e15 || v < -9e15 {
        return "null".to_string();
    }
    let milli = (v * 1000.0 + if v < 0.0 { -0.5 } else { 0.5 }) as i64;
    let (sign, m) = if milli < 0 { ("-", -milli) } else { ("", milli) };
    format!("{}{}.{:03}", sign, m / 1000, m % 1000)
}

// ---- canonical ABI exports ----
#[repr(C, align(8))]
struct RetArea([u8; 16]);
static mut RET: RetArea = RetArea([0; 16]);
static mut RET_STRING: Option<String> = None;

#[no_mangle]
pub unsafe extern "C" fn cabi_realloc(old: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    if new_size == 0 {
        return align as *mut u8;
    }
    let p = if old.is_null() || old_size == 0 {
        alloc(Layout::from_size_align_unchecked(new_size, align))
    } else {
        realloc(old, Layout::from_size_align_unchecked(old_size, align), new_size)
    };
    if p.is_null() {
        std::process::abort(); // over the memory cap
    }
    p
}

unsafe fn set_ret_string(at: usize, s: String) {
    let w = WStr::of(&s);
    std::ptr::write((RET.0.as_mut_ptr().add(at)) as *mut WStr, w);
    RET_STRING = Some(s);
}

#[export_name = "init"]
pub unsafe extern "C" fn export_init(ptr: *mut u8, len: usize) -> *mut u8 {
    let cfg = take_string(WStr { ptr, len });
    match crate::init(&cfg) {
        Ok(()) => RET.0[0] = 0,
        Err(e) => {
            RET.0[0] = 1;
            set_ret_string(4, e);
        }
    }
    RET.0.as_mut_ptr()
}

#[export_name = "cabi_post_init"]
pub unsafe extern "C" fn post_init(_ret: *mut u8) {
    RET_STRING = None;
}

#[export_name = "process"]
pub unsafe extern "C" fn export_process(handle: i32) -> *mut u8 {
    let frame = Frame(handle);
    let r = crate::process(&frame);
    frame_drop(handle); // a borrow must be returned before the call ends
    match r {
        Ok(()) => RET.0[0] = 0,
        Err(e) => {
            RET.0[0] = 1;
            let (case, msg) = match e {
                FilterError::Failed(m) => (0u8, m),
                FilterError::Fatal(m) => (1u8, m),
            };
            RET.0[4] = case;
            set_ret_string(8, msg);
        }
    }
    RET.0.as_mut_ptr()
}

#[export_name = "cabi_post_process"]
pub unsafe extern "C" fn post_process(_ret: *mut u8) {
    RET_STRING = None;
}
