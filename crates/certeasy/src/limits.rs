//! Rate limits (`rate-limiting`): the decisions, and the exact moment a
//! refused client may retry.
//!
//! Two algorithms, chosen by where a limit's events already are:
//! - **Token buckets (GCRA, the `governor` crate)** for the limits counted
//!   per request — `global` per client IP, `account-creation` per IP,
//!   `order-creation` per account (orders, and names against the SAN
//!   budget). They cost a hash lookup and a compare-and-swap, no database
//!   write on the request path; their state is in this process's memory
//!   and is pruned of idle keys by [`Limits::maintain`].
//! - **Sliding windows over database rows** for the limits whose events
//!   are state the database holds anyway — `duplicate-certificate`
//!   (non-revoked certificates of an account for one name set) and
//!   `failed-validation` (failed validations per account and name, one row
//!   each in `limit_events`). They are exact, survive restarts, and hold
//!   across nodes sharing a database. [`window_retry_after`] turns the
//!   counted times into the refusal's `Retry-After`: when enough of them
//!   leave the window for one more to fit.
//!
//! `pending-authorizations` is counted in the new order's transaction by
//! the RA. docs/rate-limits.md lists every limit, its default, and which
//! must move to the database when several nodes share PostgreSQL.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Rate, RateLimiting};
use crate::store::Store;

/// A refusal: which limit, why, and when the client may retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The limit's configuration key (`rate-limiting.global`, …).
    pub limit: &'static str,
    /// The limit and its value, for the problem document.
    pub detail: String,
    /// When one more request fits (None: never, as configured).
    pub retry_after: Option<Duration>,
}

impl Denial {
    /// `Retry-After` in whole seconds, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            secs.max(1)
        })
    }
}

/// A token bucket per key, with the configured rate for messages.
#[derive(Debug)]
struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    rate: Rate,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(rate: Rate) -> Bucket<K> {
        let count = u32::try_from(rate.count.max(1)).unwrap_or(u32::MAX);
        let period = rate.per / count;
        let burst = NonZeroU32::new(u32::try_from(rate.burst).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Bucket {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            rate,
        }
    }

    /// Takes `n` tokens for `key` from the cluster's bucket `name` kept in
    /// the database when `shared` is set (several nodes on PostgreSQL), or
    /// from this node's bucket: Ok, or how long until they are there (None:
    /// more than the bucket holds). A database failure lets the event
    /// through (logged): a limit must not refuse clients for a fault of
    /// the server's.
    async fn take_in(
        &self,
        shared: Option<&Store>,
        name: &str,
        key: &K,
        n: u32,
    ) -> Result<(), Option<Duration>>
    where
        K: std::fmt::Display,
    {
        let Some(store) = shared else {
            return self.take(key, n);
        };
        let count = self.rate.count.max(1);
        let emission = (self.rate.per.as_millis() as i64 / count as i64).max(1);
        let burst = i64::try_from(self.rate.burst.max(1)).unwrap_or(i64::MAX);
        match store
            .cluster_bucket_take(name, &key.to_string(), i64::from(n), emission, burst)
            .await
        {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(wait_ms))) => {
                Err(wait_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)))
            }
            Ok(None) => self.take(key, n),
            Err(e) => {
                tracing::error!(target: "limits", limit = name, error = %e, "cannot count in the cluster's bucket; let through");
                Ok(())
            }
        }
    }

    /// Takes `n` tokens for `key`: Ok, or how long until they are there
    /// (None: more than the bucket holds).
    fn take(&self, key: &K, n: u32) -> Result<(), Option<Duration>> {
        let now = self.limiter.clock().now();
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Some(not_until.wait_time_from(now))),
            Err(_) => Err(None),
        }
    }
}

/// The limits of a running server.
#[derive(Debug)]
pub struct Limits {
    settings: RateLimiting,
    global: Option<Bucket<IpAddr>>,
    accounts: Option<Bucket<IpAddr>>,
    orders: Option<Bucket<String>>,
    names: Option<Bucket<String>>,
    /// Several nodes on PostgreSQL: `account-creation` and
    /// `order-creation` are counted in the database (docs/rate-limits.md).
    shared: Option<Store>,
}

/// "6000 per minute (burst 1000)".
fn describe(rate: &Rate, unit: &str) -> String {
    let per = if rate.per == Duration::from_secs(60) {
        "minute"
    } else if rate.per == Duration::from_secs(3600) {
        "hour"
    } else {
        "period"
    };
    format!("{} {unit} per {per} (burst {})", rate.count, rate.burst)
}

impl Limits {
    /// The limits as configured.
    pub fn new(settings: &RateLimiting) -> Limits {
        Limits {
            settings: settings.clone(),
            global: settings.global.map(Bucket::new),
            accounts: settings.account_creation.map(Bucket::new),
            orders: settings.orders.map(Bucket::new),
            names: settings.san_budget.map(Bucket::new),
            shared: None,
        }
    }

