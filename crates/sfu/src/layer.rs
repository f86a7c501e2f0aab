//! Which simulcast layer a subscriber gets of a publisher's video. Pure.

use crate::Layer;

/// Picks the layer to forward.
///
/// `available` lists the layers the publisher is sending now with their
/// measured bitrate (bits/s). The result is the highest available layer not
/// above `wanted` whose bitrate fits `budget_bps` (when there is a budget).
/// When no layer is at or below `wanted`, the lowest available layer is
/// chosen, since some video beats none; when no layer fits the budget, the
/// lowest layer at or below `wanted` is chosen (the estimate recovers only
/// while something is sent). `Layer::Off` wanted, or nothing available,
/// gives `None`.
pub fn choose_layer(
    available: &[(Layer, u64)],
    wanted: Layer,
    budget_bps: Option<u64>,
) -> Option<Layer> {
    if wanted == Layer::Off {
        return None;
    }
    let mut at_or_below: Vec<(Layer, u64)> = available
        .iter()
        .copied()
        .filter(|(l, _)| *l != Layer::Off && *l <= wanted)
        .collect();
    if at_or_below.is_empty() {
        return available
            .iter()
            .map(|(l, _)| *l)
            .filter(|l| *l != Layer::Off)
            .min();
    }
    at_or_below.sort_by_key(|(l, _)| *l);
    let fitting = at_or_below
        .iter()
        .rev()
        .find(|(_, rate)| budget_bps.is_none_or(|b| *rate <= b));
    Some(fitting.unwrap_or(&at_or_below[0]).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Layer::*;

    const ALL: [(Layer, u64); 3] = [(Low, 150_000), (Mid, 400_000), (High, 1_200_000)];

    #[test]
    fn highest_at_or_below_wanted() {
        assert_eq!(choose_layer(&ALL, High, None), Some(High));
        assert_eq!(choose_layer(&ALL, Mid, None), Some(Mid));
        assert_eq!(choose_layer(&ALL, Low, None), Some(Low));
        assert_eq!(choose_layer(&[(Low, 1), (High, 1)], Mid, None), Some(Low));
    }

    #[test]
    fn off_and_nothing_available_forward_nothing() {
        assert_eq!(choose_layer(&ALL, Off, None), None);
        assert_eq!(choose_layer(&[], High, None), None);
    }

    #[test]
    fn falls_back_to_lowest_when_none_at_or_below() {
        assert_eq!(choose_layer(&[(Mid, 1), (High, 1)], Low, None), Some(Mid));
    }

    #[test]
    fn budget_caps_the_layer() {
        assert_eq!(choose_layer(&ALL, High, Some(500_000)), Some(Mid));
        assert_eq!(choose_layer(&ALL, High, Some(200_000)), Some(Low));
        assert_eq!(
            choose_layer(&ALL, High, Some(10)),
            Some(Low),
            "never below the lowest"
        );
        assert_eq!(
            choose_layer(&ALL, Low, Some(10_000_000)),
            Some(Low),
            "never above wanted"
        );
    }
}
