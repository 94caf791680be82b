//! Every licence term and consent condition, on each side of its bounds,
//! through the whole decision ([`LicensedInputs::license`]); then a
//! property test against a plain restatement of the rules.

use super::super::licensing::{LicensedInputs, LicensedRecording, LicensedVoiceModel};
use super::super::request::ValidRequest;
use super::*;
use proptest::prelude::*;
use schemas::catalog::ConsentWithdrawn;
use schemas::generation::StemSetting;
use schemas::licence::{RateBounds, SemitoneBounds};
use schemas::ContentHash;
use std::collections::BTreeMap;

const ISRC: &str = "ZZLL02600001";
const VOICE: &str = "voice-vm-1";
const REFERENCE: &str = "consent/7";
const STEMS: [&str; 4] = ["vocals", "drums", "bass", "other"];

fn day(text: &str) -> CalendarDate {
    text.parse().unwrap()
}

fn hash(n: u8) -> ContentHash {
    ContentHash::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
}

/// The example terms, with a territory list instead of `WW`.
fn terms() -> LicenceTerms {
    LicenceTerms {
        participating: true,
        kinds: Some(vec![RecipeKind::Remix, RecipeKind::Cover]),
        stems: Some(STEMS.iter().map(|s| s.to_string()).collect()),
        tempo_rate: Some(RateBounds {
            min: Decimal::new(8, 1),
            max: Decimal::new(125, 2),
        }),
        semitones: Some(SemitoneBounds { min: -3, max: 3 }),
        voice: Some(true),
        territories: Some(vec!["US".into(), "GB".into()]),
        from: Some(day("2026-01-01")),
        until: Some(day("2027-12-31")),
    }
}

fn scope() -> ConsentScope {
    ConsentScope {
        kinds: Some(vec![RecipeKind::Cover]),
        territories: Some(vec!["US".into(), "GB".into()]),
        until: Some(day("2027-06-30")),
    }
}

/// A recording with four stems and the terms above, and a consented,
/// trained voice model.
fn catalog() -> LicensedInputs {
    LicensedInputs {
        recording: Some(LicensedRecording {
            isrc: ISRC.into(),
            stems: STEMS
                .iter()
                .enumerate()
                .map(|(i, s)| (s.to_string(), hash(i as u8)))
                .collect(),
            terms: Some(terms()),
            terms_seq: 3,
        }),
        voice_model: Some(LicensedVoiceModel {
            id: VOICE.into(),
            artist: "artist".into(),
            consent_granted: true,
            consent_reference: Some(REFERENCE.into()),
            consent_scope: Some(scope()),
            consent_seq: 4,
            withdrawals: Vec::new(),
            training_stems: vec![hash(0)],
            artifact: Some(hash(9)),
        }),
    }
}

fn remix() -> ValidRequest {
    ValidRequest {
        recording: ISRC.into(),
        requested_by: "creator".into(),
        territory: "US".into(),
        recipe: Recipe {
            kind: RecipeKind::Remix,
            stems: BTreeMap::new(),
            tempo_rate_ppm: 1_000_000,
            semitones_cents: 0,
            voice_model: None,
        },
    }
}

fn cover() -> ValidRequest {
    let mut request = remix();
    request.recipe.kind = RecipeKind::Cover;
    request.recipe.voice_model = Some(VOICE.into());
    request
}

fn terms_mut(catalog: &mut LicensedInputs) -> &mut LicenceTerms {
    catalog.recording.as_mut().unwrap().terms.as_mut().unwrap()
}

fn voice_mut(catalog: &mut LicensedInputs) -> &mut LicensedVoiceModel {
    catalog.voice_model.as_mut().unwrap()
}

fn mute(request: &mut ValidRequest, stem: &str) {
    request.recipe.stems.insert(
        stem.into(),
        StemSetting {
            gain_mb: 0,
            mute: true,
        },
    );
}

fn withdrawal(reference: &str, effective: CalendarDate) -> schemas::catalog::ConsentWithdrawn {
    schemas::catalog::ConsentWithdrawn {
        voice_model: VOICE.into(),
        reference: reference.into(),
        effective,
    }
}

