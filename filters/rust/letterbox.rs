//! letterbox (pre stage): prepare the model input from the whole frame with the
//! host's letterbox op, and emit the mapping it applied.
mod pipeless;
use pipeless::{json_num, FilterError, Frame};

fn init(_cfg: &str) -> Result<(), String> {
    Ok(())
}

fn process(frame: &Frame) -> Result<(), FilterError> {
    if !frame.info().has_model_input {
        return Err(FilterError::Failed(
            "this frame has no model input (letterbox belongs in the pre stage of a pipeline with inference)".into(),
        ));
    }
    let t = frame.prepare_input(None);
    pipeless::emit(&format!(
        "{{\"scale_x\":{},\"scale_y\":{},\"pad_x\":{},\"pad_y\":{}}}",
        json_num(t.scale_x as f64),
        json_num(t.scale_y as f64),
        json_num(t.pad_x as f64),
        json_num(t.pad_y as f64)
    ));
    Ok(())
}
