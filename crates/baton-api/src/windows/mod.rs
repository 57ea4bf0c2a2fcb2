//! Evaluation of an Environment's `windows`: whether Promotions may proceed now,
//! and if not, why and until when.
//!
//! Semantics:
//! - A window opens at every time its cron `schedule` fires (five fields or an
//!   `@daily`-style shortcut; the syntax is in `windows/cron.rs`), read as
//!   wall-clock time in `timeZone`, and stays open for `duration`, also
//!   counted in wall-clock time: a `64h` window from Friday 17:00 Europe/London
//!   closes Monday 09:00 London time, whether or not the clocks changed between.
//! - A wall-clock time that does not exist (spring-forward gap) is moved forward
//!   by the length of the gap, and one that exists twice (fall-back) is the
//!   earlier instant; jiff calls this "compatible". This applies to openings and
//!   closings alike, so a window whose whole wall-clock span lies in or just
//!   after a gap can shrink, even to nothing (`30 1 * * 0` with `1h` on the
//!   spring-forward Sunday in London: 02:30 to 02:30 BST).
//! - Closed while any `Deny` window is open. Otherwise, when any `Allow` window
//!   exists, closed unless one of them is open. Otherwise open.
//! - When closed, [`Gate::Closed`] says when the gate next opens: the first
//!   instant no `Deny` window is open and (with `Allow` windows) one is. It is
//!   `None` when that is not within [`HORIZON`] (366 days) of now (or would take
//!   over 20,000 alternations of windows to reach: contrived sets only).
//! - Time zones come from the IANA database built into the binary (the operator
//!   image has no `/usr/share/zoneinfo`), so every host gives the same answer.

mod cron;

use jiff::SignedDuration;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};
use k8s_openapi::jiff::Timestamp;

pub use cron::{CronError, Field};

use crate::duration::InvalidDuration;
use crate::environment::{Window, WindowKind};
use cron::Cron;

/// How far ahead [`gate`] looks for the moment the gate opens.
pub const HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The longest `duration` a window may have: beyond a year it could only mean
/// "always", which a `Deny` window firing often says better.
pub const MAX_DURATION: SignedDuration = HORIZON;

/// Steps [`gate`] takes towards the next opening before giving up as if it were
/// past the horizon. Each step passes a Deny window's closing or an Allow
/// window's opening; back-to-back openings of one window count as one, so only
/// contrived sets (an Allow window always inside a Deny window, every few
/// minutes) get near this, and they never open anyway.
const MAX_STEPS: usize = 20_000;

/// Margin around an instant within which offset changes are looked at. It must
/// exceed any one clock change (at most a day, Samoa 2011) plus the offset spread.
const SLACK: SignedDuration = SignedDuration::from_hours(72);

const MINUTE: SignedDuration = SignedDuration::from_mins(1);

/// Whether Promotions may proceed, from an Environment's windows at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// No `Deny` window is open, and an `Allow` window is open or there are none.
    Open,
    /// Held.
    Closed {
        /// Index in `windows` of the window to name: the first open `Deny`
        /// window, or the `Allow` window that opens the gate next (the first
        /// `Allow` window when none does within the horizon).
        window: usize,
        /// The `Deny` window's `reason` (or a description of it), or
        /// `outside every Allow window`.
        reason: String,
        /// When the gate next opens; `None` if not within [`HORIZON`].
        opens_at: Option<Timestamp>,
    },
}

/// What is wrong with one window. Shown as ``window 2 (`0 17 * * 8`): day-of-week
/// field `8`: ...``; the index counts from 0, as in `spec.windows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    /// Index in `windows`.
    pub index: usize,
    /// The window's `schedule`, to recognise it by.
    pub schedule: String,
    pub problem: Problem,
}

/// The ways a window can be invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The schedule does not parse, or never fires.
    Schedule(CronError),
    /// `timeZone` is not in the IANA database.
    UnknownTimeZone(String),
    /// `duration` does not parse.
    Duration(InvalidDuration),
    /// `duration` is zero.
    ZeroDuration(String),
    /// `duration` is over [`MAX_DURATION`].
    DurationTooLong(String),
}

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "window {} (`{}`): ", self.index, self.schedule)?;
        match &self.problem {
            Problem::Schedule(e) => write!(f, "schedule: {e}"),
            Problem::UnknownTimeZone(name) => write!(
                f,
                "unknown time zone `{name}`: use an IANA name such as Europe/London or UTC"
            ),
            Problem::Duration(e) => write!(f, "{e}"),
            Problem::ZeroDuration(d) => {
                write!(f, "duration `{d}` is zero: the window would never be open")
            }
            Problem::DurationTooLong(d) => write!(
                f,
                "duration `{d}` is longer than {}h (366 days)",
                MAX_DURATION.as_hours()
            ),
        }
    }
}

