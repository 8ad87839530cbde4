//! exo's session core: what turns a plugin's token into a working Exchange session.
//!
//! - [`environment`]: the clouds exo can talk to and how their URLs and scopes are derived;
//! - [`connection`]: a connection, its tokens, and where its parameters came from;
//! - [`cache`]: the encrypted token cache shared by every `exo` process of the user;
//! - [`keys`]: where the cache's key is kept;
//! - [`private`]: state folders and files that are the user's alone, and the refusal of others';
//! - [`renewal`]: keeping a connection's token valid, once for all processes.

pub mod cache;
pub mod connection;
pub mod environment;
pub mod keys;
pub mod private;
pub mod renewal;
