//! DefaultPreemption (skeleton: being written).

use std::sync::Arc;

use crate::framework::Plugin;
use crate::registry::Handle;

/// The plugin's name.
pub const NAME: &str = "DefaultPreemption";

/// See the module documentation.
#[derive(Debug)]
pub struct DefaultPreemption;

/// The factory.
pub fn new(_args: &serde_json::Value, _handle: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultPreemption))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}
