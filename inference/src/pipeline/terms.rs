//! The licence rules: a request against a recording's terms and a voice's
//! consent, on one day, from one territory. Pure functions of what the
//! catalog says, so a decision can be re-made from the log and restated in
//! a test. Each check names the term broken and the requested value that
//! broke it; the first broken term, in [`RejectionReason::ALL`] order, is
//! the one reported.

use rust_decimal::Decimal;
use schemas::catalog::ConsentWithdrawn;
use schemas::generation::{Recipe, RecipeKind, RejectionReason};
use schemas::licence::{CalendarDate, ConsentScope, LicenceTerms, WORLDWIDE};

/// A request refused for licensing: recorded as `generation.rejected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    pub reason: RejectionReason,
    /// The requested value that broke the term, where one did.
    pub value: Option<String>,
    pub message: String,
}

/// The request facts a decision reads.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub recording: &'a str,
    pub recipe: &'a Recipe,
    /// The requester's ISO 3166-1 alpha-2 territory.
    pub territory: &'a str,
    /// The UTC day the request is decided on.
    pub day: CalendarDate,
}

fn refusal(reason: RejectionReason, value: impl Into<String>, message: String) -> Refusal {
    Refusal {
        reason,
        value: Some(value.into()),
        message,
    }
}

/// Whether `territory` is in `list`, directly or by `WW`.
pub fn covers_territory(list: &[String], territory: &str) -> bool {
    list.iter().any(|t| t == WORLDWIDE || t == territory)
}

/// The tempo rate of a recipe as an exact decimal (`1.3`).
pub fn tempo_rate(recipe: &Recipe) -> Decimal {
    Decimal::new(i64::from(recipe.tempo_rate_ppm), 6).normalize()
}

/// The key shift of a recipe in semitones, exactly (`-2.5`).
pub fn semitones(recipe: &Recipe) -> Decimal {
    Decimal::new(i64::from(recipe.semitones_cents), 2).normalize()
}

/// The stems of the recording the job would read: its separate stems when
/// it has them (else its mixture), less the muted ones. A cover reads its
/// vocal as the melody's source, which a request cannot mute.
pub fn stems_read<'a>(recipe: &Recipe, available: &[&'a str]) -> Vec<&'a str> {
    let separate: Vec<&str> = available
        .iter()
        .copied()
        .filter(|name| *name != "mixture")
        .collect();
    let used = if separate.is_empty() {
        available.to_vec()
    } else {
        separate
    };
    used.into_iter()
        .filter(|name| !recipe.stems.get(*name).is_some_and(|s| s.mute))
        .collect()
}

/// Checks a recording's terms: participation, window, territory, kind,
/// tempo, key, stems and voice, in that order. `stems` are the recording's
/// stem names.
pub fn check_recording_terms(
    terms: Option<&LicenceTerms>,
    stems: &[&str],
    asked: &Asked<'_>,
) -> Result<(), Refusal> {
    let recording = asked.recording;
    let Some(terms) = terms.filter(|t| t.participating) else {
        let why = if terms.is_some() {
            "its label has ended participation"
        } else {
            "it carries no licence terms, and generation needs the label's opt-in"
        };
        return Err(refusal(
            RejectionReason::NotParticipating,
            recording,
            format!("recording {recording} is not participating: {why}"),
        ));
    };
    let day = asked.day;
    if let Some(from) = terms.from.filter(|from| day < *from) {
        return Err(refusal(
            RejectionReason::OutsideWindow,
            day.to_string(),
            format!("recording {recording} is licensed from {from}; the request is made on {day}"),
        ));
    }
    if let Some(until) = terms.until.filter(|until| day > *until) {
        return Err(refusal(
            RejectionReason::OutsideWindow,
            day.to_string(),
            format!(
                "recording {recording} was licensed until {until}; the request is made on {day}"
            ),
        ));
    }
    if let Some(list) = terms
        .territories
        .as_ref()
        .filter(|list| !covers_territory(list, asked.territory))
    {
        return Err(refusal(
            RejectionReason::TerritoryNotLicensed,
            asked.territory,
            format!(
                "recording {recording} is licensed in {} only; the request comes from {}",
                list.join(", "),
                asked.territory
            ),
        ));
    }
    let kind = asked.recipe.kind;
    if let Some(kinds) = terms.kinds.as_ref().filter(|kinds| !kinds.contains(&kind)) {
        return Err(refusal(
            RejectionReason::KindNotLicensed,
            kind.as_str(),
            format!(
                "recording {recording} is licensed for {} only, not a {}",
                names(kinds.iter().map(|k| k.as_str())),
                kind.as_str()
            ),
        ));
    }
    if let Some(bounds) = terms.tempo_rate {
        let rate = tempo_rate(asked.recipe);
        if rate < bounds.min || rate > bounds.max {
            return Err(refusal(
                RejectionReason::TempoOutOfBounds,
                rate.to_string(),
                format!(
                    "tempo rate {rate} is outside recording {recording}'s licensed {}..={}",
                    bounds.min, bounds.max
                ),
            ));
        }
    }
    if let Some(bounds) = terms.semitones {
        let cents = i64::from(asked.recipe.semitones_cents);
        if cents < i64::from(bounds.min) * 100 || cents > i64::from(bounds.max) * 100 {
            let shift = semitones(asked.recipe);
            return Err(refusal(
                RejectionReason::SemitonesOutOfBounds,
                shift.to_string(),
                format!(
                    "a key shift of {shift} semitones is outside recording {recording}'s licensed {}..={}",
                    bounds.min, bounds.max
                ),
            ));
        }
    }
    if let Some(licensed) = &terms.stems {
        if let Some(stem) = stems_read(asked.recipe, stems)
            .into_iter()
            .find(|name| !licensed.iter().any(|l| l == name))
        {
            return Err(refusal(
                RejectionReason::StemNotLicensed,
                stem,
                format!(
                    "recording {recording}'s {stem} stem is not licensed for derivatives (licensed: {}); mute it",
                    names(licensed.iter().map(String::as_str))
                ),
            ));
        }
    }
    if kind == RecipeKind::Cover && terms.voice == Some(false) {
        let voice = asked.recipe.voice_model.as_deref().unwrap_or_default();
        return Err(refusal(
            RejectionReason::VoiceNotLicensed,
            voice,
            format!("recording {recording} may not be sung by a voice model"),
        ));
    }
    Ok(())
}

