//! Attribution weights: each source's share of a derivative's energy as
//! integer basis points that sum to exactly 10 000, by the largest-remainder
//! (Hamilton) method with ties to the lower source index, so the split is
//! deterministic and conserves the whole.

/// Basis points in a whole.
pub const WHOLE_BP: u32 = 10_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AttributionError {
    #[error("attribution needs at least one source")]
    NoSources,
    #[error("source {index} has weight {weight}: weights must be finite and >= 0")]
    InvalidWeight { index: usize, weight: f64 },
    #[error("all sources have zero energy: a silent output cannot be attributed")]
    Silent,
}

/// Splits [`WHOLE_BP`] in proportion to `weights` (energies).
pub fn basis_points(weights: &[f64]) -> Result<Vec<u32>, AttributionError> {
    if weights.is_empty() {
        return Err(AttributionError::NoSources);
    }
    if let Some((index, &weight)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(AttributionError::InvalidWeight { index, weight });
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return Err(AttributionError::Silent);
    }
    let quotas: Vec<f64> = weights
        .iter()
        .map(|w| w / total * f64::from(WHOLE_BP))
        .collect();
    let mut shares: Vec<u32> = quotas
        .iter()
        .map(|q| (q.floor() as u32).min(WHOLE_BP))
        .collect();
    let assigned: u32 = shares.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; equal remainders go to the lower index.
    order.sort_by(|&a, &b| {
        let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let residue = WHOLE_BP.saturating_sub(assigned) as usize;
    for &index in order.iter().cycle().take(residue) {
        shares[index] += 1;
    }
    assert_eq!(
        shares.iter().sum::<u32>(),
        WHOLE_BP,
        "basis points conserve the whole"
    );
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_thirds_give_the_residue_to_the_first_source() {
        assert_eq!(basis_points(&[1.0, 1.0, 1.0]), Ok(vec![3334, 3333, 3333]));
    }

    #[test]
    fn exact_proportions_are_kept_and_silent_sources_get_zero() {
        assert_eq!(basis_points(&[3.0, 1.0, 0.0]), Ok(vec![7500, 2500, 0]));
        assert_eq!(basis_points(&[5.0]), Ok(vec![10_000]));
    }

    #[test]
    fn any_weights_sum_to_the_whole_and_are_within_one_bp_of_the_quota() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2_000 {
            let count = 1 + (next() % 12) as usize;
            let weights: Vec<f64> = (0..count)
                .map(|_| (next() % 1_000_000) as f64 * 1e-3)
                .collect();
            let total: f64 = weights.iter().sum();
            if total == 0.0 {
                continue;
            }
            let shares = basis_points(&weights).expect("valid weights");
            assert_eq!(shares.iter().sum::<u32>(), WHOLE_BP);
            for (w, s) in weights.iter().zip(&shares) {
                let quota = w / total * 10_000.0;
                assert!(
                    (f64::from(*s) - quota).abs() < 1.0,
                    "{weights:?} -> {shares:?}"
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_rejected() {
        assert_eq!(basis_points(&[]), Err(AttributionError::NoSources));
        assert_eq!(basis_points(&[0.0, 0.0]), Err(AttributionError::Silent));
        assert!(matches!(
            basis_points(&[1.0, f64::NAN]),
            Err(AttributionError::InvalidWeight { index: 1, .. })
        ));
        assert!(matches!(
            basis_points(&[-1.0, 2.0]),
            Err(AttributionError::InvalidWeight { index: 0, .. })
        ));
    }
}
