//! The `Date` header, formatted once per second instead of once per response.
//!
//! RFC 9110 §6.6.1 wants a `Date` on every response from a server with a clock. Formatting
//! an IMF-fixdate costs a clock read and a few hundred nanoseconds; at a hundred thousand
//! responses a second that is time better spent elsewhere, and the string only changes
//! once a second. nginx and hyper cache it the same way.

use std::time::{Duration, Instant, SystemTime};

/// The current `Date` value, refreshed when the tick's monotonic time passes the next
/// second boundary.
#[derive(Debug)]
pub struct DateCache {
    value: String,
    /// When the wall clock enters the next second (as a monotonic instant).
    refresh_at: Instant,
}

impl DateCache {
    /// A cache that formats on first use.
    pub fn new(now: Instant) -> DateCache {
        DateCache {
            value: String::new(),
            refresh_at: now,
        }
    }

    /// [`DateCache::get`], and a stamp that changes exactly when the value does: a key for
    /// anything built from the date.
    pub fn get_stamped(&mut self, now: Instant) -> (&str, Instant) {
        self.get(now);
        (&self.value, self.refresh_at)
    }

    /// The `Date` value for the tick at `now` (the reactor's per-tick time).
    pub fn get(&mut self, now: Instant) -> &str {
        if now >= self.refresh_at {
            let wall = SystemTime::now();
            self.value =
                netloop_protocols::http::http_date(chrono::DateTime::<chrono::Utc>::from(wall));
            let into_second = wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(Duration::ZERO, |d| {
                    Duration::from_nanos(u64::from(d.subsec_nanos()))
                });
            self.refresh_at = now + (Duration::from_secs(1) - into_second);
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_once_per_second() {
        let t0 = Instant::now();
        let mut cache = DateCache::new(t0);
        let first = cache.get(t0).to_string();
        assert!(first.ends_with(" GMT") && first.len() == 29, "{first:?}");
        let refresh = cache.refresh_at;
        assert!(refresh > t0 && refresh <= t0 + Duration::from_secs(1));
        // Within the second, the same string (not re-formatted: the deadline is unchanged).
        cache.get(t0 + (refresh - t0) / 2);
        assert_eq!(cache.refresh_at, refresh);
        cache.get(refresh);
        assert!(cache.refresh_at > refresh, "re-formatted at the boundary");
    }
}
