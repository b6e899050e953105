//! Long polling: the request is held until an event or `timeout_ms`. The timeout is chosen so
//! the last held request ends exactly when the phase does: abandoning a held request would leave
//! the server counting a response that no client read.

use std::time::Duration;

/// `timeout_ms` for a long-poll sent now: the configured hold, cut to what is left of the
/// phase; `None` when the phase is over.
pub fn timeout_ms(
    configured: Duration,
    deadline: Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> Option<u64> {
    let hold = match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(now);
            if left < Duration::from_millis(1) {
                return None;
            }
            configured.min(left)
        }
        None => configured,
    };
    Some((hold.as_millis() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn hold_ends_with_the_phase() {
        let now = tokio::time::Instant::now();
        let hold = Duration::from_secs(25);
        assert_eq!(timeout_ms(hold, None, now), Some(25_000));
        assert_eq!(
            timeout_ms(hold, Some(now + Duration::from_millis(1500)), now),
            Some(1500)
        );
        assert_eq!(
            timeout_ms(hold, Some(now + Duration::from_secs(60)), now),
            Some(25_000)
        );
        assert_eq!(timeout_ms(hold, Some(now), now), None);
    }
}
