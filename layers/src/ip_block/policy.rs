use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tower_mail::{CloseReason, Reject, Session};

use super::bans::Bans;
use super::{CidrSet, LAYER_NAME};
use crate::policy::Policy;
use crate::sessions::{RegistryGuard, SessionRegistry};

/// The lists an [`IpBlock`] enforces.
#[derive(Debug, Clone)]
pub struct IpLists {
    /// When not empty, only these networks may connect.
    pub allow: CidrSet,
    /// These networks may not connect (deny wins over allow).
    pub deny: CidrSet,
    /// What a refused client is told.
    pub message: String,
}

impl Default for IpLists {
    fn default() -> Self {
        IpLists {
            allow: CidrSet::new(),
            deny: CidrSet::new(),
            message: "IP address blocked".to_owned(),
        }
    }
}

impl IpLists {
    fn refusal(&self) -> Reject {
        Reject::new(&self.message).with_layer(LAYER_NAME)
    }

    fn permits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
    }
}

/// What the clones of one [`IpBlock`] share: the lists in force (with their refusal), the
/// temporary bans, and the live sessions if they are tracked.
struct ListsAndBans {
    // Read on every connection, swapped on reload: neither ever waits for the other. The
    // refusal is built once per list change, not per refused connection.
    lists: ArcSwap<(Arc<IpLists>, Reject)>,
    bans: Bans,
    live: Option<SessionRegistry>,
}

/// IP allow and deny lists as a [`Policy`]; clones share the lists, so a clone kept aside is
/// a handle to change them at run time. See the [module docs](super).
#[derive(Clone)]
pub struct IpBlock {
    state: Arc<ListsAndBans>,
}

/// Held by each session an [`IpBlock`] let in. When live sessions are tracked, dropping it
/// (the connection ended) removes the session from the registry.
#[derive(Debug)]
pub struct IpBlockPermit(#[allow(dead_code, reason = "held for its Drop")] Option<RegistryGuard>);

impl IpBlock {
    /// Enforce `lists`.
    pub fn new(lists: IpLists) -> IpBlock {
        IpBlock::build(lists, None)
    }

    /// Enforce `lists` and keep track of open sessions, so that [`replace`](IpBlock::replace)
    /// and [`ban`](IpBlock::ban) also end the sessions of addresses they deny. Costs one map
    /// entry per open session.
    pub fn ending_denied_sessions(lists: IpLists) -> IpBlock {
        IpBlock::build(lists, Some(SessionRegistry::new()))
    }

    fn build(lists: IpLists, live: Option<SessionRegistry>) -> IpBlock {
        let refusal = lists.refusal();
        IpBlock {
            state: Arc::new(ListsAndBans {
                lists: ArcSwap::from_pointee((Arc::new(lists), refusal)),
                bans: Bans::default(),
                live,
            }),
        }
    }

    /// The lists in force.
    pub fn lists(&self) -> Arc<IpLists> {
        self.state.lists.load().0.clone()
    }

    /// Replace the lists. Open sessions stay, unless live sessions are tracked
    /// ([`ending_denied_sessions`](IpBlock::ending_denied_sessions)): then those now denied end with
    /// the refusal text. Returns how many sessions were ended.
    pub fn replace(&self, lists: IpLists) -> usize {
        let refusal = lists.refusal();
        let lists = Arc::new(lists);
        self.state.lists.store(Arc::new((lists.clone(), refusal)));
        self.end_live_where(|ip| !lists.permits(ip), &lists.message)
    }

    /// Refuse `ip` for `duration`, on top of the lists. Ends its open sessions when live
    /// sessions are tracked.
    pub fn ban(&self, ip: IpAddr, duration: Duration) -> usize {
        let ip = ip.to_canonical();
        self.state.bans.insert(ip, duration);
        let message = self.lists().message.clone();
        self.end_live_where(|peer| peer == ip, &message)
    }

    /// Lift a temporary ban.
    pub fn unban(&self, ip: IpAddr) {
        self.state.bans.remove(ip.to_canonical());
    }

    /// Whether `ip` may connect now.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.lists().permits(ip) && !self.state.bans.is_banned(ip)
    }

    fn end_live_where(&self, denied: impl Fn(IpAddr) -> bool, message: &str) -> usize {
        let Some(live) = &self.state.live else {
            return 0;
        };
        let reject = Reject::new(message).with_layer(LAYER_NAME);
        live.end_where(
            |session| denied(session.remote_addr().ip().to_canonical()),
            || CloseReason::Kicked(reject.message().to_owned()),
        )
    }
}

impl Policy for IpBlock {
    type Permit = IpBlockPermit;
    type Future = Ready<Result<IpBlockPermit, Reject>>;

    fn name(&self) -> &'static str {
        LAYER_NAME
    }

    fn check(&self, session: &Arc<Session>) -> Self::Future {
        ready(self.decide(session))
    }

    fn check_now(&self, session: &Arc<Session>) -> Option<Result<IpBlockPermit, Reject>> {
        Some(self.decide(session))
    }
}

