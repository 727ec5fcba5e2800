//! Requests in flight on one session: matching answers to requests, status, length and digest
//! checks, latency from the scheduled send time into the run's shared [`Stats`].

use std::cell::RefCell;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::parse::Sink;

/// Latencies are recorded in microseconds, up to 100 s, 3 significant figures.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

/// What the run measures, shared by every session of the executor (one thread: `RefCell`).
#[derive(Debug)]
pub struct Stats {
    /// Answers complete in the measured window are recorded; before it, only counted.
    pub window_start: Instant,
    pub window_end: Instant,
    pub hist: Histogram<u64>,
    /// Good answers in the window, and their body bytes.
    pub ok: u64,
    pub bytes: u64,
    /// Answers (whole run) that were errors: a status other than 200, a wrong length or digest,
    /// a session that failed with requests in flight (each counts), a failed connect.
    pub errors: u64,
    /// Good answers over the whole run (progress lines).
    pub ok_total: u64,
    /// Answers whose digest was checked.
    pub verified: u64,
    /// The first few error descriptions, for stderr.
    pub first_errors: Vec<String>,
}

impl Stats {
    pub fn new(window_start: Instant, window_end: Instant) -> Stats {
        Stats {
            window_start,
            window_end,
            hist: latency_histogram(),
            ok: 0,
            bytes: 0,
            errors: 0,
            ok_total: 0,
            verified: 0,
            first_errors: Vec::new(),
        }
    }

    pub fn error(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.errors += n;
        if self.first_errors.len() < 5 {
            let why = why();
            eprintln!("overlay-smoke: error: {why}");
            self.first_errors.push(why);
        }
    }

    fn complete(&mut self, scheduled: Instant, now: Instant, bytes: u64) {
        self.ok_total += 1;
        if now >= self.window_start && now < self.window_end {
            self.ok += 1;
            self.bytes += bytes;
            let us = now.saturating_duration_since(scheduled).as_micros() as u64;
            self.hist.saturating_record(us.max(1));
        }
    }
}

/// What a good answer looks like.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Body length of a good answer.
    pub len: u64,
    /// BLAKE3 of a good answer's body.
    pub digest: [u8; 32],
    /// Check the digest of one answer in this many (1: all; 0: none). Lengths are always checked.
    pub verify_every: u64,
}

#[derive(Debug)]
struct Entry {
    corr_id: u64,
    scheduled: Instant,
    /// HELLO and other control requests: checked for status only, not recorded.
    control: bool,
    /// A RESP|START frame was seen and no END yet.
    open: bool,
    /// The frame being parsed ends the stream.
    ending: bool,
    bytes: u64,
    code: u16,
    hasher: Option<blake3::Hasher>,
}

/// The requests in flight on one session and the answer being parsed.
#[derive(Debug)]
pub struct Tracker<'a> {
    stats: &'a RefCell<Stats>,
    expect: Expect,
    entries: Vec<Entry>,
    /// Index in `entries` of the answer whose frame is being parsed.
    current: Option<usize>,
    sent: u64,
    /// When the bytes being parsed arrived (read once per socket read).
    pub now: Instant,
    /// Control answers completed (HELLO).
    pub control_done: u64,
}

