//! Five-field cron schedules, matched against civil (wall-clock) minutes.
//!
//! Fields: minute (0-59), hour (0-23), day-of-month (1-31), month (1-12 or
//! `JAN`-`DEC`), day-of-week (0-7 or `SUN`-`SAT`; 0 and 7 are Sunday). Each field
//! is a comma-separated list of `*`, `?` (same as `*`), `n`, `a-b`, `*/s`, `a-b/s`
//! or `a/s` (`a` to the field's maximum, every `s`). Names are case-insensitive.
//!
//! Days follow Vixie cron / Kubernetes CronJob: when day-of-month and
//! day-of-week are both restricted (neither is `*` or `?`), a day matches if
//! either does; otherwise both must.

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time};

const MINUTE: SignedDuration = SignedDuration::from_mins(1);

/// A cron field, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// Inclusive bounds of the values a user may write.
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            // 7 is accepted as Sunday and folded onto 0 after expansion.
            Field::DayOfWeek => (0, 7),
        }
    }

    /// Bounds of `*`: for day-of-week without the duplicate Sunday, so `*/2` is
    /// Sun, Tue, Thu, Sat.
    fn star_bounds(self) -> (u32, u32) {
        match self {
            Field::DayOfWeek => (0, 6),
            other => other.bounds(),
        }
    }

    /// Names accepted for values, the first being the field's minimum.
    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
            Field::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }

    fn range_text(self) -> String {
        let (lo, hi) = self.bounds();
        match self.names() {
            [] => format!("{lo}-{hi}"),
            names => format!(
                "{lo}-{hi} or {}-{}",
                names.first().copied().unwrap_or_default(),
                names.last().copied().unwrap_or_default()
            ),
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    /// Not five fields.
    FieldCount(usize),
    /// `@something` that is not a known shortcut.
    UnknownShortcut(String),
    /// One field's text is wrong.
    Field {
        field: Field,
        value: String,
        problem: String,
    },
    /// Parses, but names no day that exists (`0 0 31 2 *`).
    NeverFires,
}

impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CronError::FieldCount(n) => write!(
                f,
                "expected 5 fields (minute hour day-of-month month day-of-week) or one of \
                 @yearly, @annually, @monthly, @weekly, @daily, @hourly; found {n} field{}",
                if *n == 1 { "" } else { "s" }
            ),
            CronError::UnknownShortcut(s) => write!(
                f,
                "unknown shortcut `{s}`: use @yearly, @annually, @monthly, @weekly, @daily or @hourly"
            ),
            CronError::Field {
                field,
                value,
                problem,
            } => write!(f, "{field} field `{value}`: {problem}"),
            CronError::NeverFires => f.write_str(
                "never fires: no month in the schedule has any of its days of the month",
            ),
        }
    }
}

impl std::error::Error for CronError {}

