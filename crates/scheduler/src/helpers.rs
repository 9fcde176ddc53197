//! Small pieces of upstream's API helpers the plugins share.

pub use rkube_api::scheduling::{find_untolerated_taint, tolerates};

/// Upstream's `helper.DefaultNormalizeScore`: scales scores from `0..=max(scores)` onto
/// `0..=max_priority`, then, with `reverse`, subtracts each from `max_priority`. When every
/// score is 0, all become `max_priority` if reversed and stay 0 otherwise.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max = scores.iter().copied().fold(0, i64::max);
    if max == 0 {
        if reverse {
            scores.fill(max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max_priority * *s / max;
        *s = if reverse {
            max_priority - scaled
        } else {
            scaled
        };
    }
}