type Edit = fn(&mut LicensedInputs, &mut ValidRequest) -> CalendarDate;
/// A case: its name, the request it edits, the edit (returning the day
/// decided on), and the refusal and value expected (`None`: accepted).
type Case = (
    &'static str,
    fn() -> ValidRequest,
    Edit,
    Option<(RejectionReason, &'static str)>,
);

/// A day inside every window above.
const INSIDE: &str = "2026-06-15";

#[test]
fn every_term_is_decided_on_each_side_of_its_bounds() {
    use RejectionReason::*;
    // (case, base request, edit returning the day, expected refusal and value)
    let cases: Vec<Case> = vec![
        ("remix inside every term", remix, |_, _| day(INSIDE), None),
        ("cover inside every term", cover, |_, _| day(INSIDE), None),
        (
            "unknown recording",
            remix,
            |_, r| {
                r.recording = "ZZLL09999999".into();
                day(INSIDE)
            },
            Some((UnknownRecording, "ZZLL09999999")),
        ),
        (
            "no terms: not participating",
            remix,
            |c, _| {
                c.recording.as_mut().unwrap().terms = None;
                day(INSIDE)
            },
            Some((NotParticipating, ISRC)),
        ),
        (
            "participation ended",
            remix,
            |c, _| {
                terms_mut(c).participating = false;
                day(INSIDE)
            },
            Some((NotParticipating, ISRC)),
        ),
        (
            "only participating: no other restriction",
            cover,
            |c, r| {
                *terms_mut(c) = LicenceTerms::unrestricted();
                r.territory = "BR".into();
                r.recipe.tempo_rate_ppm = 2_000_000;
                voice_mut(c).consent_scope = None;
                day("2031-01-01")
            },
            None,
        ),
        ("first valid day", remix, |_, _| day("2026-01-01"), None),
        (
            "the day before the window",
            remix,
            |_, _| day("2025-12-31"),
            Some((OutsideWindow, "2025-12-31")),
        ),
        ("last valid day", remix, |_, _| day("2027-12-31"), None),
        (
            "the day after the window",
            remix,
            |_, _| day("2028-01-01"),
            Some((OutsideWindow, "2028-01-01")),
        ),
        (
            "a listed territory",
            remix,
            |_, r| {
                r.territory = "GB".into();
                day(INSIDE)
            },
            None,
        ),
        (
            "an unlisted territory",
            remix,
            |_, r| {
                r.territory = "FR".into();
                day(INSIDE)
            },
            Some((TerritoryNotLicensed, "FR")),
        ),
        (
            "worldwide covers every territory",
            remix,
            |c, r| {
                terms_mut(c).territories = Some(vec!["WW".into()]);
                r.territory = "FR".into();
                day(INSIDE)
            },
            None,
        ),
        (
            "an empty territory list covers none",
            remix,
            |c, _| {
                terms_mut(c).territories = Some(vec![]);
                day(INSIDE)
            },
            Some((TerritoryNotLicensed, "US")),
        ),
        (
            "a kind not licensed",
            cover,
            |c, _| {
                terms_mut(c).kinds = Some(vec![RecipeKind::Remix]);
                day(INSIDE)
            },
            Some((KindNotLicensed, "cover")),
        ),
        (
            "the licensed kind",
            remix,
            |c, _| {
                terms_mut(c).kinds = Some(vec![RecipeKind::Remix]);
                day(INSIDE)
            },
            None,
        ),
        (
            "the slowest tempo",
            remix,
            |_, r| {
                r.recipe.tempo_rate_ppm = 800_000;
                day(INSIDE)
            },
            None,
        ),
        (
            "just slower",
            remix,
            |_, r| {
                r.recipe.tempo_rate_ppm = 799_999;
                day(INSIDE)
            },
            Some((TempoOutOfBounds, "0.799999")),
        ),
        (
            "the fastest tempo",
            remix,
            |_, r| {
                r.recipe.tempo_rate_ppm = 1_250_000;
                day(INSIDE)
            },
            None,
        ),
        (
            "just faster",
            remix,
            |_, r| {
                r.recipe.tempo_rate_ppm = 1_250_001;
                day(INSIDE)
            },
            Some((TempoOutOfBounds, "1.250001")),
        ),
        (
            "much faster",
            remix,
            |_, r| {
                r.recipe.tempo_rate_ppm = 1_300_000;
                day(INSIDE)
            },
            Some((TempoOutOfBounds, "1.3")),
        ),
        (
            "the lowest key",
            remix,
            |_, r| {
                r.recipe.semitones_cents = -300;
                day(INSIDE)
            },
            None,
        ),
        (
            "just lower",
            remix,
            |_, r| {
                r.recipe.semitones_cents = -301;
                day(INSIDE)
            },
            Some((SemitonesOutOfBounds, "-3.01")),
        ),
        (
            "the highest key",
            remix,
            |_, r| {
                r.recipe.semitones_cents = 300;
                day(INSIDE)
            },
            None,
        ),
        (
            "just higher",
            remix,
            |_, r| {
                r.recipe.semitones_cents = 301;
                day(INSIDE)
            },
            Some((SemitonesOutOfBounds, "3.01")),
        ),
        (
            "an unlicensed stem played",
            remix,
            |c, _| {
                terms_mut(c).stems = Some(vec!["drums".into(), "bass".into(), "other".into()]);
                day(INSIDE)
            },
            Some((StemNotLicensed, "vocals")),
        ),
        (
            "an unlicensed stem muted",
            remix,
            |c, r| {
                terms_mut(c).stems = Some(vec!["drums".into(), "bass".into(), "other".into()]);
                mute(r, "vocals");
                day(INSIDE)
            },
            None,
        ),
        (
            "a cover reads the unlicensed vocal",
            cover,
            |c, _| {
                terms_mut(c).stems = Some(vec!["drums".into(), "bass".into(), "other".into()]);
                day(INSIDE)
            },
            Some((StemNotLicensed, "vocals")),
        ),
        (
            "no voice allowed: a remix",
            remix,
            |c, _| {
                terms_mut(c).voice = Some(false);
                day(INSIDE)
            },
            None,
        ),
        (
            "no voice allowed: a cover",
            cover,
            |c, _| {
                terms_mut(c).voice = Some(false);
                day(INSIDE)
            },
            Some((VoiceNotLicensed, VOICE)),
        ),
        (
            "unknown voice model",
            cover,
            |c, _| {
                c.voice_model = None;
                day(INSIDE)
            },
            Some((UnknownVoiceModel, VOICE)),
        ),
        (
            "consent not granted",
            cover,
            |c, _| {
                voice_mut(c).consent_granted = false;
                day(INSIDE)
            },
            Some((ConsentMissing, VOICE)),
        ),
        (
            "withdrawn from this day",
            cover,
            |c, _| {
                voice_mut(c)
                    .withdrawals
                    .push(withdrawal(REFERENCE, day(INSIDE)));
                day(INSIDE)
            },
            Some((ConsentWithdrawn, REFERENCE)),
        ),
        (
            "withdrawn from tomorrow",
            cover,
            |c, _| {
                voice_mut(c)
                    .withdrawals
                    .push(withdrawal(REFERENCE, day("2026-06-16")));
                day(INSIDE)
            },
            None,
        ),
        (
            "an earlier consent withdrawn",
            cover,
            |c, _| {
                voice_mut(c)
                    .withdrawals
                    .push(withdrawal("consent/1", day("2026-01-01")));
                day(INSIDE)
            },
            None,
        ),
        (
            "a remix does not need the voice",
            remix,
            |c, _| {
                voice_mut(c).consent_granted = false;
                day(INSIDE)
            },
            None,
        ),
        (
            "the consent's last day",
            cover,
            |_, _| day("2027-06-30"),
            None,
        ),
        (
            "the day after the consent",
            cover,
            |_, _| day("2027-07-01"),
            Some((ConsentExpired, "2027-07-01")),
        ),
        (
            "a kind the consent does not cover",
            cover,
            |c, _| {
                voice_mut(c).consent_scope.as_mut().unwrap().kinds = Some(vec![RecipeKind::Remix]);
                day(INSIDE)
            },
            Some((ConsentKindNotCovered, "cover")),
        ),
        (
            "a territory the consent does not cover",
            cover,
            |c, _| {
                voice_mut(c).consent_scope.as_mut().unwrap().territories = Some(vec!["GB".into()]);
                day(INSIDE)
            },
            Some((ConsentTerritoryNotCovered, "US")),
        ),
        (
            "a consent worldwide",
            cover,
            |c, _| {
                voice_mut(c).consent_scope.as_mut().unwrap().territories = Some(vec!["WW".into()]);
                day(INSIDE)
            },
            None,
        ),
        (
            "not trained",
            cover,
            |c, _| {
                voice_mut(c).artifact = None;
                day(INSIDE)
            },
            Some((VoiceModelNotTrained, VOICE)),
        ),
    ];
    for (case, base, edit, expected) in cases {
        let mut inputs = catalog();
        let mut request = base();
        let on = edit(&mut inputs, &mut request);
        let decided = inputs.license(&request, on);
        match (expected, decided) {
            (None, Ok(licence)) => {
                assert_eq!(licence.recording.terms_seq, 3, "{case}");
                let cover = request.recipe.kind == RecipeKind::Cover;
                assert_eq!(licence.consent_seq.is_some(), cover, "{case}");
                assert_eq!(licence.voice_model.is_some(), cover, "{case}");
            }
            (Some((reason, value)), Err(refusal)) => {
                assert_eq!(refusal.reason, reason, "{case}: {refusal}");
                assert_eq!(refusal.value.as_deref(), Some(value), "{case}");
                assert!(refusal.to_string().starts_with(reason.code()), "{case}");
            }
            (expected, decided) => {
                panic!("{case}: expected {expected:?}, decided {decided:?}")
            }
        }
    }
}

/// The rules as the issue states them, written without the engine's
/// helpers: does the catalog allow the request on `on`?
fn plain_rules(inputs: &LicensedInputs, request: &ValidRequest, on: CalendarDate) -> bool {
    let Some(recording) = inputs.recording.as_ref() else {
        return false;
    };
    let Some(t) = recording.terms.as_ref() else {
        return false;
    };
    let cover = request.recipe.kind == RecipeKind::Cover;
    let in_list = |list: &Option<Vec<String>>| {
        list.as_ref()
            .is_none_or(|l| l.contains(&"WW".to_string()) || l.contains(&request.territory))
    };
    let ppm = |d: Decimal| {
        (d * Decimal::from(1_000_000))
            .normalize()
            .to_string()
            .parse::<i64>()
    };
    let rate = i64::from(request.recipe.tempo_rate_ppm);
    let cents = i64::from(request.recipe.semitones_cents);
    let mut played: Vec<&str> = Vec::new();
    for name in recording.stems.keys() {
        let muted = request.recipe.stems.get(name).is_some_and(|s| s.mute);
        if name != "mixture" && !muted {
            played.push(name);
        }
    }
    let recording_ok = t.participating
        && t.from.is_none_or(|f| f <= on)
        && t.until.is_none_or(|u| on <= u)
        && in_list(&t.territories)
        && t.kinds
            .as_ref()
            .is_none_or(|k| k.contains(&request.recipe.kind))
        && t.tempo_rate
            .is_none_or(|b| ppm(b.min).unwrap() <= rate && rate <= ppm(b.max).unwrap())
        && t.semitones
            .is_none_or(|b| i64::from(b.min) * 100 <= cents && cents <= i64::from(b.max) * 100)
        && t.stems
            .as_ref()
            .is_none_or(|s| played.iter().all(|p| s.iter().any(|l| l == p)))
        && !(cover && t.voice == Some(false));
    if !recording_ok {
        return false;
    }
    if !cover {
        return true;
    }
    let Some(v) = inputs.voice_model.as_ref() else {
        return false;
    };
    let withdrawn = v
        .withdrawals
        .iter()
        .any(|w| Some(w.reference.as_str()) == v.consent_reference.as_deref() && w.effective <= on);
    let scope_ok = v.consent_scope.as_ref().is_none_or(|s| {
        s.until.is_none_or(|u| on <= u)
            && s.kinds
                .as_ref()
                .is_none_or(|k| k.contains(&RecipeKind::Cover))
            && in_list(&s.territories)
    });
    v.consent_granted && !withdrawn && scope_ok && v.artifact.is_some()
}

/// A term present one time in three: with every term present, few
/// requests would get past the recording to the voice's consent.
fn some<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.35, s)
}