/// The consent a voice model carries, as the decision reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState<'a> {
    pub voice_model: &'a str,
    pub granted: bool,
    pub reference: Option<&'a str>,
    pub scope: Option<&'a ConsentScope>,
    /// Withdrawals logged for this voice model (of any reference).
    pub withdrawals: &'a [ConsentWithdrawn],
}

impl ConsentState<'_> {
    /// The withdrawal of the current consent in force on `day`, if any.
    pub fn withdrawal_on(&self, day: CalendarDate) -> Option<&ConsentWithdrawn> {
        let reference = self.reference?;
        self.withdrawals
            .iter()
            .find(|w| w.reference == reference && w.effective <= day)
    }
}

/// Checks an artist's consent to a voice: granted, not withdrawn, not
/// expired, and covering the kind and the territory.
pub fn check_consent(consent: &ConsentState<'_>, asked: &Asked<'_>) -> Result<(), Refusal> {
    let id = consent.voice_model;
    if !consent.granted {
        return Err(refusal(
            RejectionReason::ConsentMissing,
            id,
            format!("voice model {id}: the artist has not granted consent to its use"),
        ));
    }
    if let Some(withdrawal) = consent.withdrawal_on(asked.day) {
        return Err(refusal(
            RejectionReason::ConsentWithdrawn,
            withdrawal.reference.clone(),
            format!(
                "voice model {id}: the artist withdrew consent {} effective {}",
                withdrawal.reference, withdrawal.effective
            ),
        ));
    }
    let Some(scope) = consent.scope else {
        return Ok(());
    };
    let day = asked.day;
    if let Some(until) = scope.until.filter(|until| day > *until) {
        return Err(refusal(
            RejectionReason::ConsentExpired,
            day.to_string(),
            format!("voice model {id}: the artist's consent ran until {until}; the request is made on {day}"),
        ));
    }
    let kind = asked.recipe.kind;
    if let Some(kinds) = scope.kinds.as_ref().filter(|kinds| !kinds.contains(&kind)) {
        return Err(refusal(
            RejectionReason::ConsentKindNotCovered,
            kind.as_str(),
            format!(
                "voice model {id}: the artist consented to {} only, not a {}",
                names(kinds.iter().map(|k| k.as_str())),
                kind.as_str()
            ),
        ));
    }
    if let Some(list) = scope
        .territories
        .as_ref()
        .filter(|list| !covers_territory(list, asked.territory))
    {
        return Err(refusal(
            RejectionReason::ConsentTerritoryNotCovered,
            asked.territory,
            format!(
                "voice model {id}: the artist consented in {} only; the request comes from {}",
                list.join(", "),
                asked.territory
            ),
        ));
    }
    Ok(())
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
