//! The signal parser: walks the lines of a message's content and embeds with a small state
//! machine (which label the next numbers belong to), then decides signal or post, infers the
//! side when it was not written, and flags inconsistencies. One token buffer per call.
//! Unknown words are chat, except a few between a side or label and its first price: traders
//! write "long guys 3120", "tp ahora 3200" in every language.

use super::lex::{Tok, lex_line};
use super::words::{self, Kw, Sec};
use super::{Embed, Flag, Parsed, ParsedSignal, Side};

pub(crate) fn parse<'a>(content: &'a str, embeds: &'a [Embed]) -> Parsed {
    // A signal has prices: text without a single digit is a post, whatever it says.
    let digits = |s: &str| s.bytes().any(|c| c.is_ascii_digit());
    let embed_digits = embeds.iter().any(|e| {
        e.title.as_deref().is_some_and(digits)
            || e.description.as_deref().is_some_and(digits)
            || e.fields.iter().any(|(n, v)| digits(n) || digits(v))
    });
    if !digits(content) && !embed_digits {
        return Parsed::Post;
    }

    let mut p = Parser::default();
    p.block(content);
    // Footers are left out: they hold bot names, disclaimers and timestamps, never the trade.
    for e in embeds {
        if let Some(t) = &e.title {
            p.block(t);
        }
        if let Some(d) = &e.description {
            p.block(d);
        }
        for (name, value) in &e.fields {
            // A field's name labels its value ("Targets" / "1) 105\n2) 110").
            p.block(name);
            p.lines(value);
        }
    }
    p.finish()
}

#[derive(Default)]
struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    /// Numbers of the current line seen before any label, placed when the line ends.
    pending: Vec<f64>,
    /// The label of the previous line, so "Targets:" applies to the lines below it.
    carried: Option<Sec>,
    /// A line that ended with "Pair:" or "Symbol", naming the pair on the next line.
    pair_label_carried: bool,
    pair: Option<(&'a str, &'a str)>,
    /// First bare upper-case ticker, and the first one on a line that states a side: "SOL LONG"
    /// names the pair better than a header such as "BREAKOUT ALERT".
    bare: Option<&'a str>,
    bare_on_side_line: Option<&'a str>,
    side: Option<Side>,
    conflict: bool,
    saw_buy: bool,
    saw_sell: bool,
    entries: Vec<f64>,
    targets: Vec<f64>,
    buys: Vec<f64>,
    sells: Vec<f64>,
    stop: Option<f64>,
    lev_labelled: Option<f64>,
    lev_free: Option<f64>,
    /// A follow-up word ("hit", "reached") on a line that also gives prices.
    followup: bool,
    /// Lines that gave at least one price.
    priced_lines: u32,
}

/// What one line has shown so far.
#[derive(Default)]
struct Line {
    /// The label the next number belongs to; `None` once prose interrupts a labelled line.
    sec: Option<Sec>,
    labelled: bool,
    unknown_before_label: bool,
    side: bool,
    seen_content: bool,
    /// A price was read since the last label (or the line start).
    priced: bool,
    /// A price was read anywhere on the line.
    any_price: bool,
    followup: bool,
    /// Unknown words let through on this line; see [`Line::tolerates`].
    tolerated: u8,
    /// A "?" was read: questions are chat, so no more words are let through.
    questioned: bool,
    lead: Lead,
    /// How many of the line's pending numbers were read in the lead run.
    lead_len: usize,
}

/// The entry written right after the side ("long guys 3120-3080"): the first run of prices
/// after a side word is the entry even when chat follows it, as long as no price came before
/// the side ("support 62000, long above 65k" is commentary).
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Lead {
    #[default]
    None,
    /// A side was written; its prices have not come yet.
    Awaiting,
    Reading,
    /// Prose, a question or a label ended the run; what it read stays the entry.
    Closed,
}

/// Everyday words ("guys", "ahora", "сейчас") allowed between a side or label and its first
/// price. A few are filler; a sentence is chat, whose numbers are not prices.
const MAX_TOLERATED: u8 = 4;

impl<'a> Parser<'a> {
    fn block(&mut self, text: &'a str) {
        self.carried = None;
        self.pair_label_carried = false;
        self.lines(text);
    }

