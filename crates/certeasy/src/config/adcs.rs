//! What the configuration expects of an ADCS authority's template, for the
//! preflight of `certeasy_adcs`: read from the authority and the issuance
//! policies bound to it.

use certeasy_adcs::preflight::{AcceptedKeys, Expectations};

use super::{AuthorityKind, Config, PolicySettings};

/// Builds [`Expectations`] from a configuration.
pub trait ExpectationsExt: Sized {
    /// What the configuration expects of authority `name`: its
    /// `max-validity` and `default-timeout`, and the keys and extra EKUs of
    /// the issuance policies bound to it. None when `name` is not an `adcs`
    /// authority.
    fn for_authority(config: &Config, name: &str) -> Option<Self>;
}

impl ExpectationsExt for Expectations {
    fn for_authority(config: &Config, name: &str) -> Option<Expectations> {
        let a = config.authority(name)?;
        let AuthorityKind::Adcs(s) = &a.kind else {
            return None;
        };
        let bound: Vec<&PolicySettings> = config
            .policies
            .iter()
            .filter(|p| {
                config
                    .bindings
                    .get(&p.name)
                    .is_some_and(|b| b.authorities.iter().any(|x| x == name))
            })
            .collect();
        let mut extra_ekus: Vec<String> = Vec::new();
        for p in &bound {
            for e in &p.csr.allowed_extra_eku {
                let oid = e.oid().to_string();
                if !extra_ekus.contains(&oid) {
                    extra_ekus.push(oid);
                }
            }
        }
        Some(Expectations {
            max_validity: a.max_validity,
            default_timeout: s.default_timeout,
            keys: AcceptedKeys::from_policies(bound.iter().map(|p| (p.name.as_str(), &p.csr.key))),
            extra_ekus,
        })
    }
}
