//! NodeResourcesBalancedAllocation (skeleton: being written).

use std::sync::Arc;

use crate::framework::Plugin;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "NodeResourcesBalancedAllocation";

/// See the module documentation.
#[derive(Debug)]
pub struct NodeResourcesBalancedAllocation;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeResourcesBalancedAllocation))
}

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
}
