//! Property tests: for random catalogs, weights and usage, the exact
//! allocations conserve the gross, the rounded payouts conserve the rounded
//! gross, and the read model does not depend on how the events were batched
//! or whether it was rebuilt from zero.

mod common;

use ledger::Envelope;
use projections::allocation::{allocate, ResolvedComponent, Share, WeightedComponent};
use projections::amount::{largest_remainder, round_half_even_minor_units, ExactSum};
use projections::runner::Projections;
use projections::statement::{compute_statement, statement_from_totals, CheckpointRef};
use proptest::prelude::*;
use rust_decimal::Decimal;
use schemas::catalog::{Policy, Split};
use serde_json::json;
use uuid::Uuid;

/// `count` positive decimal shares with 6 decimals that sum to exactly 1.
fn shares_from(weights: &[u32]) -> Vec<Decimal> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut shares: Vec<Decimal> = weights
        .iter()
        .map(|&w| Decimal::new((u64::from(w) * 1_000_000 / total) as i64, 6))
        .collect();
    let rest = Decimal::ONE - shares[1..].iter().copied().sum::<Decimal>();
    shares[0] = rest;
    shares
}

/// Integer basis points, each at least 1, summing to 10000.
fn basis_points(weights: &[u32]) -> Vec<u32> {
    let total: u32 = weights.iter().sum();
    let mut bp: Vec<u32> = weights
        .iter()
        .map(|&w| (w * 10_000 / total).max(1))
        .collect();
    let rest = 10_000 - bp[1..].iter().sum::<u32>();
    bp[0] = rest;
    bp
}

fn splits(parties: &[usize], weights: &[u32]) -> Vec<Split> {
    parties
        .iter()
        .zip(shares_from(weights))
        .map(|(p, share)| Split {
            party: format!("p{p}"),
            share,
        })
        .collect()
}

