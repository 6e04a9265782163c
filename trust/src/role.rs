//! A node's role in the trust space and in its configuration.

use serde::Deserialize;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member state's node: signs, relays, receives, recognises.
    Member,
    /// The Commission's hub: stores and forwards between members without reading bodies.
    Hub,
}
