//! Batch evidence over real tokens: every item of batches of 1, 2, 3, 7 and 64 signature
//! values verifies with its path, a wrong item or a wrong path does not; and a mutation fuzz
//! over tokens and evidence encodings ends in errors, never a panic.

use std::time::Duration;

use tereze_testkit::tsa::TestAuthority;
use tereze_timestamp::{batch, verify, Authority, Client, Evidence, Step, TimestampError};

fn authority_of(tsa: &TestAuthority) -> Authority {
    Authority::from_pem("KZ", &tsa.url(), tsa.ca_pem().as_bytes()).expect("authority")
}

fn stamp_all(tsa: &TestAuthority, imprints: &[[u8; 32]]) -> Vec<Vec<u8>> {
    let client = Client::new(&tsa.url(), Duration::from_secs(20)).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    imprints
        .iter()
        .map(|i| rt.block_on(client.stamp(i)).expect("token"))
        .collect()
}

/// A signature value of `len` bytes, different for each (batch, index).
fn value(batch: usize, index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (batch * 31 + index * 7 + k) as u8)
        .collect()
}

#[test]
fn every_item_of_a_batch_verifies_with_its_path_and_nothing_else_does() {
    let tsa = TestAuthority::new();
    let trusted = [authority_of(&tsa)];
    let sizes = [1usize, 2, 3, 7, 64];
    let batches: Vec<Vec<Vec<u8>>> = sizes
        .iter()
        .enumerate()
        .map(|(b, n)| (0..*n).map(|i| value(b, i, 64 + i % 3)).collect())
        .collect();
    let made: Vec<_> = batches.iter().map(|values| batch(values)).collect();
    let imprints: Vec<[u8; 32]> = made.iter().map(|(imprint, _)| *imprint).collect();
    let tokens = stamp_all(&tsa, &imprints);

    for (b, values) in batches.iter().enumerate() {
        let paths = &made[b].1;
        assert_eq!(paths.len(), values.len());
        let mut serials = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let e = Evidence::new(tokens[b].clone(), paths[i].clone());
            let s = e.verify(v, &trusted).expect("item verifies");
            serials.push(s.serial);

            // Another batch's item, with this path: not covered.
            let stranger = value(b + 100, i, 64);
            assert_eq!(
                e.verify(&stranger, &trusted).expect_err("foreign").code(),
                "other-imprint"
            );
        }
        assert!(
            serials.windows(2).all(|w| w[0] == w[1]),
            "one token per batch"
        );
        if values.len() > 1 {
            // An item with a neighbour's path, and a path with one sibling hash changed.
            let e = Evidence::new(tokens[b].clone(), paths[1].clone());
            assert_eq!(
                e.verify(&values[0], &trusted)
                    .expect_err("wrong path")
                    .code(),
                "other-imprint"
            );
            let mut bent = paths[0].clone();
            bent[0].sibling[0] ^= 1;
            let e = Evidence::new(tokens[b].clone(), bent);
            assert_eq!(
                e.verify(&values[0], &trusted)
                    .expect_err("bent path")
                    .code(),
                "other-imprint"
            );
        } else {
            // A lone item: its path is empty; an invented step leads elsewhere.
            assert!(paths[0].is_empty());
            let e = Evidence::new(
                tokens[b].clone(),
                vec![Step {
                    sibling_left: false,
                    sibling: [0; 32],
                }],
            );
            assert!(e.verify(&values[0], &trusted).is_err());
        }
    }
    // A token of one batch does not cover another batch's items.
    let e = Evidence::new(tokens[0].clone(), made[1].1[0].clone());
    assert!(e.verify(&batches[1][0], &trusted).is_err());
}

/// Deterministic mutations: flip, set, insert, delete and truncate at random places.
fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.usize(1..4) {
        if b.is_empty() {
            b.push(rng.u8(..));
            continue;
        }
        let at = rng.usize(..b.len());
        match rng.u8(..5) {
            0 => b[at] ^= 1 << rng.u8(..8),
            1 => b[at] = rng.u8(..),
            2 => b.insert(at, rng.u8(..)),
            3 => {
                b.remove(at);
            }
            _ => b.truncate(at),
        }
    }
    b
}

#[test]
fn mutated_tokens_and_evidence_are_refused_without_panicking() {
    let tsa = TestAuthority::new();
    let trusted = [authority_of(&tsa)];
    let values: Vec<Vec<u8>> = (0..5).map(|i| value(9, i, 72)).collect();
    let (imprint, paths) = batch(&values);
    let token = stamp_all(&tsa, &[imprint]).remove(0);
    let evidence = Evidence::new(token.clone(), paths[3].clone()).to_bytes();
    let mut rng = fastrand::Rng::with_seed(26);
    let (mut token_refused, mut evidence_refused) = (0, 0);
    for _ in 0..2500 {
        let t = mutate(&mut rng, &token);
        match verify(&t, &imprint, &trusted) {
            Err(_) => token_refused += 1,
            // A mutation in a part no check reads (an unsigned field such as the certificate
            // set's order) can leave a valid token; it must still be this token's stamp.
            Ok(s) => assert_eq!(s.authority_url, tsa.url()),
        }
        let e = mutate(&mut rng, &evidence);
        match Evidence::from_bytes(&e).and_then(|ev| ev.verify(&values[3], &trusted)) {
            Err(TimestampError::Crypto { .. }) => panic!("OpenSSL failure on garbage"),
            Err(_) => evidence_refused += 1,
            Ok(_) => {}
        }
    }
    // Almost every mutation breaks something a check reads.
    assert!(
        token_refused > 2400,
        "{token_refused} of 2500 tokens refused"
    );
    assert!(
        evidence_refused > 2400,
        "{evidence_refused} of 2500 refused"
    );
}
