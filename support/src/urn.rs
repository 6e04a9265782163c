//! Message ids as the protocol writes them: `urn:uuid:…`.

use uuid::Uuid;

/// Parses `urn:uuid:…` (or a bare UUID).
pub fn parse_id(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s.strip_prefix("urn:uuid:").unwrap_or(s)).ok()
}
