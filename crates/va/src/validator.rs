//! The validator of one profile.
//!
//! The challenge methods (`dns01`, `http01`, `tls_alpn01`) are written
//! beside their checks, in the challenge modules, which import this one:
//! the imports run one way.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::dns::Resolvers;
use crate::error::{FailureKind, VaConfigError, ValidationFailure};
use crate::net::{permitted, Deadline};
use crate::profile::{normalise, ValidationProfile};

/// Validates challenges under one [`ValidationProfile`].
///
/// Build one per profile and share it (`Arc<Validator>`); it is `Send +
/// Sync`. Resolvers (one per zone) and TLS configurations are built once
/// here, not per validation. Every validation is bounded by
/// `profile.timeout` as a whole.
pub struct Validator {
    profile: ValidationProfile,
    pub(crate) resolvers: Resolvers,
    pub(crate) https_tls: Arc<ClientConfig>,
    pub(crate) alpn_tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Builds the validator: checks the profile and builds one DNS client
    /// per zone (see the crate's `dns` module notes: no response cache, no
    /// search list, no hosts file). Does no network I/O and needs no Tokio runtime;
    /// the validation methods must run on a Tokio runtime.
    pub fn new(profile: ValidationProfile) -> Result<Self, VaConfigError> {
        let profile_error = |reason: String| VaConfigError::Profile {
            profile: profile.name.clone(),
            reason,
        };
        if profile.zones.is_empty() {
            return Err(profile_error("no zone configured".into()));
        }
        if profile.timeout.is_zero() {
            return Err(profile_error("timeout must be positive".into()));
        }
        if profile.http01_port == 0 || profile.tls_alpn01_port == 0 {
            return Err(profile_error("challenge ports must be non-zero".into()));
        }
        let resolvers = Resolvers::new(&profile)?;
        let https_tls = crate::tls::client_config(&[b"http/1.1"])
            .map_err(|e| profile_error(format!("TLS configuration: {e}")))?;
        let alpn_tls = crate::tls::client_config(&[crate::ACME_TLS_ALPN_PROTOCOL])
            .map_err(|e| profile_error(format!("TLS configuration: {e}")))?;
        Ok(Self {
            profile,
            resolvers,
            https_tls,
            alpn_tls,
        })
    }

    /// The profile this validator applies.
    pub fn profile(&self) -> &ValidationProfile {
        &self.profile
    }

    /// A and AAAA of `domain` through its zone's resolver (CNAMEs followed
    /// within the profile), IPv6 first, filtered by the IP policy. One
    /// address family answering is enough: a REFUSED or SERVFAIL for the
    /// other is not a failure.
    ///
    /// Fails with `RejectedIdentifier` outside every zone, `Dns` when
    /// nothing resolves, `Unauthorized` when every address is denied.
    pub async fn resolve_addresses(&self, domain: &str) -> Result<Vec<IpAddr>, ValidationFailure> {
        let deadline = Deadline::after(self.profile.timeout);
        let domain = normalise(domain);
        let (_, allowed) = self.resolve_checked(&domain, &deadline).await?;
        Ok(allowed)
    }

    /// Resolves `host` (normalised) before `deadline`: `(all resolved,
    /// permitted by the policy)`.
    pub(crate) async fn resolve_checked(
        &self,
        host: &str,
        deadline: &Deadline,
    ) -> Result<(Vec<IpAddr>, Vec<IpAddr>), ValidationFailure> {
        let all = deadline
            .run(
                FailureKind::Dns,
                || format!("resolving {host}"),
                self.resolvers.addresses(host),
            )
            .await?;
        let allowed = permitted(&self.profile.ip_policy, &self.profile.name, host, &all)?;
        Ok((all, allowed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{DnsProtocol, IpPolicy, ZoneConfig, ZoneServers};

    fn profile(zones: Vec<ZoneConfig>) -> ValidationProfile {
        ValidationProfile {
            name: "P".into(),
            timeout: Duration::from_secs(2),
            zones,
            ip_policy: IpPolicy::new(&[], &["169.254.0.0/16".into()]).expect("policy"),
            http01_port: 80,
            tls_alpn01_port: 443,
        }
    }

    fn zone(servers: ZoneServers) -> ZoneConfig {
        ZoneConfig {
            suffixes: vec!["test".into()],
            servers,
            protocol: DnsProtocol::Udp,
            authoritative: false,
            dnssec: false,
        }
    }

    #[test]
    fn construction_needs_no_runtime() {
        let v = Validator::new(profile(vec![zone(ZoneServers::Explicit(vec![
            "127.0.0.1:53".parse().expect("addr"),
        ]))]))
        .expect("validator");
        assert_eq!(v.profile().name, "P");
    }

    #[test]
    fn system_zone_reads_only_the_name_servers() {
        match Validator::new(profile(vec![zone(ZoneServers::System)])) {
            Ok(v) => assert_eq!(v.profile().zones[0].servers, ZoneServers::System),
            Err(e) => assert!(
                e.to_string()
                    .contains("cannot read the system resolver configuration"),
                "{e}"
            ),
        }
    }

    #[test]
    fn bad_profiles_are_refused() {
        let err = Validator::new(profile(vec![])).expect_err("no zones");
        assert_eq!(err.to_string(), "validation profile P: no zone configured");
        let err =
            Validator::new(profile(vec![zone(ZoneServers::Explicit(vec![]))])).expect_err("empty");
        assert_eq!(
            err.to_string(),
            "validation profile P, zone test: dns-server lists no server"
        );
    }

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn validator_and_its_futures_can_move_between_threads() {
        let v = Validator::new(profile(vec![zone(ZoneServers::Explicit(vec![
            "127.0.0.1:53".parse().expect("addr"),
        ]))]))
        .expect("validator");
        assert_send_sync(&v);
        assert_send(&v.http01("x.test", "t", "k"));
        assert_send(&v.dns01("x.test", "k"));
        assert_send(&v.tls_alpn01("x.test", "k"));
        assert_send(&v.resolve_addresses("x.test"));
    }

    #[tokio::test]
    async fn outside_every_zone_is_rejected_without_dns() {
        let v = Validator::new(profile(vec![zone(ZoneServers::Explicit(vec![
            "127.0.0.1:9".parse().expect("addr"),
        ]))]))
        .expect("validator");
        let err = v.resolve_addresses("x.example").await.expect_err("outside");
        assert_eq!(err.kind, FailureKind::RejectedIdentifier);
        assert_eq!(
            err.detail,
            "x.example is outside every zone of validation profile P"
        );
    }
}
