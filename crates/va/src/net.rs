//! Deadlines, the IP policy gate and TCP dialling.
//!
//! [`dial`] is the only place that opens a TCP connection, and it checks the
//! IP policy first: a denied address is never contacted.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::{FailureKind, ValidationFailure};
use crate::policy::IpPolicy;

/// The end of one validation's time budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now.
    pub(crate) fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }

    /// The instant the budget runs out.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// Runs `f` until the deadline; on expiry fails with `kind` and
    /// "timed out after {total} {doing}".
    pub(crate) async fn run<T, F>(
        &self,
        kind: FailureKind,
        doing: impl FnOnce() -> String,
        f: F,
    ) -> Result<T, ValidationFailure>
    where
        F: Future<Output = Result<T, ValidationFailure>>,
    {
        match tokio::time::timeout_at(self.at, f).await {
            Ok(result) => result,
            Err(_) => Err(ValidationFailure::new(
                kind,
                format!("timed out after {:?} {}", self.total, doing()),
            )),
        }
    }
}

/// The policy check for a set of resolved addresses of `host`: the permitted
/// ones in order, or `Unauthorized` when every one is denied.
pub(crate) fn permitted(
    policy: &IpPolicy,
    profile: &str,
    host: &str,
    addresses: &[IpAddr],
) -> Result<Vec<IpAddr>, ValidationFailure> {
    let (allowed, denied): (Vec<IpAddr>, Vec<IpAddr>) = addresses
        .iter()
        .partition(|ip| contactable(**ip) && policy.permits(**ip));
    if allowed.is_empty() {
        return Err(denied_failure(profile, host, &denied));
    }
    Ok(allowed)
}

/// Whether `ip` can be a validation target at all, whatever the policy:
/// unspecified (`0.0.0.0` reaches the local host), multicast and broadcast
/// addresses never are.
pub(crate) fn contactable(ip: IpAddr) -> bool {
    match crate::policy::canonical(ip) {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

fn denied_failure(profile: &str, host: &str, denied: &[IpAddr]) -> ValidationFailure {
    if let [one] = denied {
        if !contactable(*one) {
            return ValidationFailure::new(
                FailureKind::Unauthorized,
                format!("address {one} of {host} is not a unicast address and is never contacted"),
            );
        }
    }
    let detail = match denied {
        [one] => format!(
            "address {one} of {host} is denied by the resolved-ip-policy of profile {profile}"
        ),
        many => {
            let list: Vec<String> = many.iter().map(IpAddr::to_string).collect();
            format!(
                "addresses {} of {host} are denied by the resolved-ip-policy of profile {profile}",
                list.join(", ")
            )
        }
    };
    ValidationFailure::new(FailureKind::Unauthorized, detail)
}

/// Opens a TCP connection to `addr` — after checking it against the policy
/// — giving up at `until`.
pub(crate) async fn dial(
    policy: &IpPolicy,
    profile: &str,
    host: &str,
    addr: SocketAddr,
    until: Instant,
) -> Result<TcpStream, ValidationFailure> {
    if !contactable(addr.ip()) || !policy.permits(addr.ip()) {
        return Err(denied_failure(profile, host, &[addr.ip()]));
    }
    match tokio::time::timeout_at(until, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(ValidationFailure::connection(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("connection refused at {addr}"),
            std::io::ErrorKind::TimedOut => format!("timed out connecting to {addr}"),
            _ => format!("cannot connect to {addr}: {e}"),
        })),
        Err(_) => Err(ValidationFailure::connection(format!(
            "timed out connecting to {addr}"
        ))),
    }
}

/// Dials the (already permitted) `addresses` in order until one accepts.
/// Each attempt gets a fair share of the remaining budget so that one
/// unroutable address cannot starve the others. All failures are reported.
pub(crate) async fn dial_first(
    policy: &IpPolicy,
    profile: &str,
    host: &str,
    addresses: &[IpAddr],
    port: u16,
    deadline: &Deadline,
) -> Result<(TcpStream, IpAddr), ValidationFailure> {
    let mut failures: Vec<ValidationFailure> = Vec::new();
    for (i, ip) in addresses.iter().enumerate() {
        let left = u32::try_from(addresses.len() - i).unwrap_or(u32::MAX);
        let now = Instant::now();
        let share = deadline.at().saturating_duration_since(now) / left;
        match dial(
            policy,
            profile,
            host,
            SocketAddr::new(*ip, port),
            now + share,
        )
        .await
        {
            Ok(stream) => return Ok((stream, *ip)),
            Err(e) if e.kind == FailureKind::Unauthorized => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Err(ValidationFailure::connection(format!(
            "no address to connect to for {host}"
        ))),
        1 => Err(failures.remove(0)),
        _ => {
            let details: Vec<String> = failures.into_iter().map(|f| f.detail).collect();
            Err(ValidationFailure::connection(details.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_deny_loopback() -> IpPolicy {
        IpPolicy::new(&[], &["127.0.0.0/8".to_owned()]).expect("policy")
    }

    #[test]
    fn permitted_filters_and_names_denied_addresses() {
        let p = policy_deny_loopback();
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        let doc: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(
            permitted(&p, "P", "x.test", &[loopback, doc]).expect("one allowed"),
            vec![doc]
        );
        let err = permitted(&p, "P", "x.test", &[loopback]).expect_err("denied");
        assert_eq!(err.kind, FailureKind::Unauthorized);
        assert_eq!(
            err.detail,
            "address 127.0.0.1 of x.test is denied by the resolved-ip-policy of profile P"
        );
    }

    #[test]
    fn unspecified_and_multicast_are_never_contacted() {
        let p = IpPolicy::new(&[], &["192.0.2.0/24".to_owned()]).expect("policy");
        for text in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "::ffff:0.0.0.0",
        ] {
            let ip: IpAddr = text.parse().expect("ip");
            let err = permitted(&p, "P", "x.test", &[ip]).expect_err(text);
            assert_eq!(err.kind, FailureKind::Unauthorized);
            assert!(err.detail.contains("never contacted"), "{err}");
        }
    }

    #[tokio::test]
    async fn dial_refuses_denied_address_without_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let err = dial(
            &policy_deny_loopback(),
            "P",
            "x.test",
            addr,
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .expect_err("denied");
        assert_eq!(err.kind, FailureKind::Unauthorized);
        assert!(err.detail.contains("127.0.0.1"), "{err}");
        assert_eq!(
            listener.accept().map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "nothing may have connected"
        );
    }
}
