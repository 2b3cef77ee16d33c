//! certeasy's own HTTPS listener: `files` mode reloads changed files without
//! a restart; `pki` mode issues its certificate once and reuses the cache.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Harness, Options};
use rustls::pki_types::{CertificateDer, ServerName};

fn self_signed(path: &Path, cn: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(path.join("cert.pem.tmp"), cert.pem()).unwrap();
    std::fs::write(path.join("key.pem.tmp"), key.serialize_pem()).unwrap();
    // Replace both files, key first (as an operator's tooling might).
    std::fs::rename(path.join("key.pem.tmp"), path.join("key.pem")).unwrap();
    std::fs::rename(path.join("cert.pem.tmp"), path.join("cert.pem")).unwrap();
    cert.der().to_vec()
}

/// The leaf certificate the listener presents, trusting exactly `anchors`.
async fn served_cert(addr: std::net::SocketAddr, anchors: &[Vec<u8>]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots.add(CertificateDer::from(a.clone())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_reloads_changed_files_without_restart() {
    let files = tempfile::tempdir().unwrap();
    let first = self_signed(files.path(), "first");
    let tls_yaml = format!(
        "tls-certificate-manager:\n  bundles:\n    - name: files\n      mode: files\n      local-cert-file: {d}/cert.pem\n      local-key-file: {d}/key.pem\n      file-watch-interval: 50ms\n",
        d = files.path().display()
    );
    let h = Harness::start_with(Options {
        tls_yaml: Some(tls_yaml),
        ..Options::default()
    })
    .await;
    let addr = h.server().addr;
    assert_eq!(served_cert(addr, std::slice::from_ref(&first)).await, first);

    let second = self_signed(files.path(), "second");
    // The watcher polls every 50ms; observe the switch from the outside.
    let mut served = Vec::new();
    for _ in 0..200 {
        served = served_cert(addr, &[first.clone(), second.clone()]).await;
        if served == second {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        served, second,
        "the new certificate is served after the files change"
    );

    // A broken pair is not loaded: the last good certificate stays, and the
    // watcher keeps going (the next good pair is picked up).
    std::fs::write(files.path().join("cert.pem"), "garbage").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        served_cert(addr, &[first.clone(), second.clone()]).await,
        second
    );
    let third = self_signed(files.path(), "third");
    let mut served = Vec::new();
    for _ in 0..200 {
        served = served_cert(addr, &[second.clone(), third.clone()]).await;
        if served == third {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(served, third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_mode_certificate_is_cached_across_restarts() {
    let mut h = Harness::start().await;
    let root = pki::pem_to_der_certs(&std::fs::read_to_string(h.root_pem()).unwrap()).unwrap();
    let before = served_cert(h.server().addr, &root).await;
    let (_, names) = pki::leaf_expiry_and_names(&before).unwrap();
    assert_eq!(names, vec!["localhost".to_string()]);
    h.restart().await;
    let after = served_cert(h.server().addr, &root).await;
    assert_eq!(before, after, "the cached listener certificate is reused");
    assert!(h
        .dir
        .path()
        .join("work/server-certificate-cache/cert.pem")
        .exists());
}

/// An installation upgraded from a version that kept the `pki` listener
/// certificate in the file cache only: the certificate is taken into the
/// database, not issued again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_only_in_the_file_cache_is_taken_into_the_database() {
    if !common::test_database_yaml().is_empty() {
        eprintln!("SQLite only (the row is removed with rusqlite): skipped");
        return;
    }
    let mut h = Harness::start().await;
    let root = pki::pem_to_der_certs(&std::fs::read_to_string(h.root_pem()).unwrap()).unwrap();
    let before = served_cert(h.server().addr, &root).await;
    h.stop().await;
    let db = rusqlite::Connection::open(h.dir.path().join("work/db.sqlite")).unwrap();
    assert_eq!(
        db.execute("DELETE FROM listener_certificates", []).unwrap(),
        1
    );
    drop(db);
    h.restart().await;
    assert_eq!(served_cert(h.server().addr, &root).await, before);
    let db = rusqlite::Connection::open(h.dir.path().join("work/db.sqlite")).unwrap();
    let stored: String = db
        .query_row("SELECT chain_pem FROM listener_certificates", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(pki::pem_to_der_certs(&stored).unwrap()[0], before);
}

/// Several nodes on one database (PostgreSQL with `CERTEASY_TEST_PG_DSN`,
/// else one SQLite file) started at the same moment: one of them obtains
/// the `pki` listener certificate, the other waits for it and serves the
/// same one; a node restarted later loads it too, instead of asking its
/// authority again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_database_share_one_pki_listener_certificate() {
    let shared = tempfile::tempdir().unwrap();
    let database = match common::test_database_yaml() {
        pg if !pg.is_empty() => pg,
        _ => format!(
            "database:\n  type: sqlite\n  path: {}\n",
            shared.path().join("db.sqlite").display()
        ),
    };
    let opts = || Options {
        extra_sections: database.clone(),
        ..Options::default()
    };
    let (a, mut b) = tokio::join!(Harness::start_with(opts()), Harness::start_with(opts()));
    // Each node has a built-in CA of its own (its workdir): the shared
    // certificate chains to the root of whichever node issued it.
    let roots: Vec<Vec<u8>> = [&a, &b]
        .iter()
        .flat_map(|h| {
            pki::pem_to_der_certs(&std::fs::read_to_string(h.root_pem()).unwrap()).unwrap()
        })
        .collect();
    let from_a = served_cert(a.server().addr, &roots).await;
    let from_b = served_cert(b.server().addr, &roots).await;
    assert_eq!(
        from_a, from_b,
        "both nodes serve the one stored certificate"
    );
    b.restart().await;
    assert_eq!(served_cert(b.server().addr, &roots).await, from_a);
    // Each node keeps a copy in its file cache.
    for h in [&a, &b] {
        let cached =
            std::fs::read_to_string(h.dir.path().join("work/server-certificate-cache/cert.pem"))
                .unwrap();
        assert_eq!(pki::pem_to_der_certs(&cached).unwrap()[0], from_a);
    }
}
