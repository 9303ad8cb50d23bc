//! What the learning classifiers add (`Scanner::bayes`): the Bayes bands, with
//! SpamAssassin's names and default weights, trained with `rempart learn`, and the
//! token regression beside them (`rempart_state::linear`).

use super::{SymbolDef, def};

/// SpamAssassin's Bayes bands, in order, each with the spam probability it ends below.
const BANDS: [(&str, f64); 9] = [
    ("BAYES_00", 0.01),
    ("BAYES_05", 0.05),
    ("BAYES_20", 0.20),
    ("BAYES_40", 0.40),
    ("BAYES_50", 0.60),
    ("BAYES_60", 0.80),
    ("BAYES_80", 0.95),
    ("BAYES_95", 0.99),
    ("BAYES_99", f64::INFINITY),
];
/// The band of even odds, which weighs nothing: the others are steps away from it.
const MIDDLE: usize = 4;
/// Hits beside BAYES_99 from this probability on.
const BAYES_999: (&str, f64) = ("BAYES_999", 0.999);

/// The Bayes symbols for a spam probability: its band, and BAYES_999 above 0.999.
pub fn bayes_bands(p: f64) -> Vec<&'static str> {
    let band = BANDS.iter().find(|(_, end)| p < *end).map_or(BANDS[BANDS.len() - 1].0, |(name, _)| name);
    if p >= BAYES_999.1 { vec![band, BAYES_999.0] } else { vec![band] }
}

/// Every band symbol, BAYES_999 last.
pub fn band_names() -> impl Iterator<Item = &'static str> {
    BANDS.iter().map(|(name, _)| *name).chain(std::iter::once(BAYES_999.0))
}

/// A band as steps away from the middle one (BAYES_50): the steps between them, the band's
/// own included. The weight fit gives each step a weight of its side's sign and a band
/// the sum of its steps, so the bands are monotone. Empty for the middle band.
pub fn band_steps(band: &str) -> Vec<&'static str> {
    if band == BAYES_999.0 {
        return vec![BAYES_999.0];
    }
    let Some(i) = BANDS.iter().position(|(name, _)| *name == band) else { return Vec::new() };
    let steps = match i.cmp(&MIDDLE) {
        std::cmp::Ordering::Less => &BANDS[i..MIDDLE],
        std::cmp::Ordering::Equal => &[],
        std::cmp::Ordering::Greater => &BANDS[MIDDLE + 1..=i],
    };
    steps.iter().map(|(name, _)| *name).collect()
}

/// A band's side of even odds: −1 below, +1 above (BAYES_999 too), 0 for the middle
/// band; None for a symbol that is not a band.
pub fn band_side(band: &str) -> Option<f64> {
    if band == BAYES_999.0 {
        return Some(1.0);
    }
    let i = BANDS.iter().position(|(name, _)| *name == band)?;
    Some(match i.cmp(&MIDDLE) {
        std::cmp::Ordering::Less => -1.0,
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Greater => 1.0,
    })
}

pub const BAYES: &[SymbolDef] = &[
    def(
        "BAYES_00",
        -1.9,
        "bayes",
        "Bayes spam probability is 0 to 1%",
        "Le classifieur bayésien estime la probabilité de spam entre 0 et 1 %.",
    ),
    def(
        "BAYES_05",
        -0.5,
        "bayes",
        "Bayes spam probability is 1 to 5%",
        "Le classifieur bayésien estime la probabilité de spam entre 1 et 5 %.",
    ),
    def(
        "BAYES_20",
        -0.001,
        "bayes",
        "Bayes spam probability is 5 to 20%",
        "Le classifieur bayésien estime la probabilité de spam entre 5 et 20 %.",
    ),
    def(
        "BAYES_40",
        -0.001,
        "bayes",
        "Bayes spam probability is 20 to 40%",
        "Le classifieur bayésien estime la probabilité de spam entre 20 et 40 %.",
    ),
    def(
        "BAYES_50",
        0.8,
        "bayes",
        "Bayes spam probability is 40 to 60%",
        "Le classifieur bayésien estime la probabilité de spam entre 40 et 60 %.",
    ),
    def(
        "BAYES_60",
        1.5,
        "bayes",
        "Bayes spam probability is 60 to 80%",
        "Le classifieur bayésien estime la probabilité de spam entre 60 et 80 %.",
    ),
    def(
        "BAYES_80",
        2.0,
        "bayes",
        "Bayes spam probability is 80 to 95%",
        "Le classifieur bayésien estime la probabilité de spam entre 80 et 95 %.",
    ),
    def(
        "BAYES_95",
        3.0,
        "bayes",
        "Bayes spam probability is 95 to 99%",
        "Le classifieur bayésien estime la probabilité de spam entre 95 et 99 %.",
    ),
    def(
        "BAYES_99",
        3.5,
        "bayes",
        "Bayes spam probability is 99 to 100%",
        "Le classifieur bayésien estime la probabilité de spam entre 99 et 100 %.",
    ),
    def(
        "BAYES_999",
        0.2,
        "bayes",
        "Bayes spam probability is 99.9 to 100%",
        "Le classifieur bayésien estime la probabilité de spam au-delà de 99,9 %.",
    ),
    // Not a hit of its own: points per unit of the Bayes vote's mean token log-odds,
    // added to the weight of the message's Bayes band (fitted weights).
    def(
        "BAYES_LOGODDS",
        0.0,
        "bayes",
        "Points per unit of the Bayes log-odds, added to the Bayes band's weight",
        "Points par unité de log-cote bayésienne, ajoutés au poids de la tranche bayésienne.",
    ),
    // Not a hit of its own: points per unit of the token regression's log-odds, the
    // weight of TOKEN_REGRESSION (fitted weights).
    def(
        "LINEAR_LOGODDS",
        0.0,
        "bayes",
        "Points per unit of the token regression's log-odds (the weight of TOKEN_REGRESSION)",
        "Points par unité de log-cote de la régression sur les mots (le poids de TOKEN_REGRESSION).",
    ),
    // Rempart's: the token regression's own finding, its weight computed per message
    // (LINEAR_LOGODDS × the regression's log-odds), apart from the Bayes band.
    def(
        "TOKEN_REGRESSION",
        0.0,
        "bayes",
        "The message's words, weighed by what this gateway learned from its mail",
        "Les mots du message, pesés selon ce que la passerelle a appris de son courrier.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_and_their_steps() {
        assert_eq!(bayes_bands(0.0), ["BAYES_00"]);
        assert_eq!(bayes_bands(0.5), ["BAYES_50"]);
        assert_eq!(bayes_bands(0.995), ["BAYES_99"]);
        assert_eq!(bayes_bands(0.9995), ["BAYES_99", "BAYES_999"]);
        assert_eq!(band_steps("BAYES_00"), ["BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40"]);
        assert_eq!(band_steps("BAYES_40"), ["BAYES_40"]);
        assert!(band_steps("BAYES_50").is_empty());
        assert_eq!(band_steps("BAYES_60"), ["BAYES_60"]);
        assert_eq!(band_steps("BAYES_99"), ["BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"]);
        assert_eq!(band_steps("BAYES_999"), ["BAYES_999"]);
        assert_eq!((band_side("BAYES_20"), band_side("BAYES_50"), band_side("BAYES_999")), (Some(-1.0), Some(0.0), Some(1.0)));
        assert_eq!(band_side("AWL"), None);
        assert_eq!(band_names().count(), 10);
        // Every band is a defined symbol.
        assert!(band_names().all(|b| BAYES.iter().any(|s| s.name == b)));
    }
}
