//! `type: adcs`: the native bridge of `certeasy_adcs` (MS-ICPR over
//! DCE/RPC, in process; MS-WCCE and MS-CSRA over DCOM) as an authority. This adapter only maps answers:
//! a denial is final ([`AuthorityError::Refused`]); unreachable,
//! authentication, timeouts and faults may heal
//! ([`AuthorityError::Transient`]) and count against the authority's health.

use certeasy_adcs::admin::CaAdmin;
use certeasy_adcs::pool::PoolSettings;
use certeasy_adcs::{AdcsTarget, Enrolled, Enrollment};

use super::{AuthorityError, Signed};

/// A native ADCS authority.
pub struct AdcsCa {
    e: Enrollment,
    /// Boxed: it holds a second copy of the target (keeps `Authority` small).
    admin: Box<CaAdmin>,
}

impl AdcsCa {
    /// Prepares the client side (no I/O), with the default association pool.
    pub fn new(t: &AdcsTarget) -> AdcsCa {
        AdcsCa::with_pool(t, PoolSettings::default())
    }

    /// Prepares the client side (no I/O) with an association pool of
    /// `pool`'s size and idle timeout.
    pub fn with_pool(t: &AdcsTarget, pool: PoolSettings) -> AdcsCa {
        AdcsCa {
            e: Enrollment::with_pool(t, pool),
            admin: Box::new(CaAdmin::new(t)),
        }
    }

    /// Submits a CSR for `template`, or the configured template.
    pub async fn submit(
        &self,
        csr_der: &[u8],
        template: Option<&str>,
    ) -> Result<Signed, AuthorityError> {
        signed(self.e.submit_for(csr_der, template).await)
    }

    /// Asks for the outcome of an earlier (pending) request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Signed, AuthorityError> {
        signed(self.e.retrieve(request_id).await)
    }

    /// Health probe ([`Enrollment::probe`]).
    pub async fn probe(&self) -> Result<(), AuthorityError> {
        self.e.probe().await.map_err(authority_error)
    }

    /// Revokes the certificate with serial number `serial_hex` at the CA
    /// (MS-CSRA `ICertAdminD::RevokeCertificate` over DCOM) for RFC 5280
    /// `reason`, effective `at`. The CA's refusal (e.g. the service account
    /// lacks "Issue and Manage Certificates", unknown serial) is
    /// [`AuthorityError::Refused`] with an actionable message; unreachable,
    /// authentication failures and timeouts are [`AuthorityError::Transient`].
    pub async fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        at: std::time::SystemTime,
    ) -> Result<(), AuthorityError> {
        self.admin
            .revoke(serial_hex, reason, at)
            .await
            .map_err(authority_error)
    }

    /// The MS-CSRA client of this CA (operator commands, `adcs check`).
    pub fn admin(&self) -> &CaAdmin {
        &self.admin
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> std::time::Duration {
        self.e.default_timeout()
    }
}

/// Maps an answer of `certeasy_adcs` (native or certreq) to the authority
/// layer's types.
pub(super) fn signed(r: Result<Enrolled, certeasy_adcs::Error>) -> Result<Signed, AuthorityError> {
    match r.map_err(authority_error)? {
        Enrolled::Issued {
            leaf_der,
            chain_der,
        } => Ok(Signed::Issued {
            leaf_der,
            chain_der,
        }),
        Enrolled::Pending {
            request_id,
            message,
        } => Ok(Signed::Pending {
            request_id,
            message,
        }),
    }
}

