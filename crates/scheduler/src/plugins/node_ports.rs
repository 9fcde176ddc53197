//! NodePorts (skeleton: being written).

use std::sync::Arc;

use crate::framework::Plugin;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodePorts";

/// See the module documentation.
#[derive(Debug)]
pub struct NodePorts;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodePorts))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
}
