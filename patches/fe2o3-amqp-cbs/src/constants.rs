//! Defines constants used in the crate

/// Address of CBS node defined in spec
pub const CBS_NODE_ADDR: &str = "$cbs";

/// Put token operation
pub const PUT_TOKEN: &str = "put-token";

/// Address of CBS client node
pub const DEFAULT_CBS_CLIENT_NODE: &str = "cbs-client-node";

/// Name of the operation property
pub const EXPIRATION: &str = "expiration";
