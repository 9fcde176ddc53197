//! PodTopologySpread (skeleton: being written).

use std::sync::Arc;

use crate::framework::Plugin;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "PodTopologySpread";

/// See the module documentation.
#[derive(Debug)]
pub struct PodTopologySpread;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PodTopologySpread))
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}
