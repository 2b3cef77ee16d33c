//! `certeasy-bench seed`: fills a certeasy SQLite database with realistic
//! rows through the server's own store (`certeasy::store`).
//!
//! Per certificate: one `valid` order (1–3 names), its `valid`
//! authorizations with one `valid` http-01 challenge each, and the
//! certificate. Every tenth certificate also gets an `invalid` order (with an
//! `invalid` authorization) next to it, as failed attempts do. A percentage
//! of the certificates are revoked. Accounts are real P-256 JWKs.
//!
//! The certificate DER and PEM chain are one realistic template (a P-256
//! leaf signed by a throwaway P-256 CA, ~600 bytes DER, ~1.5 kB chain) for
//! every row; the `serial` column is unique per row (random 16 bytes), the
//! names, dates and ids vary. The server never parses stored DER on the
//! issuance path, so the template only matters for row size.

use std::time::Instant;

use acme_wire::{AccountStatus, AuthorizationStatus, ChallengeStatus, OrderStatus};
use anyhow::{bail, Context, Result};
use certeasy::store::{
    new_id, now_ms, AccountRow, AuthzRow, CaRevocation, CertRow, ChallengeRow, NewAuthz, NewOrder,
    OrderRow, Store,
};

use crate::jws::AccountKey;
use crate::SeedArgs;

const DAY_MS: i64 = 86_400_000;

struct Template {
    leaf_der: Vec<u8>,
    chain_pem: String,
}

fn template() -> Result<Template> {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "certeasy bench template CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = rcgen::CertificateParams::new(vec![
        "template-0001.bench.test".to_string(),
        "www.template-0001.bench.test".to_string(),
    ])?;
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Template {
        leaf_der: leaf_cert.der().to_vec(),
        chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
    })
}

/// A small, fast, deterministic PRNG (xorshift64*) for row variety; ids and
/// serials come from the OS RNG through `new_id`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn serial_hex() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[0] &= 0x7f;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An order of `names` with one authorization and challenge per name, all
/// `valid` (an issued order) or all `invalid` (a failed one).
fn order_rows(
    account_id: &str,
    names: &[String],
    valid: bool,
    policy: &str,
    created: i64,
) -> NewOrder {
    let (order_status, authz_status, chall_status) = if valid {
        (
            OrderStatus::Valid,
            AuthorizationStatus::Valid,
            ChallengeStatus::Valid,
        )
    } else {
        (
            OrderStatus::Invalid,
            AuthorizationStatus::Invalid,
            ChallengeStatus::Invalid,
        )
    };
    let order_id = new_id();
    let authzs = names
        .iter()
        .map(|n| {
            let authz_id = new_id();
            NewAuthz {
                authz: AuthzRow {
                    id: authz_id.clone(),
                    order_id: order_id.clone(),
                    account_id: account_id.to_string(),
                    identifier: n.clone(),
                    wildcard: false,
                    status: authz_status,
                    expires: created + 30 * DAY_MS,
                },
                challenges: vec![ChallengeRow {
                    id: new_id(),
                    authz_id,
                    kind: "http-01".into(),
                    token: new_id(),
                    status: chall_status,
                    validated: None,
                    error: None,
                }],
            }
        })
        .collect();
    NewOrder {
        order: OrderRow {
            id: order_id,
            account_id: account_id.to_string(),
            status: order_status,
            policy: policy.to_string(),
            names: names.to_vec(),
            not_before: None,
            not_after: None,
            expires: created + 7 * DAY_MS,
            error: None,
            csr: None,
            replaces: None,
            profile: None,
            created_at: created,
            ca_pending: None,
        },
        authzs,
    }
}