    fn lines(&mut self, text: &'a str) {
        for line in text.split('\n') {
            let mut toks = std::mem::take(&mut self.toks);
            toks.clear();
            lex_line(line, &mut toks);
            if !toks.is_empty() {
                self.line(&toks);
            }
            self.toks = toks;
        }
    }

    fn line(&mut self, toks: &[Tok<'a>]) {
        let mut ln = Line::default();
        let (mut after_label, mut hashed, mut at_marker) = (false, false, false);
        let mut pair_label = std::mem::take(&mut self.pair_label_carried);
        // True only for the token right after a label word, symbols included ("TP 1 - 105").
        let mut label_adjacent = false;
        let mut line_bare = None;
        self.pending.clear();
        let mut i = 0;
        while let Some(&tok) = toks.get(i) {
            i += 1;
            let (was_after_label, was_hashed, was_pair_label, was_at) =
                (after_label, hashed, pair_label, at_marker);
            let was_label_adjacent = std::mem::take(&mut label_adjacent);
            // Symbols are transparent to these ("Entry #1:", "Pair: BTC"); anything else ends them.
            if !matches!(tok, Tok::Sym(_)) {
                after_label = false;
                pair_label = false;
            }
            hashed = false;
            at_marker = false;
            match tok {
                Tok::Word(w) => {
                    if let Some(used) = self.pair_at(toks, i - 1, was_hashed, was_pair_label) {
                        i += used - 1;
                        ln.seen_content = true;
                        continue;
                    }
                    // "S/L" and "T/P", spelled with a slash.
                    if let (Some(Tok::Sym(b'/')), Some(Tok::Word(second))) =
                        (toks.get(i), toks.get(i + 1))
                        && let Some(sec) = slashed_label(w, second)
                    {
                        i += 2;
                        ln.label(sec);
                        after_label = true;
                        label_adjacent = true;
                        ln.seen_content = true;
                        continue;
                    }
                    match words::classify(w) {
                        Kw::Label(sec) => {
                            ln.label(sec);
                            after_label = true;
                            label_adjacent = true;
                            match sec {
                                Sec::Buy => {
                                    self.saw_buy = true;
                                    ln.side = true;
                                }
                                Sec::Sell => {
                                    self.saw_sell = true;
                                    ln.side = true;
                                }
                                _ => {}
                            }
                        }
                        // "Entry Targets:" and "Stop Targets:" are Cornix's names for entries
                        // and stops, not targets.
                        Kw::TargetsWord if was_after_label => after_label = true,
                        Kw::TargetsWord => {
                            ln.label(Sec::Target);
                            after_label = true;
                            label_adjacent = true;
                        }
                        Kw::Take => {
                            let next = match toks.get(i) {
                                Some(Tok::Sym(b'-')) => i + 1,
                                _ => i,
                            };
                            match toks.get(next) {
                                Some(Tok::Word(n))
                                    if n.eq_ignore_ascii_case("profit")
                                        || n.eq_ignore_ascii_case("profits") =>
                                {
                                    i = next + 1;
                                    ln.label(Sec::Target);
                                    after_label = true;
                                    label_adjacent = true;
                                }
                                _ => ln.prose(),
                            }
                        }
                        // "short term" and "long time no see" are about time, not direction.
                        Kw::Side(_) if not_a_side(toks, i) => {}
                        Kw::Side(side) => {
                            self.note_side(side);
                            ln.side = true;
                            if ln.lead == Lead::None && !ln.labelled && !ln.any_price {
                                ln.lead = Lead::Awaiting;
                            }
                        }
                        Kw::PairLabel => pair_label = true,
                        Kw::Filler => {
                            at_marker = ["at", "around", "near"]
                                .iter()
                                .any(|m| w.eq_ignore_ascii_case(m));
                        }
                        Kw::FollowUp => {
                            ln.followup = true;
                            ln.prose();
                        }
                        Kw::Unknown => {
                            if words::bare_ticker(w) {
                                line_bare = line_bare.or(Some(w));
                            } else if w.len() >= 3 {
                                ln.unknown_word();
                            }
                        }
                    }
                    ln.seen_content = true;
                }
                Tok::Num { v, small, after } => {
                    // "1) 105", "TP 2: 110", "3. 120": list indexes, not prices. A "." or ":"
                    // index must be followed by the price it numbers.
                    let value_follows = toks
                        .iter()
                        .skip(i)
                        .take(3)
                        .any(|t| matches!(t, Tok::Num { .. }));
                    let index = small
                        && (after == b')'
                            || (matches!(after, b':' | b'.' | b'=')
                                && value_follows
                                && (was_after_label || !ln.seen_content))
                            || (after == b'-'
                                && value_follows
                                && ((!ln.seen_content && self.carried == Some(Sec::Target))
                                    || (was_label_adjacent && ln.sec == Some(Sec::Target)))));
                    ln.seen_content = true;
                    if index {
                        continue;
                    }
                    ln.priced = true;
                    ln.any_price = true;
                    match ln.sec {
                        Some(sec) => self.push(sec, v),
                        // "Long ETH at 3400": a price right after "at" on a side line.
                        None if !ln.labelled && was_at && ln.side => {
                            ln.lead_price(false);
                            self.push(Sec::Entry, v);
                        }
                        None if !ln.labelled => {
                            ln.lead_price(true);
                            self.pending.push(v);
                        }
                        None => {}
                    }
                }
                Tok::Pct => ln.seen_content = true,
                Tok::Lev(v) => {
                    ln.seen_content = true;
                    if ln.sec == Some(Sec::Leverage) {
                        self.push(Sec::Leverage, v);
                    } else if v.is_finite() && v > 0.0 {
                        self.lev_free = self.lev_free.or(Some(v));
                    }
                }
                Tok::Sym(b'#' | b'$') => hashed = true,
                Tok::Sym(b'@') => at_marker = true,
                Tok::Sym(b'?') => ln.question(),
                Tok::Sym(_) => {}
                Tok::TargetMark => {
                    ln.label(Sec::Target);
                    after_label = true;
                }
                Tok::StopMark => {
                    ln.label(Sec::Stop);
                    after_label = true;
                }
                Tok::Foreign => ln.unknown_word(),
                // "long 64k -> 65k": an arrow after an entry points at the target. Elsewhere it
                // is decoration ("➡️ Entry: 100", "Entry ➡️ 100").
                Tok::Arrow if ln.priced && matches!(ln.sec, None | Some(Sec::Entry)) => {
                    ln.label(Sec::Target);
                }
                Tok::Arrow => {}
            }
        }

        // Unlabelled numbers continue the previous line's label ("Targets:" then "1) 105"), or
        // are the entry of a line that states the side ("BTCUSDT long 43000"). On a chatty line
        // only the prices right after the side are ("ETH looking good, long now 3400").
        let (take, to) = if ln.unknown_before_label {
            (ln.lead_len, Some(Sec::Entry))
        } else {
            (
                self.pending.len(),
                self.carried.or(ln.side.then_some(Sec::Entry)),
            )
        };
        if take > 0
            && let Some(sec) = to
        {
            let pending = std::mem::take(&mut self.pending);
            for &v in pending.iter().take(take) {
                self.push(sec, v);
            }
            self.pending = pending;
        }
        // "TP1 hit at 45000" reports on a trade; "after TP1 hit move SL to BE" on a line of its
        // own is a remark in a signal.
        if ln.any_price {
            self.priced_lines += 1;
            self.followup |= ln.followup;
        }
        self.pair_label_carried = pair_label;
        self.bare = self.bare.or(line_bare);
        if ln.side {
            self.bare_on_side_line = self.bare_on_side_line.or(line_bare);
        }
        if ln.labelled {
            self.carried = ln.sec;
        } else if ln.unknown_before_label {
            self.carried = None;
        }
    }

    /// Recognises a pair starting at `toks[idx]` and returns how many tokens it used.
    fn pair_at(
        &mut self,
        toks: &[Tok<'a>],
        idx: usize,
        hashed: bool,
        labelled: bool,
    ) -> Option<usize> {
        let Some(Tok::Word(w)) = toks.get(idx) else {
            return None;
        };
        let explicit_base = |w: &str| {
            words::valid_base(w) && !words::reserved(words::classify(w)) && !words::common_word(w)
        };
        if let (Some(Tok::Sym(b'/' | b'-' | b'_')), Some(Tok::Word(q))) =
            (toks.get(idx + 1), toks.get(idx + 2))
            && let Some(quote) = words::separated_quote(q)
            && explicit_base(w)
        {
            self.pair = self.pair.or(Some((w, quote)));
            return Some(3);
        }
        if let Some((base, quote)) = words::glued_pair(w) {
            self.pair = self.pair.or(Some((base, quote)));
            return Some(1);
        }
        if (hashed || labelled) && explicit_base(w) && words::classify(w) == Kw::Unknown {
            self.pair = self.pair.or(Some((w, "USDT")));
            return Some(1);
        }
        None
    }

    fn note_side(&mut self, side: Side) {
        match self.side {
            None => self.side = Some(side),
            Some(s) if s != side => self.conflict = true,
            Some(_) => {}
        }
    }

    fn push(&mut self, sec: Sec, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            return;
        }
        match sec {
            Sec::Entry => self.entries.push(v),
            Sec::Target => self.targets.push(v),
            // The first stop is the stop; later numbers on its line are remarks ("4h close").
            Sec::Stop => self.stop = self.stop.or(Some(v)),
            // "Leverage: 5-10x": the highest figure is the one the author allows.
            Sec::Leverage => self.lev_labelled = Some(self.lev_labelled.map_or(v, |l| l.max(v))),
            Sec::Buy => self.buys.push(v),
            Sec::Sell => self.sells.push(v),
        }
    }

    fn finish(self) -> Parsed {
        let bare = self.bare_on_side_line.or(self.bare);
        let Some((base, quote)) = self.pair.or(bare.map(|b| (b, "USDT"))) else {
            return Parsed::Post;
        };
        // "Buy" and "Sell" are entries or targets depending on the side: a long buys in and
        // sells at targets, a short the other way round.
        let written = self
            .side
            .or(self.saw_buy.then_some(Side::Long))
            .or(self.saw_sell.then_some(Side::Short));
        let (mut entries, mut targets) = (self.entries, self.targets);
        let (into_entries, into_targets) = match written.unwrap_or(Side::Long) {
            Side::Long => (self.buys, self.sells),
            Side::Short => (self.sells, self.buys),
        };
        entries.extend(into_entries);
        targets.extend(into_targets);
        let stop = self.stop;

        if entries.is_empty() || (targets.is_empty() && stop.is_none()) {
            return Parsed::Post;
        }
        // "BTC TP1 hit, entry was 43000": a follow-up quoting prices, unless it is a whole
        // signal laid out over several lines with a note inside ("SL: 95, BE after TP1 hit").
        let laid_out = !targets.is_empty() && stop.is_some() && self.priced_lines >= 3;
        if self.followup && !laid_out {
            return Parsed::Post;
        }

        let avg = entries.iter().sum::<f64>() / entries.len() as f64;
        let lo = entries.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = entries.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (side, side_inferred, unclear) = match written {
            Some(side) => (side, false, false),
            None => infer_side(avg, &targets, stop),
        };
        let leverage = self.lev_labelled.or(self.lev_free);

        let mut flags = Vec::new();
        let stop_wrong = stop.is_some_and(|s| match side {
            Side::Long => s >= lo,
            Side::Short => s <= hi,
        });
        if stop_wrong {
            flags.push(Flag::StopWrongSide);
        }
        let out_of_order = targets
            .iter()
            .zip(targets.iter().skip(1))
            .any(|(a, b)| match side {
                Side::Long => b <= a,
                Side::Short => b >= a,
            });
        if out_of_order {
            flags.push(Flag::TargetsOutOfOrder);
        }
        let wrong_side = targets.iter().any(|&t| match side {
            Side::Long => t <= lo,
            Side::Short => t >= hi,
        });
        if wrong_side {
            flags.push(Flag::TargetsWrongSide);
        }
        let absurd = targets.iter().any(|&t| t / avg > 10.0 || t / avg < 0.1)
            || stop.is_some_and(|s| (s - avg).abs() / avg >= 0.5)
            || hi / lo > 2.0;
        if absurd {
            flags.push(Flag::AbsurdRatio);
        }
        if leverage.is_some_and(|l| !(1.0..=125.0).contains(&l)) {
            flags.push(Flag::AbsurdLeverage);
        }
        if self.conflict {
            flags.push(Flag::ConflictingSides);
        }
        if unclear {
            flags.push(Flag::SideUnclear);
        }

        let mut pair = String::with_capacity(base.len() + 1 + quote.len());
        pair.extend(base.chars().map(|c| c.to_ascii_uppercase()));
        pair.push('/');
        pair.extend(quote.chars().map(|c| c.to_ascii_uppercase()));
        Parsed::Signal(ParsedSignal {
            pair,
            side,
            entries,
            targets,
            stop,
            leverage,
            side_inferred,
            flags,
        })
    }
}

impl Line {
    fn label(&mut self, sec: Sec) {
        self.sec = Some(sec);
        self.labelled = true;
        self.priced = false;
        self.tolerated = 0;
        self.close_lead();
    }