/// Its verdict depends on the address alone.
impl crate::policy::AddressPolicy for IpBlock {
    /// The lists and bans alone: a session let through is not registered as live (it is,
    /// by the layer, once past the handshake).
    fn refuses_now(&self, session: &Arc<Session>) -> Option<Reject> {
        self.refusal(session)
    }
}

impl IpBlock {
    fn decide(&self, session: &Arc<Session>) -> Result<IpBlockPermit, Reject> {
        if let Some(refusal) = self.refusal(session) {
            return Err(refusal);
        }
        let guard = self.state.live.as_ref().map(|live| live.register(session));
        Ok(IpBlockPermit(guard))
    }

    /// The refusal for `session`'s address, if the lists or a ban deny it.
    fn refusal(&self, session: &Session) -> Option<Reject> {
        let ip = session.remote_addr().ip().to_canonical();
        // Borrow for the lookup rather than clone the Arc: this runs on every connection.
        let current = self.state.lists.load();
        let (lists, refusal) = &**current;
        (!lists.permits(ip) || self.state.bans.is_banned(ip)).then(|| refusal.clone())
    }
}

impl std::fmt::Debug for IpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lists = self.lists();
        f.debug_struct("IpBlock")
            .field("allow_ranges", &lists.allow.ranges())
            .field("deny_ranges", &lists.deny.ranges())
            .field("bans", &self.state.bans.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(allow: &str, deny: &str) -> IpLists {
        IpLists {
            allow: CidrSet::parse_list(allow).unwrap(),
            deny: CidrSet::parse_list(deny).unwrap(),
            message: "Go away".into(),
        }
    }

    fn session(ip: &str) -> Arc<Session> {
        Arc::new(Session::new(
            tower_mail::Protocol::Pop3,
            std::net::SocketAddr::new(ip.parse().unwrap(), 40000),
            "127.0.0.1:110".parse().unwrap(),
        ))
    }

    fn verdict(block: &IpBlock, ip: &str) -> Result<(), String> {
        let check = block.check(&session(ip)).into_inner();
        check
            .map(drop)
            .map_err(|r| format!("{}/{}", r.layer(), r.message()))
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let block = IpBlock::new(lists("10.0.0.0/8", "10.9.0.0/16"));
        assert_eq!(verdict(&block, "10.1.2.3"), Ok(()));
        assert_eq!(verdict(&block, "10.9.1.1"), Err("ip_block/Go away".into()));
        assert_eq!(verdict(&block, "192.0.2.1"), Err("ip_block/Go away".into()));
        assert_eq!(
            verdict(&block, "::ffff:10.9.1.1"),
            Err("ip_block/Go away".into())
        );
    }

    #[test]
    fn replace_takes_effect_for_the_next_connection() {
        let block = IpBlock::new(lists("", ""));
        let handle = block.clone();
        assert_eq!(verdict(&block, "192.0.2.1"), Ok(()));
        handle.replace(lists("", "192.0.2.0/24"));
        assert!(verdict(&block, "192.0.2.1").is_err());
    }

    #[test]
    fn bans_expire_and_can_be_lifted() {
        let block = IpBlock::new(lists("", ""));
        block.ban("192.0.2.1".parse().unwrap(), Duration::from_secs(3600));
        block.ban("192.0.2.2".parse().unwrap(), Duration::ZERO);
        assert!(verdict(&block, "192.0.2.1").is_err());
        assert_eq!(
            verdict(&block, "192.0.2.2"),
            Ok(()),
            "an expired ban no longer refuses"
        );
        assert!(verdict(&block, "::ffff:192.0.2.1").is_err());
        block.unban("192.0.2.1".parse().unwrap());
        assert_eq!(verdict(&block, "192.0.2.1"), Ok(()));
    }

    #[test]
    fn the_peek_before_a_handshake_agrees_with_the_check() {
        use crate::policy::AddressPolicy;
        let block = IpBlock::ending_denied_sessions(lists("", "192.0.2.0/24"));
        block.ban("198.51.100.9".parse().unwrap(), Duration::from_secs(60));
        for ip in [
            "192.0.2.1",
            "198.51.100.9",
            "198.51.100.1",
            "::ffff:192.0.2.7",
        ] {
            let peek = block
                .refuses_now(&session(ip))
                .map(|r| r.message().to_owned());
            assert_eq!(
                peek,
                verdict(&block, ip).err().map(|_| "Go away".into()),
                "{ip}"
            );
        }
    }

    #[test]
    fn tracked_sessions_now_denied_are_ended_and_others_kept() {
        let block = IpBlock::ending_denied_sessions(lists("", ""));
        let (bad, good) = (session("192.0.2.1"), session("198.51.100.1"));
        let bad_permit = block.check(&bad).into_inner().unwrap();
        let _good_permit = block.check(&good).into_inner().unwrap();
        assert_eq!(block.replace(lists("", "192.0.2.0/24")), 1);
        assert_eq!(
            bad.end_reason(),
            Some(CloseReason::Kicked("Go away".into()))
        );
        assert!(!good.is_ending());
        // A session that has ended is no longer tracked.
        drop(bad_permit);
        assert_eq!(
            block.ban("192.0.2.1".parse().unwrap(), Duration::from_secs(5)),
            0
        );
    }
}