/// Seeds the database of `a.workdir`.
pub async fn seed(a: SeedArgs) -> Result<()> {
    if a.accounts == 0 || a.accounts > 10_000_000 || a.certs > 100_000_000 {
        bail!("--accounts must be 1..=10M and --certs at most 100M");
    }
    if a.batch == 0 || a.batch > 1_000_000 || a.revoked_percent > 100 {
        bail!("--batch must be 1..=1M and --revoked-percent at most 100");
    }
    std::fs::create_dir_all(&a.workdir)
        .with_context(|| format!("creating {}", a.workdir.display()))?;
    let db = a.workdir.join("db.sqlite");
    let store = Store::open_sqlite(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let t0 = Instant::now();
    let tpl = template()?;
    let now = now_ms();
    let mut rng = Rng(now as u64 | 1);

    // accounts
    let mut account_ids = Vec::with_capacity(a.accounts as usize);
    let mut done = 0u64;
    while done < a.accounts {
        let mut tx = store.begin().await?;
        let end = (done + a.batch).min(a.accounts);
        for i in done..end {
            let key = AccountKey::generate()?;
            let row = AccountRow {
                id: new_id(),
                thumbprint: key.thumbprint.clone(),
                jwk: key.jwk.clone(),
                contact: vec![format!("mailto:team{i}@example.com")],
                status: AccountStatus::Valid,
                tos_agreed: true,
                created_at: now - 400 * DAY_MS + rng.below(30 * DAY_MS as u64) as i64,
                eab_kid: None,
            };
            Store::insert_account(&mut tx, &row).await?;
            account_ids.push(row.id);
        }
        tx.commit().await?;
        done = end;
    }
    eprintln!(
        "seed: {} accounts in {:.1} s",
        a.accounts,
        t0.elapsed().as_secs_f64()
    );

    // orders, authorizations, challenges, certificates
    let mut done = 0u64;
    let mut revoked_total = 0u64;
    let mut last_report = Instant::now();
    while done < a.certs {
        let end = (done + a.batch).min(a.certs);
        let mut revoke = Vec::new();
        let mut tx = store.begin().await?;
        for i in done..end {
            let account = &account_ids[rng.below(a.accounts) as usize];
            let n_names = 1 + (rng.below(10) / 7) as usize + (rng.below(20) / 19) as usize; // mostly 1, some 2-3
            let base = format!(
                "h{i:08x}-{:04x}.team{}.bench.test",
                rng.below(0xffff),
                rng.below(500)
            );
            let mut names: Vec<String> = (0..n_names)
                .map(|k| {
                    if k == 0 {
                        base.clone()
                    } else {
                        format!("alt{k}.{base}")
                    }
                })
                .collect();
            names.sort();
            // spread over the last year
            let created = now - rng.below(365 * DAY_MS as u64) as i64;
            if i % 10 == 0 {
                let failed = order_rows(account, &names, false, &a.policy, created - 60_000);
                Store::insert_order(&mut tx, &failed).await?;
            }
            let order = order_rows(account, &names, true, &a.policy, created);
            Store::insert_order(&mut tx, &order).await?;
            let cert = CertRow {
                id: new_id(),
                order_id: order.order.id.clone(),
                account_id: account.clone(),
                authority: a.authority.clone(),
                serial: serial_hex(),
                names,
                leaf_der: tpl.leaf_der.clone(),
                chain_pem: tpl.chain_pem.clone(),
                not_before: created,
                not_after: created + 90 * DAY_MS,
                revoked_at: None,
                revocation_reason: None,
            };
            Store::insert_cert(&mut tx, &cert).await?;
            if rng.below(100) < a.revoked_percent {
                revoke.push(cert.id);
            }
        }
        for id in &revoke {
            // Seeded revocations never reach a CA: no revoke job.
            Store::revoke_cert(&mut tx, id, (rng.below(5)) as i64, CaRevocation::Local).await?;
        }
        tx.commit().await?;
        revoked_total += revoke.len() as u64;
        done = end;
        if last_report.elapsed().as_secs() >= 10 || done == a.certs {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "seed: {done}/{} certificates ({revoked_total} revoked) in {s:.0} s ({:.0}/s)",
                a.certs,
                done as f64 / s
            );
            last_report = Instant::now();
        }
    }
    store.close().await;
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "seed: done in {:.1} s; {} is {:.0} MiB",
        t0.elapsed().as_secs_f64(),
        db.display(),
        size as f64 / 1048576.0
    );
    Ok(())
}