/// Days, bounds and values are drawn from small sets, so that requests
/// land on and next to the bounds often.
fn a_day() -> impl Strategy<Value = CalendarDate> {
    (0i64..6).prop_map(|d| CalendarDate(day("2026-12-30").0 + time::Duration::days(d)))
}

fn territories() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(vec!["US", "GB", "FR", "WW"], 0..=3)
        .prop_map(|l| l.into_iter().map(String::from).collect())
}

fn kinds() -> impl Strategy<Value = Vec<RecipeKind>> {
    prop::sample::subsequence(vec![RecipeKind::Remix, RecipeKind::Cover], 0..=2)
}

prop_compose! {
    fn random_terms()(
        participating in prop::bool::weighted(0.9),
        kinds in some(kinds()),
        stems in some(prop::sample::subsequence(STEMS.to_vec(), 0..=4)),
        tempo in some((prop::sample::select(vec![800_000i64, 900_000, 1_000_000]),
                       prop::sample::select(vec![0i64, 100_000, 250_000]))),
        semitones in some((-3i32..=0, 0i32..=3)),
        voice in some(any::<bool>()),
        territories in some(territories()),
        from in some(a_day()),
        until in some(a_day()),
    ) -> LicenceTerms {
        LicenceTerms {
            participating,
            kinds,
            stems: stems.map(|s| s.into_iter().map(String::from).collect()),
            tempo_rate: tempo.map(|(min, width)| RateBounds {
                min: Decimal::new(min, 6),
                max: Decimal::new(min + width, 6),
            }),
            semitones: semitones.map(|(min, width)| SemitoneBounds { min, max: min + width }),
            voice,
            territories,
            from,
            until,
        }
    }
}

