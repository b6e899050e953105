//! The prices the cost model turns memory and CPU into money with (`--price-vcpu-hour`,
//! `--price-gib-hour`), and their defaults, which reports written before the flags assume.

/// AWS Fargate, Linux/x86, US East (N. Virginia): USD per vCPU per hour
/// (<https://aws.amazon.com/fargate/pricing/>, on-demand).
pub const FARGATE_VCPU_HOUR_USD: f64 = 0.040_48;

/// AWS Fargate, Linux/x86, US East (N. Virginia): USD per GB of memory per hour (the same
/// page; Fargate sizes memory in GiB steps, so it is taken per GiB).
pub const FARGATE_GIB_HOUR_USD: f64 = 0.004_445;

/// Highest price per hour the flags accept, USD: a typo cannot make the model meaningless.
pub const MAX_PRICE_PER_HOUR: f64 = 1000.0;

pub fn default_vcpu_hour() -> f64 {
    FARGATE_VCPU_HOUR_USD
}

pub fn default_gib_hour() -> f64 {
    FARGATE_GIB_HOUR_USD
}
