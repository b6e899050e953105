//! How the report writes numbers: microseconds as µs/ms/s, bytes as B/KiB/MiB, figures with a
//! sensible number of digits, integers with thousands separators. A leaf, so that everything
//! that words a number the report's way (loadgen's plan and chaos descriptions included) takes
//! it from here, not from a rendering.

/// Microseconds as `812 µs`, `4.2 ms` or `1.50 s`.
pub fn us(v: u64) -> String {
    let v = v as f64;
    if v < 1_000.0 {
        format!("{v:.0} µs")
    } else if v < 1_000_000.0 {
        let ms = v / 1_000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else if ms < 100.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else {
        format!("{:.2} s", v / 1_000_000.0)
    }
}

/// Bytes as `512 B`, `12.3 KiB`, `4.5 MiB`.
pub fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// A number with a sensible number of digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if (v.fract() == 0.0 && a < 1e15) || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// A thousands-separated integer.
pub fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A figure that may be missing: `–` when it is.
pub fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(us(812), "812 µs");
        assert_eq!(us(4_210), "4.21 ms");
        assert_eq!(us(502_000), "502 ms");
        assert_eq!(us(1_500_000), "1.50 s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(12.5 * 1024.0), "12.5 KiB");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(12), "12");
        assert_eq!(num(0.00021), "2.10e-4");
        assert_eq!(num(1.0234), "1.02");
    }
}
