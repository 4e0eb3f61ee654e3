//! What a run measured: completed requests, their latencies, and what went wrong.

use hdrhistogram::Histogram;
use std::fmt;
use std::time::Duration;

/// Latencies are recorded in microseconds: loopback round trips are tens of µs, so
/// milliseconds would round them all to 0 or 1.
pub const LATENCY_UNIT: &str = "µs";

/// Longest latency the histogram holds, in µs (a minute). Longer ones are clamped to it:
/// a request that slow has already been counted as a timeout by any sane plan.
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// Significant decimal digits the histogram keeps: 3 means every value is recorded within
/// 0.1%, in about 20 KiB for the range above (HdrHistogram's usual setting, and wrk2's).
pub const LATENCY_DIGITS: u8 = 3;

/// A histogram for latencies in µs from 1 to [`LATENCY_MAX_US`].
pub(crate) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that HdrHistogram accepts (low >= 1, high >= 2 * low,
    // digits <= 5): this cannot fail.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Failures, by kind. None of them is recorded in the latency histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    /// Connections that could not be established (refused, unreachable, out of
    /// descriptors). A failed connection is not retried: against a refused port a retry
    /// loop would only measure how fast the kernel says no.
    pub connect: u64,
    /// Connections reset by the server, or closed with requests still unanswered.
    pub reset: u64,
    /// Responses that broke the protocol, or completed unsuccessfully (HTTP status outside
    /// 2xx, a time reply that is not a time).
    pub bad_response: u64,
    /// Requests unanswered after the plan's timeout (or when the run was cut off).
    pub timeout: u64,
}

impl Errors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.bad_response + self.timeout
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Responses received (successful or not): each one's latency is in [`latency`](Self::latency).
    pub requests: u64,
    /// Of those, the ones received before the deadline: the rate's numerator.
    pub in_window: u64,
    /// The plan's duration, from the first connect to the deadline: the rate's denominator.
    pub window: Duration,
    /// From the first connect to the last connection's end: the window plus the time the
    /// last answers took (up to the timeout, if some never came).
    pub elapsed: Duration,
    /// Every request's latency in µs. In open loop, measured from the time the request was
    /// *scheduled*, not sent (see the module docs on coordinated omission).
    pub latency: Histogram<u64>,
    /// What went wrong.
    pub errors: Errors,
    /// Open loop only: requests that were due but never sent because the server was too far
    /// behind when the run ended. Non-zero means the rate was more than it could take.
    pub unsent: u64,
    /// Connections opened, replacements included.
    pub connections: u64,
    /// What one of [`requests`](Self::requests) is, for the summary line: `requests`
    /// (HTTP, time, UDP echo), `deliveries` (chat: one line arriving at one client),
    /// `transfers` (file).
    pub unit: &'static str,
    /// Payload bytes received in the window (file transfer: the file's bytes, decoded):
    /// the numerator of [`mb_per_second`](Self::mb_per_second). 0 where it means nothing.
    /// A transfer's bytes count when it completes, whole, so with files that take a sizable
    /// part of the window the figure moves in steps of one file: make the window hold many
    /// transfers (or several connections' worth).
    pub bytes_in_window: u64,
}

impl Report {
    /// Requests completed per second of the window. (Dividing all requests by the elapsed
    /// time instead would charge the server for the generator's wait on a few stragglers.)
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.in_window as f64 / secs
        } else {
            0.0
        }
    }

    /// Payload megabytes (10^6 bytes) per second of the window.
    pub fn mb_per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.bytes_in_window as f64 / 1e6 / secs
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0.5 for the median) in µs; 0 if nothing completed.
    pub fn latency_us(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }
}

impl Report {
    /// The report as one JSON object, for scripts: the same figures as the summary line,
    /// latencies in µs (`latency_us.p99_9` is p99.9), errors by kind.
    ///
    /// ```text
    /// {"unit":"requests","requests":..,"in_window":..,"window_s":..,"elapsed_s":..,
    ///  "per_second":..,"bytes_in_window":..,"mb_per_second":..,"connections":..,"unsent":..,
    ///  "latency_us":{"min":..,"p50":..,"p90":..,"p99":..,"p99_9":..,"max":..,"mean":..},
    ///  "errors":{"connect":..,"reset":..,"bad_response":..,"timeout":..,"total":..}}
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.errors;
        serde_json::json!({
            "unit": self.unit,
            "requests": self.requests,
            "in_window": self.in_window,
            "window_s": self.window.as_secs_f64(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "per_second": self.per_second(),
            "bytes_in_window": self.bytes_in_window,
            "mb_per_second": self.mb_per_second(),
            "connections": self.connections,
            "unsent": self.unsent,
            "latency_us": {
                "min": self.latency.min(),
                "p50": self.latency_us(0.5),
                "p90": self.latency_us(0.9),
                "p99": self.latency_us(0.99),
                "p99_9": self.latency_us(0.999),
                "max": self.latency.max(),
                "mean": self.latency.mean(),
            },
            "errors": {
                "connect": e.connect,
                "reset": e.reset,
                "bad_response": e.bad_response,
                "timeout": e.timeout,
                "total": e.total(),
            },
        })
    }
}

impl fmt::Display for Report {
    /// One line: rate, percentiles, max, errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errors;
        write!(
            f,
            "{} {} ({} in the {:.2} s window = {:.0}/s, {:.2} s in all); latency {LATENCY_UNIT} p50 {} p90 {} p99 {} p99.9 {} max {}; \
             errors {} (connect {}, reset {}, bad {}, timeout {})",
            self.requests,
            self.unit,
            self.in_window,
            self.window.as_secs_f64(),
            self.per_second(),
            self.elapsed.as_secs_f64(),
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency.max(),
            e.total(),
            e.connect,
            e.reset,
            e.bad_response,
            e.timeout,
        )?;
        if self.bytes_in_window > 0 {
            write!(f, "; {:.1} MB/s", self.mb_per_second())?;
        }
        if self.unsent > 0 {
            write!(f, "; {} due but unsent", self.unsent)?;
        }
        Ok(())
    }
}