    /// The limits of a node of a cluster on `store`: `account-creation`
    /// and `order-creation` counted in the database for every node at once
    /// (one `INSERT … ON CONFLICT DO UPDATE … RETURNING` per counted
    /// event); `global` stays per node.
    pub fn cluster_wide(mut self, store: Store) -> Limits {
        self.shared = Some(store);
        self
    }

    /// The settings (for the database-counted limits).
    pub fn settings(&self) -> &RateLimiting {
        &self.settings
    }

    /// Whether `ip` is exempt from the per-IP limits.
    pub fn whitelisted(&self, ip: IpAddr) -> bool {
        self.settings.whitelist.iter().any(|n| n.contains(&ip))
    }

    async fn per_ip(
        &self,
        bucket: &Option<Bucket<IpAddr>>,
        shared: Option<&Store>,
        ip: IpAddr,
        limit: &'static str,
        unit: &str,
    ) -> Result<(), Denial> {
        let Some(b) = bucket else { return Ok(()) };
        if self.whitelisted(ip) {
            return Ok(());
        }
        b.take_in(shared, limit, &ip, 1)
            .await
            .map_err(|retry_after| Denial {
                limit,
                detail: format!("{limit}: more than {} from {ip}", describe(&b.rate, unit)),
                retry_after,
            })
    }

    /// `global`: one request from `ip`.
    pub fn request(&self, ip: IpAddr) -> Result<(), Denial> {
        let Some(b) = &self.global else { return Ok(()) };
        if self.whitelisted(ip) {
            return Ok(());
        }
        let limit = "rate-limiting.global";
        b.take(&ip, 1).map_err(|retry_after| Denial {
            limit,
            detail: format!(
                "{limit}: more than {} from {ip}",
                describe(&b.rate, "requests")
            ),
            retry_after,
        })
    }

    /// `account-creation`: one new account from `ip`.
    pub async fn account_creation(&self, ip: IpAddr) -> Result<(), Denial> {
        self.per_ip(
            &self.accounts,
            self.shared.as_ref(),
            ip,
            "rate-limiting.account-creation",
            "new accounts",
        )
        .await
    }

    /// `order-creation`: one new order of `names` names for `account`.
    pub async fn new_order(&self, account: &str, names: usize) -> Result<(), Denial> {
        let key = account.to_string();
        let shared = self.shared.as_ref();
        if let Some(b) = &self.orders {
            b.take_in(shared, "rate-limiting.order-creation", &key, 1)
                .await
                .map_err(|retry_after| Denial {
                    limit: "rate-limiting.order-creation",
                    detail: format!(
                        "rate-limiting.order-creation: more than {} for this account",
                        describe(&b.rate, "new orders")
                    ),
                    retry_after,
                })?;
        }
        if let Some(b) = &self.names {
            let n = u32::try_from(names).unwrap_or(u32::MAX);
            b.take_in(shared, "rate-limiting.order-creation.names", &key, n)
                .await
                .map_err(|retry_after| Denial {
                limit: "rate-limiting.order-creation",
                detail: format!(
                    "rate-limiting.order-creation: this order's {names} names exceed the account's budget of {} names per hour (san-budget-per-account-per-hour)",
                    b.rate.count
                ),
                retry_after,
            })?;
        }
        Ok(())
    }

    /// Forgets the buckets of idle keys (full again), so memory follows
    /// the active clients, not every address ever seen.
    pub fn maintain(&self) {
        fn prune<K: std::hash::Hash + Eq + Clone>(b: &Option<Bucket<K>>) {
            if let Some(b) = b {
                b.limiter.retain_recent();
                b.limiter.shrink_to_fit();
            }
        }
        prune(&self.global);
        prune(&self.accounts);
        prune(&self.orders);
        prune(&self.names);
    }
}

