//! Reading one run of digits, dots and commas ("1,234.5", "0,0123", "1.234,5", "0.5,0.6") into
//! one or more prices. Separators are ambiguous, so the rules below pick the reading a signal
//! author most likely meant, and fall back to a comma-separated list.

/// Longest run we try to read; longer runs are noise (ids, hashes), not prices.
const MAX_RUN: usize = 48;

/// Calls `emit` with each number in `run` (bytes from `[0-9.,]`, without leading or trailing
/// separators). Unreadable pieces are skipped.
pub(crate) fn interpret(run: &[u8], emit: &mut impl FnMut(f64)) {
    if run.len() > MAX_RUN {
        return;
    }
    if let Some(v) = single(run) {
        emit(v);
        return;
    }
    // Not one number: a list such as "0.5,0.6,0.7" or "100,200,300".
    for piece in run.split(|&c| c == b',') {
        if let Some(v) = plain(piece) {
            emit(v);
        }
    }
}

/// The run read as one number, if some convention fits it as a whole.
fn single(run: &[u8]) -> Option<f64> {
    let commas = run.iter().filter(|&&c| c == b',').count();
    let dots = run.iter().filter(|&&c| c == b'.').count();
    match (commas, dots) {
        (0, 0 | 1) => plain(run),
        (0, _) => None,
        (_, 0) => {
            if grouped(run, b',') {
                let v = filtered(run, b',', b'.')?;
                // "0,123" is a decimal comma: nobody groups thousands after a lone zero.
                if commas == 1 && run.first() == Some(&b'0') {
                    return filtered(run, 0, b',');
                }
                // Crypto prices never reach a million: "100,200,300" is a list.
                (v < 1_000_000.0).then_some(v)
            } else if commas == 1 {
                // "0,5" or "1,25": a decimal comma.
                filtered(run, 0, b',')
            } else {
                None
            }
        }
        _ => {
            let comma = run.iter().position(|&c| c == b',')?;
            let dot = run.iter().position(|&c| c == b'.')?;
            if comma < dot {
                // US style "1,234.5": commas group the integer part, one dot ends it.
                let (int, frac) = run.split_at(dot);
                (dots == 1 && grouped(int, b',') && is_digits(frac.get(1..)?))
                    .then(|| filtered(run, b',', b'.'))
                    .flatten()
            } else {
                // European style "1.234,5".
                let (int, frac) = run.split_at(comma);
                (commas == 1 && grouped(int, b'.') && is_digits(frac.get(1..)?))
                    .then(|| filtered(run, b'.', b','))
                    .flatten()
            }
        }
    }
}

/// `1-3 digits (sep 3 digits)+`, the shape of a grouped integer.
fn grouped(run: &[u8], sep: u8) -> bool {
    let mut groups = run.split(|&c| c == sep);
    let Some(first) = groups.next() else {
        return false;
    };
    let mut rest = 0;
    for g in groups {
        if g.len() != 3 || !is_digits(g) {
            return false;
        }
        rest += 1;
    }
    rest > 0 && (1..=3).contains(&first.len()) && is_digits(first)
}

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// Digits with at most one dot: "43000", "0.0123", ".5", "5.".
fn plain(s: &[u8]) -> Option<f64> {
    if !s.iter().any(u8::is_ascii_digit) || s.iter().filter(|&&c| c == b'.').count() > 1 {
        return None;
    }
    filtered(s, 0, b'.')
}

/// Parses `s` after dropping every `skip` byte and reading `decimal` as the decimal point.
/// Works in a stack buffer: this runs for every number of every message.
fn filtered(s: &[u8], skip: u8, decimal: u8) -> Option<f64> {
    let mut buf = [0u8; MAX_RUN];
    let mut n = 0;
    for &c in s {
        let c = if c == decimal {
            b'.'
        } else if c == skip {
            continue;
        } else if c.is_ascii_digit() {
            c
        } else {
            return None;
        };
        *buf.get_mut(n)? = c;
        n += 1;
    }
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Vec<f64> {
        let mut out = Vec::new();
        interpret(s.as_bytes(), &mut |v| out.push(v));
        out
    }

    #[test]
    fn conventions() {
        assert_eq!(read("43000"), vec![43000.0]);
        assert_eq!(read(".5"), vec![0.5]);
        assert_eq!(read("1,234.5"), vec![1234.5]);
        assert_eq!(read("1.234,5"), vec![1234.5]);
        assert_eq!(read("43,500"), vec![43500.0]);
        assert_eq!(read("0,123"), vec![0.123]);
        assert_eq!(read("0,0123"), vec![0.0123]);
        assert_eq!(read("1,25"), vec![1.25]);
        assert_eq!(read("0.5,0.6,0.7"), vec![0.5, 0.6, 0.7]);
        assert_eq!(read("100,200,300"), vec![100.0, 200.0, 300.0]);
        assert_eq!(read("1,234,567.5"), vec![1234567.5]);
        assert_eq!(read("1.2.3"), Vec::<f64>::new());
        assert_eq!(read("0"), Vec::<f64>::new());
    }
}
