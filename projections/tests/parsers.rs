//! Property tests of the parsers of user input: catalog documents (JSON),
//! usage reports and label statements (CSV). Any bytes, and any damage to a
//! valid document, give a value or an error, never a panic, in memory
//! proportional to the input; and a usage report that is refused appends
//! nothing to the log.

mod common;
mod hostile_input {
    pub mod allocation_meter;
    pub mod damage;
}

use hostile_input::allocation_meter::{parser_budget_bytes, peak_bytes};
use hostile_input::damage::mutate;
use ledger::EventStore;
use projections::catalog::CatalogDocument;
use projections::reconcile::parse_label_statement;
use projections::usage::parse_usage_csv;
use projections::usage_import::import_usage;
use proptest::prelude::*;
use uuid::Uuid;

/// Inputs per property: enough to reach the parsers' odd corners in a few
/// seconds, so that `scripts/test` runs them every time.
const CASES: u32 = 512;

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4096)
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8, usize)>> {
    proptest::collection::vec(
        (any::<usize>(), any::<u8>(), any::<u8>(), 1usize..64),
        1..12,
    )
}

/// Field values that have broken parsers: empty, signs, exponents, numbers
/// beyond any integer or decimal, quotes, separators, non-ASCII.
fn tricky_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e30".to_string()),
        Just("79228162514264337593543950336".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        Just("18446744073709551616".to_string()),
        Just("NaN".to_string()),
        Just("\"a,b\"".to_string()),
        Just("2026-13".to_string()),
        Just("USD".to_string()),
        Just("ZZZ".to_string()),
        Just("😀".to_string()),
        Just(Uuid::from_u128(7).to_string()),
        "[0-9]{1,40}(\\.[0-9]{0,40})?",
        "\\PC{0,24}",
    ]
}

/// Asserts `parse` neither panics nor takes more memory than the budget.
fn parses_within_budget<T, E>(input: &[u8], parse: impl FnOnce(&[u8]) -> Result<T, E>) {
    let (_, used_bytes) = peak_bytes(|| {
        let _ = parse(input);
    });
    let budget_bytes = parser_budget_bytes(input.len());
    assert!(
        used_bytes <= budget_bytes,
        "{used_bytes} bytes for {} bytes of input (budget {budget_bytes})",
        input.len()
    );
}

fn parse_catalog(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let document = CatalogDocument::from_json(text).map_err(|e| e.to_string())?;
    document
        .validate(&mut |path| Ok(common::fake_hash(path)))
        .map(drop)
        .map_err(|e| e.to_string())
}

fn valid_catalog() -> Vec<u8> {
    serde_json::to_vec_pretty(&common::catalog_json("0.8", "0.2")).unwrap()
}

fn valid_usage() -> Vec<u8> {
    format!(
        "{}L1,2026-03,{d},US,USD,120000,480.00,\nL2,2026-03,{d},JP,JPY,5000,700,\nL3,2026-03,{d},US,USD,0,-4.80,L1\n",
        common::HEADER,
        d = Uuid::from_u128(1)
    )
    .into_bytes()
}