    /// Prose ends a labelled part of the line ("SL: 95 unless BTC dumps 5000"); before any
    /// label it marks the line as chat, whose numbers are not prices.
    fn prose(&mut self) {
        if self.labelled {
            self.sec = None;
        } else {
            self.unknown_before_label = true;
            self.close_lead();
        }
    }

    /// A word the vocabulary does not know: filler while a side or label waits for its price
    /// ("long guys 3120", "tp ahora 3200", "sl сейчас 95"), prose otherwise.
    fn unknown_word(&mut self) {
        if self.tolerates() {
            self.tolerated += 1;
        } else {
            self.prose();
        }
    }

    fn tolerates(&self) -> bool {
        let label_waits = self.sec.is_some() && !self.priced;
        !self.questioned
            && self.tolerated < MAX_TOLERATED
            && (label_waits || self.lead == Lead::Awaiting)
    }

    /// "Should I long ETH now? I bought 3000": a question is chat, and so are its prices.
    fn question(&mut self) {
        self.questioned = true;
        if matches!(self.lead, Lead::Awaiting | Lead::Reading) {
            self.lead = Lead::Closed;
            self.lead_len = 0;
        }
    }

    /// An unlabelled price; `pending` says whether it waits in the line's pending numbers.
    fn lead_price(&mut self, pending: bool) {
        if matches!(self.lead, Lead::Awaiting | Lead::Reading) {
            self.lead = Lead::Reading;
            self.lead_len += usize::from(pending);
        }
    }