/// A refusal is final; everything else may heal.
pub(super) fn authority_error(e: certeasy_adcs::Error) -> AuthorityError {
    if e.is_refusal() {
        AuthorityError::Refused(e.to_string())
    } else {
        AuthorityError::Transient(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use certeasy_adcs::{AuthLevel, AuthMethod, Transport};
    use lab_adcs::config::Config;
    use lab_adcs::service::{start, Lab};

    use super::*;

    fn target(epm: u16, user: &str) -> AdcsTarget {
        AdcsTarget {
            host: "127.0.0.1".into(),
            ca: "LAB-CA".into(),
            ca_name: "127.0.0.1\\LAB-CA".into(),
            template: "WebServer".into(),
            method: AuthMethod::Ntlm,
            domain: "CORP".into(),
            username: user.into(),
            password: "Passw0rd!".into(),
            realm: None,
            keytab: None,
            kdc: None,
            spn: None,
            port: None,
            endpoint_mapper_port: epm,
            auth_level: AuthLevel::Privacy,
            default_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            ca_chain: Vec::new(),
            disable_ca_revocation: false,
            transport: Transport::Auto,
            ldap: None,
        }
    }

    fn csr() -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let p = rcgen::CertificateParams::new(vec!["revoke.test".to_owned()]).unwrap();
        p.serialize_request(&key).unwrap().der().to_vec()
    }

    /// `pool-size` and `pool-idle-timeout` take effect: three requests in
    /// a row authenticate once with a pool of one, three times with a pool
    /// of none, and three times when idle associations expire at once.
    #[tokio::test]
    async fn pool_settings_bound_the_authentications() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "ca: {{ name: LAB-CA, state-dir: {} }}\nusers:\n  - {{ domain: CORP, name: alice, password: \"Passw0rd!\" }}\ntemplates:\n  - {{ name: WebServer, disposition: issue }}\n",
            dir.path().join("state").display()
        );
        let lab = Arc::new(Lab::open(Config::parse(&text).unwrap()).unwrap());
        let running = start(lab, Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
        let epm = running.epm_addr.port();
        for (size, idle, expected) in [
            (1, Duration::from_secs(60), 1),
            (0, Duration::from_secs(60), 3),
            (4, Duration::from_nanos(1), 3),
        ] {
            let ca = AdcsCa::with_pool(
                &target(epm, "alice"),
                PoolSettings {
                    size,
                    idle_timeout: idle,
                },
            );
            for _ in 0..3 {
                let signed = ca.submit(&csr(), None).await.unwrap();
                assert!(matches!(signed, Signed::Issued { .. }));
            }
            assert_eq!(
                ca.e.authentications(),
                expected,
                "pool of {size}, idle timeout {idle:?}"
            );
        }
    }

    #[tokio::test]
    async fn revoke_maps_success_refusal_and_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "ca: {{ name: LAB-CA, state-dir: {} }}\nusers:\n  - {{ domain: CORP, name: alice, password: \"Passw0rd!\" }}\n  - {{ domain: CORP, name: bob, password: \"Passw0rd!\", manager: false }}\ntemplates:\n  - {{ name: WebServer, disposition: issue }}\n",
            dir.path().join("state").display()
        );
        let lab = Arc::new(Lab::open(Config::parse(&text).unwrap()).unwrap());
        let running = start(lab.clone(), Ipv4Addr::LOCALHOST, 0, 0).await.unwrap();
        let epm = running.epm_addr.port();
        let ca = AdcsCa::new(&target(epm, "alice"));
        let Signed::Issued { leaf_der, .. } = ca.submit(&csr(), None).await.unwrap() else {
            panic!("expected issued");
        };
        let serial = pki::serial_hex_of_cert(&leaf_der).unwrap();
        ca.revoke(&serial, 1, SystemTime::now()).await.unwrap();
        let rec = lab.find_by_serial(&serial).unwrap().unwrap();
        assert_eq!(Lab::status_line(&rec), "revoked keyCompromise");

        match ca.revoke("0badc0de", 1, SystemTime::now()).await {
            Err(AuthorityError::Refused(m)) => assert!(m.contains("serial number"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let bob = AdcsCa::new(&target(epm, "bob"));
        match bob.revoke(&serial, 4, SystemTime::now()).await {
            Err(AuthorityError::Refused(m)) => {
                assert!(m.contains("Issue and Manage Certificates"), "{m}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(running);
        // the CA is down: worth retrying
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match AdcsCa::new(&target(closed, "alice"))
            .revoke(&serial, 1, SystemTime::now())
            .await
        {
            Err(AuthorityError::Transient(_)) => {}
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }
}