fn valid_label_statement() -> Vec<u8> {
    format!(
        "party,currency,amount,derivative\nlabel,USD,120.50,{}\nsinger,JPY,700,\n",
        Uuid::from_u128(1)
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_bytes_as_a_catalog_give_an_answer_in_bounded_memory(bytes in arbitrary_bytes()) {
        parses_within_budget(&bytes, parse_catalog);
    }

    #[test]
    fn a_damaged_catalog_gives_an_answer_in_bounded_memory(edits in edits()) {
        parses_within_budget(&mutate(&valid_catalog(), &edits), parse_catalog);
    }

    #[test]
    fn any_bytes_as_a_usage_report_give_an_answer_in_bounded_memory(bytes in arbitrary_bytes()) {
        parses_within_budget(&bytes, parse_usage_csv);
    }

    #[test]
    fn a_damaged_usage_report_gives_an_answer_in_bounded_memory(edits in edits()) {
        parses_within_budget(&mutate(&valid_usage(), &edits), parse_usage_csv);
    }

    #[test]
    fn usage_rows_of_tricky_fields_give_an_answer_in_bounded_memory(
        rows in proptest::collection::vec(proptest::collection::vec(tricky_field(), 8), 1..20)
    ) {
        let mut writer = csv::Writer::from_writer(common::HEADER.as_bytes().to_vec());
        for row in &rows {
            writer.write_record(row).unwrap();
        }
        parses_within_budget(&writer.into_inner().unwrap(), parse_usage_csv);
    }

    #[test]
    fn any_bytes_as_a_label_statement_give_an_answer_in_bounded_memory(bytes in arbitrary_bytes()) {
        parses_within_budget(&bytes, parse_label_statement);
    }

    #[test]
    fn a_damaged_label_statement_gives_an_answer_in_bounded_memory(edits in edits()) {
        parses_within_budget(&mutate(&valid_label_statement(), &edits), parse_label_statement);
    }

    #[test]
    fn label_statement_rows_of_tricky_fields_give_an_answer_in_bounded_memory(
        rows in proptest::collection::vec(proptest::collection::vec(tricky_field(), 4), 1..20)
    ) {
        let mut writer = csv::Writer::from_writer(b"party,currency,amount,derivative\n".to_vec());
        for row in &rows {
            writer.write_record(row).unwrap();
        }
        parses_within_budget(&writer.into_inner().unwrap(), parse_label_statement);
    }
}

proptest! {
    // Each case opens a store and imports: fewer cases, same reach.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A report of good lines with one bad line anywhere among them is
    /// refused whole: the log is exactly as long as before.
    #[test]
    fn a_usage_report_with_one_bad_line_appends_nothing(
        good_lines in 0usize..12,
        bad_at in any::<prop::sample::Index>(),
        bad_kind in 0u8..4,
        gross_cents in 1u64..10_000_000,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut fixture = common::open();
            common::import_catalog(&fixture.store, &common::catalog_json("0.8", "0.2")).await;
            let derivative = Uuid::from_u128(1);
            let attribution = serde_json::json!([{"kind": "recording", "ref": "GBAYE0601498", "weight_bp": 10000}]);
            common::publish(&fixture.store, derivative, "creator", attribution).await;
            let mut rows: Vec<String> = (0..good_lines)
                .map(|i| format!("G{i},2026-03,{derivative},US,USD,10,{}.{:02},", gross_cents / 100, gross_cents % 100))
                .collect();
            let bad = match bad_kind {
                // A line id used again with other content (needs a good line G0).
                2 if good_lines > 0 => format!("G0,2026-03,{derivative},US,USD,11,2.00,"),
                // An unknown derivative.
                0 | 2 => format!("B,2026-03,{},US,USD,10,1.00,", Uuid::from_u128(99)),
                // A refund of a line that was never imported.
                1 => format!("B,2026-03,{derivative},US,USD,10,1.00,G-none"),
                // A line that refunds itself.
                _ => format!("B,2026-03,{derivative},US,USD,10,1.00,B"),
            };
            rows.insert(bad_at.index(rows.len() + 1), bad);
            let size_before = fixture.store.size().await.unwrap();
            let csv = format!("{}{}\n", common::HEADER, rows.join("\n"));
            let refused = match parse_usage_csv(csv.as_bytes()) {
                Ok(lines) => import_usage(&fixture.store, &mut fixture.projections, lines).await.is_err(),
                Err(_) => true,
            };
            prop_assert!(refused, "a report with a bad line was accepted:\n{csv}");
            prop_assert_eq!(fixture.store.size().await.unwrap(), size_before);
            Ok::<(), TestCaseError>(())
        })?;
    }
}
