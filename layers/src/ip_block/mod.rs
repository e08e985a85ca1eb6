//! Allow and deny lists of networks, IPv4 and IPv6, checked per connection.
//!
//! The layer itself arrives with the policy layers; [`CidrSet`] is its lookup table.

mod table;

pub use table::{CidrSet, parse_net};
