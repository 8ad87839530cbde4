//! exo's session core: what turns a plugin's token into a working Exchange session.
//!
//! - [`environment`]: the clouds exo can talk to and how their URLs and scopes are derived.

pub mod environment;
