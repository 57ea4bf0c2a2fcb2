//! Placeholder until the window evaluation lands.

use k8s_openapi::jiff::Timestamp;

use crate::environment::Window;

pub enum Gate {
    Open,
    Closed {
        window: usize,
        reason: String,
        opens_at: Option<Timestamp>,
    },
}

#[derive(Debug)]
pub struct WindowError(pub String);

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn gate(_windows: &[Window], _now: Timestamp) -> Result<Gate, WindowError> {
    Ok(Gate::Open)
}

pub fn validate(_windows: &[Window]) -> Result<(), WindowError> {
    Ok(())
}