impl std::error::Error for WindowError {}

/// Checks every window; the error names the first bad one.
pub fn validate(windows: &[Window]) -> Result<(), WindowError> {
    compile_all(windows).map(|_| ())
}

/// Whether Promotions may proceed at `now`.
pub fn gate(windows: &[Window], now: Timestamp) -> Result<Gate, WindowError> {
    let compiled = compile_all(windows)?;
    let (deny, allow): (Vec<&Compiled>, Vec<&Compiled>) = compiled
        .iter()
        .partition(|w| w.window.kind == WindowKind::Deny);

    if let Some(w) = deny.iter().find(|w| w.is_open_at(now)) {
        return Ok(Gate::Closed {
            window: w.index,
            reason: w.deny_reason(),
            opens_at: opens_at(&deny, &allow, now),
        });
    }
    let Some(first_allow) = allow.first() else {
        return Ok(Gate::Open);
    };
    if allow.iter().any(|w| w.is_open_at(now)) {
        return Ok(Gate::Open);
    }
    let opens_at = opens_at(&deny, &allow, now);
    let opener = opens_at.and_then(|t| allow.iter().find(|w| w.is_open_at(t)));
    Ok(Gate::Closed {
        window: opener.unwrap_or(first_allow).index,
        reason: "outside every Allow window".into(),
        opens_at,
    })
}

/// The first instant at or after `now` when the gate is open, stepping from
/// each `Deny` closing and `Allow` opening to the next.
fn opens_at(deny: &[&Compiled], allow: &[&Compiled], now: Timestamp) -> Option<Timestamp> {
    let until = now.checked_add(HORIZON).ok()?;
    let mut t = now;
    for _ in 0..MAX_STEPS {
        if t > until {
            return None;
        }
        if let Some(close) = deny.iter().filter_map(|w| w.covered_until(t)).max() {
            t = close;
            continue;
        }
        if allow.is_empty() || allow.iter().any(|w| w.is_open_at(t)) {
            return Some(t);
        }
        t = allow.iter().filter_map(|w| w.next_open(t, until)).min()?;
    }
    None
}

/// A window with its schedule, zone and length parsed.
struct Compiled<'a> {
    index: usize,
    window: &'a Window,
    cron: Cron,
    tz: TimeZone,
    length: SignedDuration,
}

fn compile_all(windows: &[Window]) -> Result<Vec<Compiled<'_>>, WindowError> {
    windows
        .iter()
        .enumerate()
        .map(|(index, window)| compile(index, window))
        .collect()
}

fn compile(index: usize, window: &Window) -> Result<Compiled<'_>, WindowError> {
    let fail = |problem| WindowError {
        index,
        schedule: window.schedule.clone(),
        problem,
    };
    let cron = Cron::parse(&window.schedule).map_err(|e| fail(Problem::Schedule(e)))?;
    // The bundled database, not the host's: see the module doc.
    let tz = TimeZoneDatabase::bundled()
        .get(&window.time_zone)
        .map_err(|_| fail(Problem::UnknownTimeZone(window.time_zone.clone())))?;
    let length =
        crate::duration::parse(&window.duration).map_err(|e| fail(Problem::Duration(e)))?;
    let too_long = || fail(Problem::DurationTooLong(window.duration.clone()));
    let length = SignedDuration::try_from(length).map_err(|_| too_long())?;
    if length.is_zero() {
        return Err(fail(Problem::ZeroDuration(window.duration.clone())));
    }
    if length > MAX_DURATION {
        return Err(too_long());
    }
    Ok(Compiled {
        index,
        window,
        cron,
        tz,
        length,
    })
}