impl<'a> Tracker<'a> {
    pub fn new(stats: &'a RefCell<Stats>, expect: Expect) -> Tracker<'a> {
        Tracker {
            stats,
            expect,
            entries: Vec::with_capacity(64),
            current: None,
            sent: 0,
            now: Instant::now(),
            control_done: 0,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// Records a request sent (or about to be) with `corr_id`, due at `scheduled`.
    pub fn push(&mut self, corr_id: u64, scheduled: Instant, control: bool) {
        let verify = !control
            && self.expect.verify_every > 0
            && self.sent.is_multiple_of(self.expect.verify_every);
        if !control {
            self.sent += 1;
        }
        self.entries.push(Entry {
            corr_id,
            scheduled,
            control,
            open: false,
            ending: false,
            bytes: 0,
            code: 0,
            hasher: verify.then(blake3::Hasher::new),
        });
    }

    /// The session failed: every request in flight is an error. Returns how many there were.
    pub fn fail_all(&mut self) -> u64 {
        let n = self.entries.iter().filter(|e| !e.control).count() as u64;
        self.entries.clear();
        self.current = None;
        n
    }

    fn finish(&mut self, i: usize) {
        let e = self.entries.remove(i);
        if e.control {
            if e.code != 200 {
                self.stats
                    .borrow_mut()
                    .error(1, || format!("control request answered {}", e.code));
            }
            self.control_done += 1;
            return;
        }
        let mut stats = self.stats.borrow_mut();
        if e.code != 200 {
            return stats.error(1, || format!("answer status {}", e.code));
        }
        if e.bytes != self.expect.len {
            let want = self.expect.len;
            return stats.error(1, || format!("answer of {} bytes, want {want}", e.bytes));
        }
        if let Some(h) = e.hasher {
            stats.verified += 1;
            if *h.finalize().as_bytes() != self.expect.digest {
                return stats.error(1, || "answer does not hash to the object's address".into());
            }
        }
        stats.complete(e.scheduled, self.now, e.bytes);
    }
}

impl Sink for Tracker<'_> {
    fn head(
        &mut self,
        corr_id: Option<u64>,
        code: u16,
        start: bool,
        end: bool,
    ) -> Result<(), String> {
        let i = match corr_id {
            // HTTP answers in request order.
            None if !self.entries.is_empty() => 0,
            None => return Err("an HTTP response nobody asked for".to_owned()),
            Some(c) => self
                .entries
                .iter()
                .position(|e| e.corr_id == c)
                .ok_or_else(|| format!("an answer for corr_id {c}, which is not in flight"))?,
        };
        let e = &mut self.entries[i];
        if start && e.open {
            return Err(format!("START twice for corr_id {}", e.corr_id));
        }
        e.open |= start;
        if end {
            if !e.open {
                return Err(format!("END without START for corr_id {}", e.corr_id));
            }
            e.open = false;
            e.ending = true;
        }
        if e.code == 0 || code >= 400 {
            e.code = code;
        }
        self.current = Some(i);
        Ok(())
    }

    fn body(&mut self, data: &[u8]) {
        if let Some(i) = self.current {
            let e = &mut self.entries[i];
            e.bytes += data.len() as u64;
            if let Some(h) = &mut e.hasher {
                h.update(data);
            }
        }
    }

    fn end(&mut self) -> Result<(), String> {
        let Some(i) = self.current.take() else {
            return Ok(());
        };
        let e = &mut self.entries[i];
        if std::mem::take(&mut e.ending) || !e.open {
            self.finish(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{OapParser, FLAG_END, FLAG_RESP, FLAG_START};
    use super::*;
    use std::time::Duration;

    fn frame(flags: u16, code: u16, corr: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&((38 + payload.len()) as u32).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&flags.to_be_bytes());
        f.extend_from_slice(&code.to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&[0; 18]);
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn streams_interleave_and_checks_count_errors() {
        let t0 = Instant::now();
        let stats = RefCell::new(Stats::new(t0, t0 + Duration::from_secs(60)));
        let body = vec![7u8; 100];
        let expect = Expect {
            len: 100,
            digest: *blake3::hash(&body).as_bytes(),
            verify_every: 1,
        };
        let mut tr = Tracker::new(&stats, expect);
        for c in 1..=4 {
            tr.push(c, t0, false);
        }
        let mut wire = frame(FLAG_RESP | FLAG_START, 200, 2, &body[..40]);
        wire.extend(frame(FLAG_RESP, 200, 1, &body)); // whole, out of order
        wire.extend(frame(FLAG_RESP | FLAG_END, 200, 2, &body[40..]));
        wire.extend(frame(FLAG_RESP, 404, 3, b"{}"));
        wire.extend(frame(FLAG_RESP, 200, 4, &[8u8; 100])); // wrong digest
        let mut p = OapParser::default();
        p.feed(&wire, &mut tr).unwrap();
        assert_eq!(tr.in_flight(), 0);
        let s = stats.borrow();
        assert_eq!((s.ok, s.errors, s.verified, s.bytes), (2, 2, 3, 200));
        assert_eq!(s.hist.len(), 2);
    }
}