/// For a sliding-window limit of `max` events per `window`: with the times
/// (unix ms, oldest first) of the events counted in the window ending at
/// `now`, Ok when one more fits, else how long until it does — when the
/// oldest events that must leave the window have left it.
pub fn window_retry_after(
    times: &[i64],
    max: u64,
    window: Duration,
    now: i64,
) -> Result<(), Duration> {
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let counted: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| *t > now.saturating_sub(window_ms))
        .collect();
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if counted.len() < max {
        return Ok(());
    }
    // One more fits once all but max-1 have left: the (len-max)-th oldest
    // (0-based) leaves at its time + window.
    let leaving = counted[counted.len() - max];
    let at = leaving.saturating_add(window_ms);
    Err(Duration::from_millis(
        u64::try_from(at - now).unwrap_or(0).max(1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SlidingWindow;

    fn settings() -> RateLimiting {
        RateLimiting::default()
    }

    #[test]
    fn the_global_bucket_refuses_after_its_burst_with_the_refill_time() {
        let mut s = settings();
        s.global = Some(Rate {
            count: 60,
            per: Duration::from_secs(60),
            burst: 3,
        });
        let l = Limits::new(&s);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.request(ip).unwrap();
        }
        let d = l.request(ip).unwrap_err();
        assert_eq!(d.limit, "rate-limiting.global");
        assert!(
            d.detail.contains("60 requests per minute (burst 3)"),
            "{}",
            d.detail
        );
        let wait = d.retry_after.unwrap();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(d.retry_after_secs(), Some(1));
        // Another client is not affected; a whitelisted one never counts.
        l.request("192.0.2.2".parse().unwrap()).unwrap();
        s.whitelist = vec!["192.0.2.0/24".parse().unwrap()];
        let l = Limits::new(&s);
        for _ in 0..10 {
            l.request(ip).unwrap();
        }
    }

    fn order_settings() -> RateLimiting {
        let mut s = settings();
        s.orders = Some(Rate {
            count: 10,
            per: Duration::from_secs(3600),
            burst: 2,
        });
        s.san_budget = Some(Rate {
            count: 5,
            per: Duration::from_secs(3600),
            burst: 5,
        });
        s
    }

    async fn orders_and_names_are_budgeted(l: &Limits) {
        l.new_order("a", 3).await.unwrap();
        let d = l.new_order("a", 3).await.unwrap_err();
        assert!(
            d.detail.contains("budget of 5 names per hour"),
            "{}",
            d.detail
        );
        // 3 names take 3 × 12 min to come back; 2 are left, 1 more is needed.
        let wait = d.retry_after.unwrap();
        assert!(
            wait > Duration::from_secs(11 * 60) && wait <= Duration::from_secs(12 * 60),
            "{wait:?}"
        );
        let d = l.new_order("a", 1).await.unwrap_err();
        assert!(
            d.detail.contains("10 new orders per hour (burst 2)"),
            "{}",
            d.detail
        );
        l.new_order("b", 5).await.unwrap();
        assert_eq!(l.new_order("c", 6).await.unwrap_err().retry_after, None);
    }

    #[tokio::test]
    async fn orders_and_names_are_budgeted_per_account() {
        orders_and_names_are_budgeted(&Limits::new(&order_settings())).await;
    }

    /// The same budget, kept in the database for every node: two nodes'
    /// limits on one database share it (runs on PostgreSQL when
    /// `CERTEASY_TEST_PG_DSN` is set).
    #[tokio::test]
    async fn cluster_wide_budgets_are_shared_by_every_node() {
        let Some(pg) = crate::store::tests::test_pg_settings() else {
            eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
            return;
        };
        let store = Store::open_postgres(&pg).await.unwrap();
        let node = |store: &Store| Limits::new(&order_settings()).cluster_wide(store.clone());
        orders_and_names_are_budgeted(&node(&store)).await;
        // A second node sees the first's counts: "a" has no budget left.
        let other = node(&store);
        let d = other.new_order("a", 1).await.unwrap_err();
        assert!(d.detail.contains("new orders per hour"), "{}", d.detail);
        // account-creation per IP, across nodes.
        let mut s = settings();
        s.account_creation = Some(Rate {
            count: 60,
            per: Duration::from_secs(3600),
            burst: 2,
        });
        let (a, b) = (
            Limits::new(&s).cluster_wide(store.clone()),
            Limits::new(&s).cluster_wide(store.clone()),
        );
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        a.account_creation(ip).await.unwrap();
        b.account_creation(ip).await.unwrap();
        let d = a.account_creation(ip).await.unwrap_err();
        assert_eq!(d.limit, "rate-limiting.account-creation");
        assert!(d.retry_after.unwrap() <= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn disabled_limits_never_refuse() {
        let mut s = settings();
        s.global = None;
        s.orders = None;
        s.san_budget = None;
        let l = Limits::new(&s);
        for _ in 0..5000 {
            l.request("192.0.2.1".parse().unwrap()).unwrap();
            l.new_order("a", 100).await.unwrap();
        }
    }

    #[test]
    fn a_sliding_window_reopens_when_its_oldest_counted_events_leave() {
        let w = SlidingWindow {
            max: 3,
            window: Duration::from_secs(100),
        };
        let now = 1_000_000;
        assert!(window_retry_after(&[now - 50_000, now - 10_000], w.max, w.window, now).is_ok());
        // Three in the window: the oldest leaves at its time + 100 s.
        let times = [now - 200_000, now - 90_000, now - 50_000, now - 10_000];
        assert_eq!(
            window_retry_after(&times, w.max, w.window, now),
            Err(Duration::from_millis(10_000))
        );
        // Five in the window, max 3: the third oldest must leave.
        let times = [
            now - 95_000,
            now - 80_000,
            now - 60_000,
            now - 20_000,
            now - 1,
        ];
        assert_eq!(
            window_retry_after(&times, w.max, w.window, now),
            Err(Duration::from_millis(40_000))
        );
    }
}