impl Compiled<'_> {
    fn deny_reason(&self) -> String {
        match &self.window.reason {
            Some(reason) if !reason.trim().is_empty() => reason.clone(),
            _ => format!(
                "Deny window `{}` ({})",
                self.window.schedule, self.window.time_zone
            ),
        }
    }

    fn instant(&self, civil: DateTime) -> Option<Timestamp> {
        self.tz.to_ambiguous_timestamp(civil).compatible().ok()
    }

    /// The instants `[open, close)` of the opening at wall-clock `start`. Empty
    /// (`open >= close`) when a clock change swallows it.
    fn opening(&self, start: DateTime) -> Option<(Timestamp, Timestamp)> {
        let end = start.checked_add(self.length).ok()?;
        Some((self.instant(start)?, self.instant(end)?))
    }

    /// The wall-clock start, open and close of an opening that covers `t`:
    /// the one that opened last, which (up to clock changes) closes last.
    fn covering(&self, t: Timestamp) -> Option<(DateTime, Timestamp, Timestamp)> {
        let from = t.checked_sub(self.length).ok()?.checked_sub(SLACK).ok()?;
        let (lo, hi) = offset_span(&self.tz, from, t.checked_add(SLACK).ok()?);
        // An opening covering t starts in wall-clock (t + lo - length, t + hi]:
        // at the latest when t reads with the largest offset, at the earliest
        // when its close reads with the smallest.
        let newest = hi.to_datetime(t);
        let oldest = lo.to_datetime(t).checked_sub(self.length).ok()?;
        let mut cursor = newest;
        while let Some(start) = self.cron.prev(cursor, oldest) {
            if let Some((open, close)) = self.opening(start)
                && open <= t
                && t < close
            {
                return Some((start, open, close));
            }
            cursor = start.checked_sub(MINUTE).ok()?;
        }
        None
    }

    fn is_open_at(&self, t: Timestamp) -> bool {
        self.covering(t).is_some()
    }

    /// If an opening covers `t`, an instant up to which openings cover without a
    /// break: at least that opening's close, and past the openings that follow
    /// it closely enough to overlap, so a Deny window every few minutes does not
    /// take a step per opening.
    fn covered_until(&self, t: Timestamp) -> Option<Timestamp> {
        let (start, open, close) = self.covering(t)?;
        // Follow the run only while the clock is not changed: then wall-clock
        // and real time differ by one offset, and a run without a break on the
        // wall clock has none in real time. Near a change, the caller steps.
        let offset = self.tz.to_offset(open);
        if offset.to_timestamp(start).ok() != Some(open) {
            // The start is in a gap: shifted by the change.
            return Some(close);
        }
        let change = self
            .tz
            .following(open)
            .next()
            .map(|transition| offset.to_datetime(transition.timestamp()));
        let Some(horizon) = start.checked_add(HORIZON).ok() else {
            return Some(close);
        };
        let limit = change.map_or(horizon, |change| change.min(horizon));
        let Some(until) = limit
            .checked_sub(self.length)
            .ok()
            .filter(|&until| until >= start)
        else {
            return Some(close);
        };
        let last = self.cron.run_end(start, self.length, until);
        let run_close = last
            .checked_add(self.length)
            .ok()
            .and_then(|end| offset.to_timestamp(end).ok());
        Some(run_close.map_or(close, |run_close| run_close.max(close)))
    }

    /// The earliest (non-empty) opening strictly after `t`, if one is before `until`.
    fn next_open(&self, t: Timestamp, until: Timestamp) -> Option<Timestamp> {
        let (lo, _) = offset_span(
            &self.tz,
            t.checked_sub(SLACK).ok()?,
            t.checked_add(SLACK).ok()?,
        );
        let limit = self.tz.to_datetime(until).checked_add(SLACK).ok()?;
        // An opening after t starts at or after wall-clock t + lo.
        let mut cursor = lo.to_datetime(t);
        // Because of clock changes, a later wall-clock fire can open earlier:
        // keep looking until the best so far cannot be beaten.
        let mut best: Option<(Timestamp, DateTime)> = None;
        while let Some(start) = self.cron.next(cursor, limit) {
            if best.is_some_and(|(_, bound)| start > bound) {
                break;
            }
            if let Some((open, close)) = self.opening(start)
                && open > t
                && open < close
                && best.is_none_or(|(b, _)| open < b)
            {
                let bound = match best {
                    Some((_, bound)) => bound,
                    None => {
                        let (lo, hi) = offset_span(
                            &self.tz,
                            open.checked_sub(SLACK).ok()?,
                            open.checked_add(SLACK).ok()?,
                        );
                        let spread = i64::from(hi.seconds()) - i64::from(lo.seconds());
                        start.checked_add(SignedDuration::from_secs(spread)).ok()?
                    }
                };
                best = Some((open, bound));
            }
            cursor = start.checked_add(MINUTE).ok()?;
        }
        best.map(|(open, _)| open)
    }
}

/// The smallest and largest UTC offsets `tz` uses in `[from, to)`.
fn offset_span(tz: &TimeZone, from: Timestamp, to: Timestamp) -> (Offset, Offset) {
    let first = tz.to_offset(from);
    tz.following(from)
        .take_while(|transition| transition.timestamp() < to)
        .fold((first, first), |(lo, hi), transition| {
            (lo.min(transition.offset()), hi.max(transition.offset()))
        })
}

#[cfg(test)]
mod tests;
