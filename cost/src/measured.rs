//! A cost as the repeats measured it. Every repeat's value is kept, not only a median and a
//! range: a bill is composed once per repeat (repeat *i* of every figure together, because the
//! repeats were interleaved and share their moment's machine state), and two transports' bills
//! are then compared by a rank test over those per-repeat bills ([`crate::rank`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Measured {
    /// One value per repeat, in the order the repeats ran.
    pub samples: Vec<f64>,
}

impl Measured {
    pub fn new(samples: Vec<f64>) -> Self {
        Self { samples }
    }

    /// A figure that is the same in every repeat by construction (a count of bytes the
    /// protocol fixes, a setting): `n` copies, so it composes per repeat like the others.
    pub fn exact(v: f64, n: usize) -> Self {
        Self {
            samples: vec![v; n.max(1)],
        }
    }

    pub fn n(&self) -> usize {
        self.samples.len()
    }

    /// Repeat `i`'s value; the median when this figure has fewer repeats than the
    /// composition asks for (a figure measured once, in a model whose other figures were
    /// repeated).
    pub fn at(&self, i: Option<usize>) -> f64 {
        match i {
            Some(i) if i < self.samples.len() => self.samples[i],
            _ => self.median(),
        }
    }

    pub fn median(&self) -> f64 {
        median(&self.samples)
    }

    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// Whether every sample is a finite number: a model with a NaN or an infinity in it was
    /// not measured, and is refused when loaded.
    pub fn is_sound(&self) -> bool {
        !self.samples.is_empty() && self.samples.iter().all(|v| v.is_finite())
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let m = Measured::new(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(m.median(), 2.5);
        assert_eq!(m.min(), 1.0);
        assert_eq!(m.max(), 10.0);
        assert_eq!(m.at(Some(3)), 10.0);
        assert_eq!(m.at(Some(9)), 2.5);
        assert_eq!(m.at(None), 2.5);
    }

    #[test]
    fn unsound_figures_are_told() {
        assert!(!Measured::new(vec![]).is_sound());
        assert!(!Measured::new(vec![1.0, f64::NAN]).is_sound());
        assert!(Measured::exact(4.0, 3).is_sound());
    }
}