prop_compose! {
    fn random_voice()(
        granted in prop::bool::weighted(0.8),
        scope in some((some(kinds()), some(territories()), some(a_day()))),
        withdrawals in prop::collection::vec((prop::bool::ANY, a_day()), 0..2),
        trained in prop::bool::weighted(0.9),
    ) -> LicensedVoiceModel {
        LicensedVoiceModel {
            id: VOICE.into(),
            artist: "artist".into(),
            consent_granted: granted,
            consent_reference: Some(REFERENCE.into()),
            consent_scope: scope.map(|(kinds, territories, until)| ConsentScope { kinds, territories, until }),
            consent_seq: 4,
            withdrawals: withdrawals
                .into_iter()
                .map(|(this_one, effective)| ConsentWithdrawn {
                    voice_model: VOICE.into(),
                    reference: if this_one { REFERENCE.into() } else { "consent/0".into() },
                    effective,
                })
                .collect(),
            training_stems: vec![hash(0)],
            artifact: trained.then(|| hash(9)),
        }
    }
}

prop_compose! {
    fn random_request()(
        cover in any::<bool>(),
        territory in prop::sample::select(vec!["US", "GB", "FR"]),
        tempo_rate_ppm in prop::sample::select(vec![
            799_999u32, 800_000, 899_999, 900_000, 1_000_000, 1_000_001, 1_100_000, 1_150_000, 1_250_000, 1_250_001,
        ]),
        semitones_cents in prop::sample::select(vec![-301i32, -300, -201, -200, -100, -1, 0, 1, 100, 300, 301]),
        muted in prop::sample::subsequence(STEMS.to_vec(), 0..=2),
    ) -> ValidRequest {
        let mut request = if cover { self::cover() } else { remix() };
        request.territory = territory.into();
        request.recipe.tempo_rate_ppm = tempo_rate_ppm;
        request.recipe.semitones_cents = semitones_cents;
        for stem in muted {
            if !(cover && stem == "vocals") {
                mute(&mut request, stem);
            }
        }
        request
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_request_is_accepted_exactly_when_the_plain_rules_accept_it(
        terms in some(random_terms()),
        voice in some(random_voice()),
        request in random_request(),
        on in a_day(),
    ) {
        let mut inputs = catalog();
        inputs.recording.as_mut().unwrap().terms = terms;
        inputs.voice_model = voice;
        let decided = inputs.license(&request, on);
        prop_assert_eq!(
            decided.is_ok(),
            plain_rules(&inputs, &request, on),
            "decided {:?}",
            decided.err()
        );
    }
}

/// A step of a random catalog history: amend the recording's terms or the
/// voice's consent, withdraw the consent, or decide a request.
#[derive(Debug, Clone)]
enum Step {
    Terms(Option<LicenceTerms>),
    Voice(LicensedVoiceModel),
    Withdraw(CalendarDate),
    Decide(ValidRequest),
}

fn a_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        some(random_terms()).prop_map(Step::Terms),
        random_voice().prop_map(Step::Voice),
        a_day().prop_map(Step::Withdraw),
        random_request().prop_map(Step::Decide),
        random_request().prop_map(Step::Decide),
    ]
}

