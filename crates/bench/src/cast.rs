//! The two numeric casts the figures need, in one place with why each is
//! sound: counts to floats for rates and means, and floats back to counts.

/// A count as a float, for rates and means: exact up to 2^53, far beyond
/// any count or nanosecond span of a run.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn float(n: u64) -> f64 {
    n as f64
}

/// A float rounded toward zero to a count; negative and NaN give 0 and
/// overflow saturates, as `as` defines.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
pub(crate) fn whole(x: f64) -> u64 {
    x as u64
}
