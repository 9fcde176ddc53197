//! NodeAffinity (skeleton: being written).

use std::sync::Arc;

use crate::framework::Plugin;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodeAffinity";

/// See the module documentation.
#[derive(Debug)]
pub struct NodeAffinity;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeAffinity))
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}