fn gross() -> impl Strategy<Value = Decimal> {
    (0i64..=1_000_000_000_000, 0u32..=6).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

fn policy() -> impl Strategy<Value = Policy> {
    (0u32..=500, 0u32..=500, 0u32..=1000).prop_map(|(p, c, m)| Policy {
        id: "v1".into(),
        platform_share: Decimal::new(i64::from(p), 3),
        creator_share: Decimal::new(i64::from(c), 3),
        master_share: Decimal::new(i64::from(m), 3),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn allocations_conserve_the_gross(
        gross in gross(),
        policy in policy(),
        master_weights in prop::collection::vec(1u32..1000, 1..5),
        publishing_weights in prop::collection::vec(1u32..1000, 1..5),
        likeness_weights in prop::collection::vec(1u32..1000, 1..4),
        component_weights in prop::collection::vec(1u32..1000, 2..4),
    ) {
        let master = Share::all(&splits(&(0..master_weights.len()).collect::<Vec<_>>(), &master_weights));
        let publishing = Share::all(&splits(&(10..10 + publishing_weights.len()).collect::<Vec<_>>(), &publishing_weights));
        let likeness = Share::all(&splits(&(20..20 + likeness_weights.len()).collect::<Vec<_>>(), &likeness_weights));
        let bp = basis_points(&component_weights);
        let components: Vec<WeightedComponent<'_>> = bp
            .iter()
            .enumerate()
            .map(|(i, &weight_bp)| WeightedComponent {
                weight_bp,
                component: if i % 2 == 0 {
                    ResolvedComponent::Recording { isrc: "GBAYE0601498".into(), master_splits: &master, iswc: "T-034524680-1".into(), publishing_splits: &publishing }
                } else {
                    ResolvedComponent::Voice { id: "vm1".into(), likeness_splits: &likeness }
                },
            })
            .collect();
        let allocations = allocate(gross, &policy, &"creator".into(), &components).unwrap();
        let total: Decimal = allocations.iter().map(|a| a.amount).sum();
        prop_assert_eq!(total, gross);
        prop_assert!(allocations.iter().all(|a| a.amount >= Decimal::ZERO));
    }

    #[test]
    fn largest_remainder_pays_the_rounded_total(
        amounts in prop::collection::vec((-1_000_000_000i64..1_000_000_000, 0u32..=12), 1..40),
        exponent in 0u32..=3,
    ) {
        let totals: Vec<(String, ExactSum)> = amounts
            .iter()
            .enumerate()
            .map(|(i, &(m, s))| (format!("p{i:03}"), ExactSum::of(Decimal::new(m, s))))
            .collect();
        let mut gross = ExactSum::ZERO;
        for (_, t) in &totals {
            gross.add_sum(t);
        }
        let target = round_half_even_minor_units(&gross, exponent);
        let named: Vec<(&str, ExactSum)> = totals.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        let payouts = largest_remainder(&named, exponent, target);
        prop_assert_eq!(payouts.iter().sum::<i128>(), target);
        for ((_, total), paid) in named.iter().zip(&payouts) {
            let (floor, _) = total.floor_minor_units(exponent);
            prop_assert!(*paid == floor || *paid == floor + 1, "each payout is its floor or one unit more");
        }
    }
}

/// A random log: a catalog, derivatives, usage lines (some reversals), and a
/// split amendment half way.
fn scenario() -> impl Strategy<Value = Vec<(String, String, serde_json::Value)>> {
    (
        prop::collection::vec(1u32..1000, 1..4),
        prop::collection::vec(1u32..1000, 1..4),
        prop::collection::vec((1u32..1000, 1u32..1000), 1..4),
        prop::collection::vec((0usize..3, 0usize..3, 0usize..3, 0i64..100_000_000, 0u32..=6, any::<bool>()), 1..40),
    )
        .prop_map(|(master_w, publishing_w, derivative_w, usage)| {
            let mut events = Vec::new();
            for p in 0..8 {
                events.push(("party-p".to_string() + &p.to_string(), "catalog.party-registered".to_string(), json!({"id": format!("p{p}"), "name": format!("Party {p}"), "role": "other"})));
            }
            let split_json = |parties: &[usize], weights: &[u32]| -> serde_json::Value {
                serde_json::to_value(splits(parties, weights)).unwrap()
            };
            events.push(("work-T-034524680-1".into(), "catalog.work-registered".into(), json!({"iswc": "T-034524680-1", "title": "W", "publishing_splits": split_json(&[3, 4, 5][..publishing_w.len()], &publishing_w)})));
            let recording = |weights: &[u32]| json!({"isrc": "GBAYE0601498", "title": "R", "work": "T-034524680-1", "master_splits": split_json(&[0, 1, 2][..weights.len()], weights), "stems": {"vocals": format!("sha256:{}", "a".repeat(64))}});
            events.push(("recording-GBAYE0601498".into(), "catalog.recording-registered".into(), recording(&master_w)));
            events.push(("voice-model-vm1".into(), "catalog.voice-model-registered".into(), json!({"id": "vm1", "artist": "p6", "consent": {"granted": true}, "training_stems": [format!("sha256:{}", "b".repeat(64))], "likeness_splits": split_json(&[6, 7], &[1, 2])})));
            events.push(("policy-v1".into(), "catalog.policy-set".into(), json!({"id": "v1", "platform_share": "0.3", "creator_share": "0.15", "master_share": "0.55"})));
            for (i, (rw, vw)) in derivative_w.iter().enumerate() {
                let id = Uuid::from_u128(i as u128 + 1);
                let bp = basis_points(&[*rw, *vw]);
                for event in common::job_start(id, &format!("creator{i}")) {
                    events.push((format!("generation-{id}"), event.event_type, event.data));
                }
                events.push((format!("generation-{id}"), "generation.derivative-published".into(), json!({
                    "job": id, "derivative": id, "recording": "GBAYE0601498", "requested_by": format!("creator{i}"),
                    "recipe": {}, "output": format!("sha256:{:064x}", i), "output_pcm": format!("sha256:{:064x}", i + 100),
                    "duration_ms": 1000, "attribution": [{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": bp[0]}, {"kind": "voice", "ref": "vm1", "weight_bp": bp[1]}]})));
            }
            let mut booked: Vec<(String, serde_json::Value)> = Vec::new();
            for (n, (d, period, currency, mantissa, scale, reverse)) in usage.iter().enumerate() {
                if n == usage.len() / 2 {
                    let mut amended = master_w.clone();
                    amended.reverse();
                    events.push(("recording-GBAYE0601498".into(), "catalog.recording-amended".into(), recording(&amended)));
                }
                let currency = ["USD", "JPY", "EUR"][*currency];
                let line = if *reverse && !booked.is_empty() {
                    let (original_id, original) = booked.remove(n % booked.len());
                    let mut line = original.clone();
                    line["line_id"] = json!(format!("R{n}"));
                    line["period"] = json!(format!("2026-0{}", period + 1));
                    line["gross"] = json!((-original["gross"].as_str().unwrap().parse::<Decimal>().unwrap()).to_string());
                    line["reverses"] = json!(original_id);
                    line
                } else {
                    let scale = if currency == "JPY" { 0 } else { *scale };
                    let line = json!({"line_id": format!("L{n}"), "period": format!("2026-0{}", period + 1), "derivative": Uuid::from_u128((*d % derivative_w.len()) as u128 + 1),
                        "territory": "US", "currency": currency, "streams": 1, "gross": Decimal::new(*mantissa, scale).to_string()});
                    booked.push((format!("L{n}"), line.clone()));
                    line
                };
                events.push((format!("usage-{n}"), "usage.line-imported".into(), line));
            }
            // A line imported twice, and a line reversed twice: both
            // refused, by every path that folds.
            let usage = |events: &Vec<(String, String, serde_json::Value)>, reversal: bool| {
                events
                    .iter()
                    .find(|(_, kind, data)| kind == "usage.line-imported" && data.get("reverses").is_some() == reversal)
                    .map(|(_, _, data)| data.clone())
            };
            if let Some(line) = usage(&events, false) {
                events.push(("usage-again".into(), "usage.line-imported".into(), line));
            }
            if let Some(mut reversal) = usage(&events, true) {
                reversal["line_id"] = json!("R-again");
                events.push(("usage-reversed-again".into(), "usage.line-imported".into(), reversal));
            }
            events
        })
}

fn envelopes(events: &[(String, String, serde_json::Value)]) -> Vec<Envelope> {
    let mut versions: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    events
        .iter()
        .enumerate()
        .map(|(seq, (stream, event_type, data))| Envelope {
            seq: seq as u64,
            stream: stream.clone(),
            version: {
                let next = versions.entry(stream).or_default();
                *next += 1;
                *next - 1
            },
            id: Uuid::from_u128(seq as u128 + 1_000),
            event_type: event_type.clone(),
            schema: 1,
            time: "2026-11-26T00:00:00.000000Z".into(),
            prev: None,
            data: data.clone(),
        })
        .collect()
}

/// Every statement of the read model, rendered as JSON, as of `size`.
fn all_statements(projections: &Projections, size: u64) -> String {
    let checkpoint = CheckpointRef {
        size,
        root_hash: "00".repeat(32),
    };
    let names = projections.party_names(size).unwrap();
    let mut out = String::new();
    for month in 1..=3 {
        let period = format!("2026-0{month}");
        for currency in projections.currencies(&period, size).unwrap() {
            let lines = projections.booked_lines(&period, &currency, size).unwrap();
            let statement =
                compute_statement(&period, &currency, checkpoint.clone(), &lines, &names).unwrap();
            // The statement path sums the stored allocations without the
            // lines; it must give the same statement, byte for byte.
            let totals = projections.period_totals(&period, &currency, size).unwrap();
            let from_totals =
                statement_from_totals(&period, &currency, checkpoint.clone(), &totals, &names)
                    .unwrap();
            assert_eq!(from_totals, statement);
            out.push_str(&serde_json::to_string(&statement).unwrap());
            out.push('\n');
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn batching_and_rebuild_do_not_change_statements(events in scenario(), cuts in prop::collection::vec(1usize..60, 0..6), events_per_transaction in 1u64..30) {
        let envelopes = envelopes(&events);
        let size = envelopes.len() as u64;
        let dir = tempfile::tempdir().unwrap();

        // All at once.
        let one_path = dir.path().join("one.db");
        let mut one = Projections::open(&one_path).unwrap();
        one.apply(&envelopes).unwrap();
        let expected = all_statements(&one, size);
        prop_assert!(!expected.is_empty(), "some usage was booked");

        // In random batches, reopening the database between batches (a
        // process restart), with overlapping retries of earlier events.
        let many_path = dir.path().join("many.db");
        let mut start = 0usize;
        let mut boundaries: Vec<usize> = cuts.iter().map(|c| c % envelopes.len()).collect();
        boundaries.push(envelopes.len());
        boundaries.sort_unstable();
        for end in boundaries {
            let mut many = Projections::open(&many_path).unwrap();
            let retry_from = start.saturating_sub(2);
            many.apply(&envelopes[retry_from..end.max(start)]).unwrap();
            start = end.max(start);
        }
        let many = Projections::open(&many_path).unwrap();
        prop_assert_eq!(many.position(), size);
        prop_assert_eq!(all_statements(&many, size), expected.clone());
        prop_assert_eq!(many.fold(), one.fold());

        // Rebuilt from zero.
        one.reset().unwrap();
        one.apply(&envelopes).unwrap();
        prop_assert_eq!(all_statements(&one, size), expected.clone());

        // Rebuilt by the bulk path (no usage-line indexes while it loads,
        // line ids looked up in memory), fed in random batches and committed
        // in small transactions, so the duplicate and reversal checks land
        // on lines both still in memory and already written.
        let mut bulk = Projections::open(&dir.path().join("bulk.db")).unwrap();
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % envelopes.len()).collect();
        ends.push(envelopes.len());
        ends.sort_unstable();
        let mut from = 0;
        let batches: Vec<Vec<Envelope>> = ends
            .into_iter()
            .map(|end| {
                let batch = envelopes[from..end].to_vec();
                from = end;
                batch
            })
            .collect();
        bulk.rebuild_from(batches, events_per_transaction).unwrap();
        prop_assert_eq!(bulk.position(), size);
        prop_assert_eq!(all_statements(&bulk, size), expected);
        prop_assert_eq!(bulk.fold(), one.fold());
        for derivative in one.fold().derivatives.keys() {
            prop_assert_eq!(
                bulk.lines_of_derivative(*derivative, size).unwrap(),
                one.lines_of_derivative(*derivative, size).unwrap()
            );
        }
        // The indexes are back: a reopened read model folds on from here.
        let reopened = Projections::open(&dir.path().join("bulk.db")).unwrap();
        prop_assert_eq!(reopened.fold(), one.fold());
    }
}

#[test]
fn a_failed_batch_leaves_the_committed_state() {
    let events: Vec<(String, String, serde_json::Value)> = (0..8)
        .map(|p| {
            (
                format!("party-p{p}"),
                "catalog.party-registered".to_string(),
                json!({"id": format!("p{p}"), "name": "P", "role": "other"}),
            )
        })
        .collect();
    let envelopes = envelopes(&events);
    let dir = tempfile::tempdir().unwrap();
    let mut projections = Projections::open(&dir.path().join("p.db")).unwrap();
    projections.apply(&envelopes[..5]).unwrap();
    let committed = projections.fold().clone();
    // seq 5 is missing: the batch 6..8 is refused and nothing of it stays.
    let error = projections.apply(&envelopes[6..]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the events to fold start at seq 6, but the projection is at seq 5"
    );
    assert_eq!(projections.position(), 5);
    assert_eq!(projections.fold(), &committed);
    projections.apply(&envelopes[5..]).unwrap();
    assert_eq!(projections.fold().catalog.parties.len(), 8);
}

#[test]
fn tables_of_another_layout_are_folded_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let events = vec![(
        "party-p0".to_string(),
        "catalog.party-registered".to_string(),
        json!({"id": "p0", "name": "P", "role": "other"}),
    )];
    let mut projections = Projections::open(&path).unwrap();
    projections.apply(&envelopes(&events)).unwrap();
    drop(projections);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE projection_position SET next_seq = 0 WHERE projection = 'table-layout'",
        [],
    )
    .unwrap();
    drop(conn);
    let reopened = Projections::open(&path).unwrap();
    assert_eq!(
        reopened.position(),
        0,
        "an old layout is dropped and folded again"
    );
    assert!(reopened.fold().catalog.parties.is_empty());
    let again = Projections::open(&path).unwrap();
    assert_eq!(again.position(), 0);
}

/// Layout 4 stored each line's amounts, with a shared payee list; a file
/// written then opens, drops those tables and folds again into the current
/// layout's, which store a line's allocation plan instead.
#[test]
fn tables_of_layout_4_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE projection_position (projection TEXT PRIMARY KEY, next_seq INTEGER NOT NULL) STRICT;
         INSERT INTO projection_position VALUES ('table-layout', 4), ('royalties', 1);
         CREATE TABLE projection_payee_list (id INTEGER PRIMARY KEY, payees BLOB NOT NULL UNIQUE) STRICT;
         INSERT INTO projection_payee_list VALUES (1, x'0200');
         CREATE TABLE projection_usage_line (
             seq INTEGER PRIMARY KEY, line_id TEXT NOT NULL, derivative BLOB NOT NULL,
             period TEXT NOT NULL, territory TEXT NOT NULL, currency TEXT NOT NULL,
             streams INTEGER NOT NULL, gross TEXT NOT NULL, reverses TEXT,
             status TEXT NOT NULL, payee_list INTEGER REFERENCES projection_payee_list (id),
             amounts BLOB NOT NULL) STRICT;
         CREATE INDEX projection_usage_line_statement ON projection_usage_line (period, currency, seq);
         INSERT INTO projection_usage_line VALUES
             (0, 'L1', x'00000000000000000000000000000001', '2026-01', 'US', 'USD', 1, '1', NULL, 'booked', 1, x'0001');",
    )
    .unwrap();
    drop(conn);
    let mut projections = Projections::open(&path).unwrap();
    assert_eq!(projections.position(), 0, "layout 4 is folded again");
    let events = vec![(
        "party-p0".to_string(),
        "catalog.party-registered".to_string(),
        json!({"id": "p0", "name": "P", "role": "other"}),
    )];
    projections.apply(&envelopes(&events)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let names = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let columns = names("SELECT name FROM pragma_table_info('projection_usage_line')");
    assert!(columns.contains(&"plan".to_string()), "{columns:?}");
    assert!(!columns.contains(&"amounts".to_string()), "{columns:?}");
    let tables = names("SELECT name FROM sqlite_schema WHERE type = 'table'");
    assert!(
        !tables.contains(&"projection_payee_list".to_string()),
        "{tables:?}"
    );
    let statement_index =
        names("SELECT name FROM pragma_index_info('projection_usage_line_statement')");
    assert_eq!(statement_index, ["period", "currency"]);
    let lines: i64 = conn
        .query_row("SELECT count(*) FROM projection_usage_line", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(lines, 0);
}

/// A server may fold the same file while a rebuild runs: the rebuild's
/// writer then finds the stored position moved, stops its fast path, and
/// the rebuild ends on the tables' state. Wherever the other process cuts
/// in, the file must end as a one-shot fold does.
#[test]
fn a_rebuild_beside_another_folding_process_ends_consistent() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let events = scenario()
        .new_tree(&mut TestRunner::deterministic())
        .unwrap()
        .current();
    let envelopes = envelopes(&events);
    let size = envelopes.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let mut one = Projections::open(&dir.path().join("one.db")).unwrap();
    one.apply(&envelopes).unwrap();
    let expected = all_statements(&one, size);

    let shared = dir.path().join("shared.db");
    let mut rebuilding = Projections::open(&shared).unwrap();
    let half = envelopes.len() / 2;
    let batches = envelopes.chunks(1).enumerate().map(|(i, batch)| {
        if i == half {
            // Opening also makes again the indexes the rebuild dropped.
            let mut server = Projections::open(&shared).unwrap();
            server.apply(&envelopes).unwrap();
            assert_eq!(server.position(), size);
        }
        batch.to_vec()
    });
    rebuilding.rebuild_from(batches, 1).unwrap();
    assert_eq!(rebuilding.position(), size);
    assert_eq!(rebuilding.fold(), one.fold());
    assert_eq!(all_statements(&rebuilding, size), expected);
    let reopened = Projections::open(&shared).unwrap();
    assert_eq!(reopened.fold(), one.fold());
    assert_eq!(all_statements(&reopened, size), expected);
}
