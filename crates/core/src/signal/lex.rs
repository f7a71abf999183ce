//! The line tokenizer: one line of message text into words, numbers, leverages and symbols.
//! Markdown, emoji, Discord markup (mentions, custom emoji, timestamps) and URLs are dropped
//! here, so the parser only sees what a reader of the signal would read.

use super::numbers;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok<'a> {
    /// A run of ASCII letters and digits that is not a number: "BTCUSDT", "TP1", "1000PEPE", "4h".
    Word(&'a str),
    /// A price. `small` marks a whole number 1..=20 that may be a list index ("1)", "2.", "TP 3:");
    /// `after` is the next non-space byte (0 for none or non-ASCII; `)` after a keycap emoji).
    Num {
        v: f64,
        small: bool,
        after: u8,
    },
    /// A number followed by `%`: never a price.
    Pct,
    /// "10x", "x10", "20.0X".
    Lev(f64),
    Sym(u8),
    /// 🎯: what follows is a target.
    TargetMark,
    /// ⛔ 🛑: what follows is the stop.
    StopMark,
    /// "->", "=>", "→": from the price before it to the one after ("64k -> 65k").
    Arrow,
    /// A run of non-ASCII letters: prose in another script.
    Foreign,
}

/// Appends the tokens of `line` to `out`.
pub(crate) fn lex_line<'a>(line: &'a str, out: &mut Vec<Tok<'a>>) {
    let b = line.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'>' if matches!(out.last(), Some(Tok::Sym(b'-' | b'=')))
                && i > 0
                && matches!(b.get(i - 1), Some(b'-' | b'=')) =>
            {
                out.pop();
                out.push(Tok::Arrow);
                i += 1;
            }
            // Whitespace and markdown decorations carry no meaning for a signal.
            b' ' | b'\t' | b'\r' | b'*' | b'`' | b'~' | b'|' | b'>' => i += 1,
            b'<' => match discord_markup_end(b, i) {
                Some(end) => i = end,
                None => {
                    out.push(Tok::Sym(c));
                    i += 1;
                }
            },
            // A written mention (@everyone, @here, @Role) is not part of the signal.
            b'@' if b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => {
                i = skip_while(b, i + 1, |c| c.is_ascii_alphanumeric() || c == b'_');
            }
            b'0'..=b'9' => i = lex_number(line, i, out),
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i = lex_number(line, i, out),
            b'A'..=b'Z' | b'a'..=b'z' => {
                if is_url_start(b, i) {
                    i = skip_while(b, i, |c| !c.is_ascii_whitespace());
                    continue;
                }
                let start = i;
                i = skip_while(b, i, |c| c.is_ascii_alphanumeric());
                let word = line.get(start..i).unwrap_or_default();
                out.push(match x_leverage(word) {
                    Some(v) => Tok::Lev(v),
                    None => Tok::Word(word),
                });
            }
            c if c.is_ascii() => {
                out.push(Tok::Sym(c));
                i += 1;
            }
            _ => {
                let Some(ch) = line.get(i..).and_then(|s| s.chars().next()) else {
                    return;
                };
                i += ch.len_utf8();
                match ch {
                    '🎯' => out.push(Tok::TargetMark),
                    '⛔' | '🛑' => out.push(Tok::StopMark),
                    '→' | '➡' | '⇒' | '⟶' => out.push(Tok::Arrow),
                    ch if ch.is_alphabetic() => {
                        // Consume the whole foreign word so it yields one token.
                        while let Some(next) = line.get(i..).and_then(|s| s.chars().next()) {
                            if next.is_ascii() || !next.is_alphanumeric() {
                                break;
                            }
                            i += next.len_utf8();
                        }
                        out.push(Tok::Foreign);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn skip_while(b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while b.get(i).is_some_and(|&c| keep(c)) {
        i += 1;
    }
    i
}

/// End of `<@123>`, `<@&123>`, `<#123>`, `<:name:123>`, `<a:name:123>`, `<t:1700000000:R>`.
/// The search is bounded so a line full of `<` stays linear.
fn discord_markup_end(b: &[u8], i: usize) -> Option<usize> {
    let next = *b.get(i + 1)?;
    let starts = matches!(next, b'@' | b'#' | b':')
        || (matches!(next, b'a' | b't') && b.get(i + 2) == Some(&b':'));
    if !starts {
        return None;
    }
    let window = b.get(i..)?.iter().take(120);
    window
        .enumerate()
        .find(|&(_, &c)| c == b'>')
        .map(|(off, _)| i + off + 1)
}

fn is_url_start(b: &[u8], i: usize) -> bool {
    let rest = b.get(i..).unwrap_or_default();
    let starts = |p: &[u8]| {
        rest.len() >= p.len()
            && rest
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    starts(b"http://") || starts(b"https://") || starts(b"www.")
}

/// "x10" / "X20": leverage written before the number.
fn x_leverage(word: &str) -> Option<f64> {
    let rest = word.strip_prefix(['x', 'X'])?;
    if rest.is_empty() || !rest.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.parse::<f64>().ok().filter(|v| *v > 0.0)
}

/// Lexes a number starting at `start` and returns where lexing continues.
fn lex_number<'a>(line: &'a str, start: usize, out: &mut Vec<Tok<'a>>) -> usize {
    let b = line.as_bytes();
    let run_end = skip_while(b, start, |c| c.is_ascii_digit() || c == b'.' || c == b',');
    let run = b.get(start..run_end).unwrap_or_default();
    let pure_digits = run.iter().all(u8::is_ascii_digit);

    if b.get(run_end).is_some_and(u8::is_ascii_alphabetic) {
        let end = skip_while(b, run_end, |c| c.is_ascii_alphanumeric());
        let suffix = b.get(run_end..end).unwrap_or_default();
        let mut value = None;
        numbers::interpret(run, &mut |v| value = value.or(Some(v)));
        if suffix.eq_ignore_ascii_case(b"x") {
            if let Some(v) = value {
                out.push(Tok::Lev(v));
            }
            return end;
        }
        if suffix.eq_ignore_ascii_case(b"k") {
            if let Some(v) = value {
                out.push(Tok::Num {
                    v: v * 1000.0,
                    small: false,
                    after: peek(b, end),
                });
            }
            return end;
        }
        if pure_digits {
            // "1000PEPEUSDT", "4h", "2nd": one word.
            out.push(Tok::Word(line.get(start..end).unwrap_or_default()));
            return end;
        }
        // "1.BTC": a list index glued to a word; the letters are lexed on their own.
    }

    // Sentence punctuation after a number ("at 100.", "100, 110") is not part of it.
    let mut end = run_end;
    while end > start && matches!(b.get(end - 1), Some(b'.' | b',')) {
        end -= 1;
    }
    let run = b.get(start..end).unwrap_or_default();
    let pure_digits = run.iter().all(u8::is_ascii_digit);

    if pure_digits
        && (1..=3).contains(&run.len())
        && let Some((joined, next)) = space_grouped(b, run, end)
    {
        emit_numbers(b, &joined, next, false, out);
        return next;
    }

    let small = pure_digits
        && run.len() <= 2
        && std::str::from_utf8(run)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .is_some_and(|n| (1..=20).contains(&n));
    emit_numbers(b, run, end, small, out);
    end
}

/// Thousands grouped by spaces: "1 234.5" (a plain space needs a decimal part or a short first
/// group, since "105 110 115" is a list), "43 500", or no-break spaces "1 234" (always
/// grouping). Returns the digits joined and where the number ends.
fn space_grouped(b: &[u8], lead: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut joined = lead.to_vec();
    let mut plain_space = false;
    let mut groups = 0;
    loop {
        let sep = match (b.get(i), b.get(i + 1), b.get(i + 2)) {
            (Some(b' '), _, _) => 1,
            (Some(0xC2), Some(0xA0), _) => 2,
            (Some(0xE2), Some(0x80), Some(0xAF)) => 3,
            _ => break,
        };
        let g = i + sep;
        let Some(group) = b.get(g..g + 3) else {
            break;
        };
        let ends = !b.get(g + 3).is_some_and(u8::is_ascii_digit);
        if !(group.iter().all(u8::is_ascii_digit) && ends) {
            break;
        }
        plain_space |= sep == 1;
        joined.extend_from_slice(group);
        groups += 1;
        i = g + 3;
    }
    if groups == 0 {
        return None;
    }
    let mut has_fraction = false;
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        joined.push(b'.');
        let frac_end = skip_while(b, i + 1, |c| c.is_ascii_digit());
        joined.extend_from_slice(b.get(i + 1..frac_end)?);
        i = frac_end;
        has_fraction = true;
    }
    if plain_space && !has_fraction && lead.len() > 2 {
        return None;
    }
    Some((joined, i))
}

fn emit_numbers<'a>(b: &[u8], run: &[u8], end: usize, small: bool, out: &mut Vec<Tok<'a>>) {
    let mut after = peek(b, end);
    if after == b'%' {
        out.push(Tok::Pct);
        return;
    }
    // A keycap emoji ("1️⃣") marks a list index just like "1)".
    if matches!(
        b.get(end..end + 3),
        Some([0xEF, 0xB8, 0x8F] | [0xE2, 0x83, 0xA3])
    ) {
        after = b')';
    }
    numbers::interpret(run, &mut |v| out.push(Tok::Num { v, small, after }));
}

/// The next non-space byte at or after `i`, 0 when there is none or it is not ASCII.
fn peek(b: &[u8], i: usize) -> u8 {
    let i = skip_while(b, i, |c| c == b' ' || c == b'\t');
    b.get(i).copied().filter(u8::is_ascii).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str) -> Vec<Tok<'_>> {
        let mut out = Vec::new();
        lex_line(s, &mut out);
        out
    }

    #[test]
    fn tokens() {
        assert_eq!(
            lex("**TP1:** 1,234.5 (5%) x10 20X 43.5k"),
            vec![
                Tok::Word("TP1"),
                Tok::Sym(b':'),
                Tok::Num {
                    v: 1234.5,
                    small: false,
                    after: b'('
                },
                Tok::Sym(b'('),
                Tok::Pct,
                Tok::Sym(b'%'),
                Tok::Sym(b')'),
                Tok::Lev(10.0),
                Tok::Lev(20.0),
                Tok::Num {
                    v: 43500.0,
                    small: false,
                    after: 0
                },
            ]
        );
        assert_eq!(
            lex("1) 1000PEPEUSDT <@&123> https://x.y/1 1 234.5"),
            vec![
                Tok::Num {
                    v: 1.0,
                    small: true,
                    after: b')'
                },
                Tok::Sym(b')'),
                Tok::Word("1000PEPEUSDT"),
                Tok::Num {
                    v: 1234.5,
                    small: false,
                    after: 0
                },
            ]
        );
        assert_eq!(
            lex("105 110"),
            vec![
                Tok::Num {
                    v: 105.0,
                    small: false,
                    after: b'1'
                },
                Tok::Num {
                    v: 110.0,
                    small: false,
                    after: 0
                },
            ]
        );
        assert_eq!(
            lex("43 500 🎯"),
            vec![
                Tok::Num {
                    v: 43500.0,
                    small: false,
                    after: 0
                },
                Tok::TargetMark,
            ]
        );
    }
}
