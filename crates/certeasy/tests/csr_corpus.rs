//! The pki crate's hostile CSR corpus replayed through real finalize
//! requests: each CSR is refused with the exact problem type and a detail
//! naming the offending element, and a refusal leaves the order `ready`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::raw::{Key, Raw};
use common::{Harness, Options};
use pki::RefusalKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_csrs_are_refused_through_finalize() {
    let h = Harness::start_with(Options {
        extra_zone: Some("example.com".into()),
        ..Options::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;

    let corpus = pki::testing::hostile_csr_corpus();
    assert!(corpus.len() >= 40, "corpus shrank to {}", corpus.len());
    let mut groups: BTreeMap<Vec<String>, Vec<pki::testing::HostileCase>> = BTreeMap::new();
    for case in corpus {
        let names: Vec<String> = case
            .order_names
            .iter()
            .map(|n| n.as_str().to_string())
            .collect();
        groups.entry(names).or_default().push(case);
    }
    let mut replayed = 0;
    for (names, cases) in &groups {
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let order = common::ready_order(&h, &raw, &key, &kid, &name_refs).await;
        let finalize = order["finalize"].as_str().unwrap();
        for case in cases {
            let body = json!({"csr": acme_wire::b64u_encode(&case.der)}).to_string();
            let r = raw.post(&key, Some(&kid), finalize, &body).await;
            let expected = match case.expected_kind {
                RefusalKind::BadCsr => "badCSR",
                RefusalKind::BadPublicKey => "badPublicKey",
            };
            assert_eq!(
                r.problem_type(),
                expected,
                "case {}: {}",
                case.name,
                r.json()
            );
            let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
            assert!(
                detail.contains(&case.expected_detail_substring),
                "case {}: detail {detail:?} lacks {:?}",
                case.name,
                case.expected_detail_substring
            );
            replayed += 1;
        }
        // Every refusal left the order untouched.
        let o = raw
            .post(
                &key,
                Some(&kid),
                &order["finalize"]
                    .as_str()
                    .unwrap()
                    .replace("/finalize/", "/order/"),
                "",
            )
            .await
            .json();
        assert_eq!(o["status"], json!("ready"), "{names:?}");
    }
    eprintln!("replayed {replayed} hostile CSRs through finalize");
}