/// Appends `step`'s catalog event, as the importer and `consent withdraw`
/// write them.
async fn append_step(store: &ledger::store::sqlite::SqliteStore, step: &Step) {
    use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
    use schemas::catalog::{self, Consent, Recording, Split, Stems, VoiceModel};
    let split = vec![Split {
        party: "artist".into(),
        share: 1.into(),
    }];
    let (stream, event_type, data) = match step {
        Step::Terms(terms) => {
            let recording = Recording {
                isrc: ISRC.into(),
                title: "Song".into(),
                work: "T-034524680-1".into(),
                master_splits: split,
                stems: Stems {
                    vocals: Some(hash(0)),
                    drums: Some(hash(1)),
                    bass: Some(hash(2)),
                    other: Some(hash(3)),
                    mixture: None,
                },
                licence: terms.clone(),
            };
            (
                catalog::recording_stream(ISRC),
                catalog::RECORDING_AMENDED,
                serde_json::to_value(recording).unwrap(),
            )
        }
        Step::Voice(model) => {
            let voice = VoiceModel {
                id: VOICE.into(),
                artist: "artist".into(),
                consent: Consent {
                    granted: model.consent_granted,
                    reference: model.consent_reference.clone(),
                    scope: model.consent_scope.clone(),
                },
                training_stems: vec![hash(0)],
                likeness_splits: split,
            };
            (
                catalog::voice_model_stream(VOICE),
                catalog::VOICE_MODEL_AMENDED,
                serde_json::to_value(voice).unwrap(),
            )
        }
        Step::Withdraw(effective) => (
            catalog::voice_consent_stream(VOICE),
            catalog::VOICE_CONSENT_WITHDRAWN,
            serde_json::to_value(withdrawal(REFERENCE, *effective)).unwrap(),
        ),
        Step::Decide(_) => return,
    };
    store
        .append(AppendRequest::new(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, data)],
        ))
        .await
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Decisions made as the catalog changes are made again, the same, from
    /// the log: each from the events before its own position. The server's
    /// in-memory index reads the same facts as the streams do.
    #[test]
    fn decisions_made_again_from_the_log_are_the_same(
        steps in prop::collection::vec(a_step(), 1..24),
        on in a_day(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = ledger::store::sqlite::SqliteStore::open(
            ledger::store::sqlite::SqliteConfig::new(dir.path(), ledger::checkpoint::DEFAULT_ORIGIN),
        )
        .unwrap();
        let decided = runtime.block_on(async {
            use ledger::EventStore;
            // The model is trained once; its training run is on its own stream.
            let trained = schemas::generation::VoiceModelTrained {
                voice_model: VOICE.into(),
                artist: "artist".into(),
                consent_reference: Some(REFERENCE.into()),
                training_stems: vec![hash(0)],
                artifact: hash(9),
                kernels: Vec::new(),
                backend: schemas::generation::ComputeBackend::Cpu,
                adapter: None,
                frames_total: 1,
                frames_voiced: 1,
                cells_filled: 1,
                cells_total: 1,
                duration_ms: 1,
            };
            store
                .append(ledger::AppendRequest::new(
                    schemas::generation::voice_training_stream(VOICE),
                    ledger::ExpectedVersion::Any,
                    vec![ledger::NewEvent::new(
                        schemas::generation::VOICE_MODEL_TRAINED,
                        serde_json::to_value(trained).unwrap(),
                    )],
                ))
                .await
                .unwrap();
            let mut decided = Vec::new();
            let index = super::super::LicensingIndex::new();
            for step in &steps {
                append_step(&store, step).await;
                if let Step::Decide(request) = step {
                    let at = store.size().await.unwrap();
                    let inputs = LicensedInputs::from_log(&store, request).await.unwrap();
                    // The server's index, caught up, reads the same facts.
                    let indexed = index.inputs_now(&store, request).await.unwrap();
                    assert_eq!(indexed, inputs);
                    decided.push((at, request.clone(), inputs.license(request, on).map_err(|r| r.reason)));
                }
            }
            decided
        });
        for (at, request, live) in decided {
            let again = runtime.block_on(LicensedInputs::from_log_before(&store, &request, at)).unwrap();
            prop_assert_eq!(again.license(&request, on).map_err(|r| r.reason), live);
        }
    }
}
