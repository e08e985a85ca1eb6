//! Allow and deny lists of networks, IPv4 and IPv6, checked per connection.
//!
//! - Deny wins; when the allow list is not empty, only addresses in it may connect.
//! - An IPv4-mapped IPv6 peer matches its IPv4 form.
//! - Lookups are binary searches over merged ranges ([`CidrSet`]): fast at 100,000 entries.
//! - [`IpBlock::replace`] swaps the lists while running without touching open sessions;
//!   with [`IpBlock::ending_denied_sessions`], sessions whose address is now denied are ended.
//! - [`IpBlock::ban`] adds a temporary entry with an expiry, for other layers (an auth-failure
//!   counter, say) to block an address for a while.
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tower_mail_layers::ip_block::{CidrSet, IpBlock, IpBlockLayer, IpLists};
//!
//! let ip_block = IpBlock::new(IpLists {
//!     deny: CidrSet::parse_list("192.0.2.0/24\n2001:db8::/32").unwrap(),
//!     ..IpLists::default()
//! });
//! // Keep a clone to change the lists later: clones share them.
//! let handle = ip_block.clone();
//! # let service = tower::service_fn(|c: tower_mail::Connection| async move {
//! #     Ok::<_, tower_mail::BoxError>(tower_mail::CloseReport::new(c.session(), tower_mail::CloseReason::Logout)) });
//! let stack = ServiceBuilder::new().layer(IpBlockLayer::new(ip_block)).service(service);
//! handle.ban("198.51.100.7".parse().unwrap(), Duration::from_secs(600));
//! # drop(stack);
//! ```

mod bans;
mod policy;
mod table;

pub use policy::{IpBlock, IpBlockPermit, IpLists};
pub use table::{CidrSet, parse_list_entries, parse_net};

use crate::policy::{PolicyLayer, PolicyService};

/// The name refusals of this layer carry in metrics and logs.
pub const LAYER_NAME: &str = "ip_block";

/// Refuses connections by client address. See the [module docs](self).
pub type IpBlockLayer = PolicyLayer<IpBlock>;

/// The service [`IpBlockLayer`] makes.
pub type IpBlockService<S> = PolicyService<S, IpBlock>;

impl IpBlockLayer {
    /// Enforce `ip_block`'s lists.
    pub fn new(ip_block: IpBlock) -> Self {
        PolicyLayer::from_policy(ip_block)
    }
}