/// A parsed schedule: one bit per allowed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    /// Bit d for day d (1-31).
    days: u32,
    /// Bit m for month m (1-12).
    months: u32,
    /// Bit 0 for Sunday through bit 6 for Saturday.
    weekdays: u32,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(CronError::UnknownShortcut(trimmed.to_owned())),
            _ => trimmed,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts[..] else {
            return Err(CronError::FieldCount(parts.len()));
        };
        let unrestricted = |s: &str| s == "*" || s == "?";
        let cron = Cron {
            minutes: parse_field(Field::Minute, minute)?,
            hours: parse_field(Field::Hour, hour)? as u32,
            days: parse_field(Field::DayOfMonth, dom)? as u32,
            months: parse_field(Field::Month, month)? as u32,
            weekdays: {
                let bits = parse_field(Field::DayOfWeek, dow)?;
                // Fold 7 onto 0: both are Sunday.
                ((bits | (bits >> 7)) & 0x7f) as u32
            },
            days_restricted: !unrestricted(dom),
            weekdays_restricted: !unrestricted(dow),
        };
        if !cron.can_fire() {
            return Err(CronError::NeverFires);
        }
        Ok(cron)
    }

    /// Whether some day of some month matches; only day-of-month alone can rule
    /// out every day (31 in February-only schedules and the like).
    fn can_fire(&self) -> bool {
        if self.weekdays_restricted {
            // Either it is OR-ed with day-of-month, or day-of-month is `*`:
            // every week has the weekday.
            return true;
        }
        // Longest length of each month, February in a leap year.
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32).any(|m| {
            self.months & (1 << m) != 0
                && LONGEST
                    .get(m as usize - 1)
                    .is_some_and(|&n| u64::from(self.days) & ((1u64 << (n + 1)) - 2) != 0)
        })
    }

    fn month_matches(&self, date: Date) -> bool {
        self.months & (1 << date.month()) != 0
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.days_restricted && self.weekdays_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// Whether the schedule fires on this day.
    #[cfg(test)]
    pub fn matches_day(&self, date: Date) -> bool {
        self.month_matches(date) && self.day_matches(date)
    }

    /// Whether the schedule fires at this minute (seconds ignored).
    #[cfg(test)]
    pub fn matches(&self, at: DateTime) -> bool {
        self.matches_day(at.date())
            && self.hours & (1 << at.hour()) != 0
            && self.minutes & (1 << at.minute()) != 0
    }

    /// The first fire time at or after `from`, if there is one no later than `until`.
    pub fn next(&self, from: DateTime, until: DateTime) -> Option<DateTime> {
        let from = ceil_minute(from)?;
        let mut date = from.date();
        // Lower bound of the time of day; only the first day has one.
        let (mut hour, mut minute) = (from.hour() as u32, from.minute() as u32);
        loop {
            if date > until.date() {
                return None;
            }
            if !self.month_matches(date) {
                date = self.next_month_start(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
            if self.day_matches(date)
                && let Some((h, m)) = self.first_time_from(hour, minute)
            {
                let at = at(date, h, m)?;
                return (at <= until).then_some(at);
            }
            date = date.tomorrow().ok()?;
            (hour, minute) = (0, 0);
        }
    }

    /// The last fire time at or before `from`, if there is one no earlier than `since`.
    pub fn prev(&self, from: DateTime, since: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let (mut hour, mut minute) = (from.hour() as u32, from.minute() as u32);
        loop {
            if date < since.date() {
                return None;
            }
            if !self.month_matches(date) {
                date = self.prev_month_end(date)?;
                (hour, minute) = (23, 59);
                continue;
            }
            if self.day_matches(date)
                && let Some((h, m)) = self.last_time_until(hour, minute)
            {
                let at = at(date, h, m)?;
                return (at >= since).then_some(at);
            }
            date = date.yesterday().ok()?;
            (hour, minute) = (23, 59);
        }
    }

    /// The last fire time, no later than `until`, of the run that starts at the
    /// fire time `start` and goes on while each fire comes at most `reach` after
    /// the one before. Windows `reach` long cover such a run without a break.
    pub fn run_end(&self, start: DateTime, reach: SignedDuration, until: DateTime) -> DateTime {
        let fits = |minutes: u32| SignedDuration::from_mins(i64::from(minutes)) <= reach;
        let (first_hour, last_hour) = (low_bit(self.hours as u64), high_bit(self.hours as u64));
        let (first_minute, last_minute) = (low_bit(self.minutes), high_bit(self.minutes));
        // From one day's last fire to the next day's first.
        let overnight = (24 + first_hour - last_hour) * 60 + first_minute - last_minute;
        let mut last = start;
        loop {
            // When every gap within a day fits, jump to the day's last fire, and
            // past whole matching days when the overnight gap fits too, instead
            // of going fire by fire.
            if fits(self.longest_gap_in_day()) {
                let mut date = last.date();
                while fits(overnight)
                    && let Ok(next) = date.tomorrow()
                    && next <= until.date()
                    && self.month_matches(next)
                    && self.day_matches(next)
                {
                    date = next;
                }
                match at(date, last_hour, last_minute) {
                    Some(day_end) if day_end <= until => last = last.max(day_end),
                    _ => return self.prev(until, last).unwrap_or(last),
                }
            }
            let Some(next) = last
                .checked_add(MINUTE)
                .ok()
                .and_then(|from| self.next(from, until))
            else {
                return last;
            };
            if last.duration_until(next) > reach {
                return last;
            }
            last = next;
        }
    }

    /// The longest time, in minutes, between two fire times of one day.
    fn longest_gap_in_day(&self) -> u32 {
        let (first_minute, last_minute) = (low_bit(self.minutes), high_bit(self.minutes));
        let within_hour = longest_gap(self.minutes);
        // An hour's last fire to the next fire hour's first.
        let across_hours = longest_gap(self.hours as u64)
            .checked_mul(60)
            .and_then(|g| (g + first_minute).checked_sub(last_minute))
            .unwrap_or(0);
        within_hour.max(across_hours)
    }

    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let h = next_bit(self.hours as u64, hour)?;
        if h == hour
            && let Some(m) = next_bit(self.minutes, minute)
        {
            return Some((h, m));
        }
        let h = if h == hour {
            next_bit(self.hours as u64, hour + 1)?
        } else {
            h
        };
        Some((h, next_bit(self.minutes, 0)?))
    }

    fn last_time_until(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let h = prev_bit(self.hours as u64, hour)?;
        if h == hour
            && let Some(m) = prev_bit(self.minutes, minute)
        {
            return Some((h, m));
        }
        let h = if h == hour {
            prev_bit(self.hours as u64, hour.checked_sub(1)?)?
        } else {
            h
        };
        Some((h, prev_bit(self.minutes, 59)?))
    }

    /// The first day of the next month in the schedule after `date`'s month.
    fn next_month_start(&self, date: Date) -> Option<Date> {
        let (year, month) = match next_bit(self.months as u64, date.month() as u32 + 1) {
            Some(m) => (date.year(), m),
            None => (
                date.year().checked_add(1)?,
                next_bit(self.months as u64, 1)?,
            ),
        };
        Date::new(year, month as i8, 1).ok()
    }

    /// The last day of the previous month in the schedule before `date`'s month.
    fn prev_month_end(&self, date: Date) -> Option<Date> {
        // Bit 0 is never set, so month 1 finds nothing and goes to last year.
        let (year, month) = match prev_bit(self.months as u64, date.month() as u32 - 1) {
            Some(m) => (date.year(), m),
            None => (
                date.year().checked_sub(1)?,
                prev_bit(self.months as u64, 12)?,
            ),
        };
        Some(Date::new(year, month as i8, 1).ok()?.last_of_month())
    }
}

fn at(date: Date, hour: u32, minute: u32) -> Option<DateTime> {
    let time = Time::new(hour as i8, minute as i8, 0, 0).ok()?;
    Some(DateTime::from_parts(date, time))
}

/// `at` rounded up to a whole minute: fire times are whole minutes.
fn ceil_minute(at: DateTime) -> Option<DateTime> {
    let floor = self::at(at.date(), at.hour() as u32, at.minute() as u32)?;
    if floor == at {
        Some(at)
    } else {
        floor.checked_add(MINUTE).ok()
    }
}

/// The largest difference between consecutive set bits; 0 with fewer than two.
fn longest_gap(bits: u64) -> u32 {
    let mut longest = 0;
    let mut previous: Option<u32> = None;
    let mut rest = bits;
    while rest != 0 {
        let bit = rest.trailing_zeros();
        if let Some(p) = previous {
            longest = longest.max(bit - p);
        }
        previous = Some(bit);
        rest &= rest - 1;
    }
    longest
}

/// Lowest set bit of a non-empty set (0 if empty).
fn low_bit(bits: u64) -> u32 {
    next_bit(bits, 0).unwrap_or(0)
}

/// Highest set bit of a non-empty set (0 if empty).
fn high_bit(bits: u64) -> u32 {
    prev_bit(bits, 63).unwrap_or(0)
}

/// The lowest set bit at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    let rest = bits.checked_shr(from)?;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// The highest set bit at or below `from`.
fn prev_bit(bits: u64, from: u32) -> Option<u32> {
    let rest = bits.checked_shl(63u32.checked_sub(from)?)?;
    (rest != 0).then(|| from - rest.leading_zeros())
}

/// One field as a bit set over its values (day-of-week still with 7 for Sunday).
fn parse_field(field: Field, text: &str) -> Result<u64, CronError> {
    let fail = |problem: String| CronError::Field {
        field,
        value: text.to_owned(),
        problem,
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(fail("empty list item".into()));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = parse_number(step)
                    .filter(|&s| s > 0)
                    .ok_or_else(|| fail(format!("step `{step}` is not a positive number")))?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            field.star_bounds()
        } else {
            let value = |v: &str| {
                parse_value(field, v).ok_or_else(|| {
                    fail(format!(
                        "`{v}` is not a value of this field (use {})",
                        field.range_text()
                    ))
                })
            };
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(fail(format!("range `{range}` runs backwards")));
                    }
                    (a, b)
                }
                // `a/s` runs from `a` to the maximum `*` has.
                None if step.is_some() => (value(range)?, field.star_bounds().1),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            }
        };
        for v in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
            bits |= 1 << v;
        }
    }
    if bits == 0 {
        return Err(fail("matches no value".into()));
    }
    Ok(bits)
}

/// A number or (month and day-of-week) a name, within the field's bounds.
fn parse_value(field: Field, text: &str) -> Option<u32> {
    let (min, max) = field.bounds();
    if let Some(n) = parse_number(text) {
        return (min..=max).contains(&n).then_some(n);
    }
    let index = field
        .names()
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))?;
    Some(min + index as u32)
}

/// Decimal digits only: `str::parse` would also take a leading `+`.
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