    fn close_lead(&mut self) {
        if self.lead != Lead::None {
            self.lead = Lead::Closed;
        }
    }
}

fn slashed_label(first: &str, second: &str) -> Option<Sec> {
    let is = |w: &str, c: &str| w.eq_ignore_ascii_case(c);
    if is(first, "s") && is(second, "l") {
        Some(Sec::Stop)
    } else if is(first, "t") && is(second, "p") {
        Some(Sec::Target)
    } else {
        None
    }
}

/// Whether the side word before `toks[i]` is about time or a turn of phrase ("long-term",
/// "short time", "long time no see", "long story short"), not a direction.
fn not_a_side(toks: &[Tok<'_>], i: usize) -> bool {
    const PHRASES: [&str; 6] = ["term", "time", "way", "story", "while", "ago"];
    let next = match toks.get(i) {
        Some(Tok::Sym(b'-')) => i + 1,
        _ => i,
    };
    let is = |t: Option<&Tok<'_>>, words: &[&str]| match t {
        Some(Tok::Word(w)) => words.iter().any(|p| w.eq_ignore_ascii_case(p)),
        _ => false,
    };
    is(toks.get(next), &PHRASES) || is(i.checked_sub(2).and_then(|p| toks.get(p)), &["story"])
}

/// Targets above the entries mean a long; failing targets, a stop below them does.
fn infer_side(avg: f64, targets: &[f64], stop: Option<f64>) -> (Side, bool, bool) {
    let by_target = targets.first().and_then(|&t| {
        (t > avg)
            .then_some(Side::Long)
            .or((t < avg).then_some(Side::Short))
    });
    let by_stop = stop.and_then(|s| {
        (s < avg)
            .then_some(Side::Long)
            .or((s > avg).then_some(Side::Short))
    });
    match by_target.or(by_stop) {
        Some(side) => (side, true, false),
        None => (Side::Long, true, true),
    }
}
