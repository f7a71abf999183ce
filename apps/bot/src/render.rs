//! What a signal looks like in a customer channel: an embed for a parsed trade, the original
//! text split into at most [`MAX_PARTS`] messages of Discord's 2000 characters, and nothing
//! that pings anyone.

use g3_store::models::{Side, Signal};
use serenity::all::{Colour, CreateEmbed, CreateEmbedFooter};

/// Discord's limit on a message's `content`.
pub const CONTENT_LIMIT: usize = 2000;
/// Signals hold at most 8000 characters (schema), so four parts always suffice.
pub const MAX_PARTS: usize = 4;
const FIELD_LIMIT: usize = 1024;
const TITLE_LIMIT: usize = 256;
const EMPTY: &str = "(no text)";

/// One message of a mirror.
#[derive(Debug, Clone)]
pub struct Part {
    pub content: String,
    /// Only the first part carries the embed (and the attachments).
    pub embed: Option<CreateEmbed>,
}

/// The parts a signal is mirrored as: never empty, never more than [`MAX_PARTS`].
pub fn parts(signal: &Signal) -> Vec<Part> {
    let text = signal.content.as_deref().unwrap_or("").trim();
    let mut chunks = split(text, CONTENT_LIMIT, MAX_PARTS);
    let embed = embed(signal);
    if chunks.is_empty() {
        chunks.push(if embed.is_some() {
            String::new()
        } else {
            EMPTY.to_owned()
        });
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, content)| Part {
            content,
            embed: if i == 0 { embed.clone() } else { None },
        })
        .collect()
}

/// Splits at line breaks where it can, at a character boundary where it must; the last allowed
/// part ends with an ellipsis if the text is still longer.
pub fn split(text: &str, limit: usize, max_parts: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && out.len() < max_parts {
        let chars = rest.chars().count();
        if chars <= limit {
            out.push(rest.to_owned());
            break;
        }
        let last = out.len() + 1 == max_parts;
        let budget = if last { limit - 1 } else { limit };
        let hard = byte_index(rest, budget);
        let cut = if last {
            hard
        } else {
            match rest[..hard].rfind('\n') {
                Some(i) if i > hard / 2 => i + 1,
                _ => hard,
            }
        };
        let mut piece = rest[..cut].trim_end().to_owned();
        if last {
            piece.push('…');
        }
        out.push(piece);
        rest = rest[cut..].trim_start_matches('\n');
    }
    out
}

fn byte_index(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn clip(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(limit - 1).collect();
        out.push('…');
        out
    }
}

fn numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The trade card, for signals the parser understood (a pair and a side); `None` otherwise.
pub fn embed(signal: &Signal) -> Option<CreateEmbed> {
    let pair = signal.pair.as_deref()?;
    let side = signal.side?;
    let (word, colour) = match side {
        Side::Long => ("LONG", Colour::new(0x2e_cc_71)),
        Side::Short => ("SHORT", Colour::new(0xe7_4c_3c)),
    };
    let mut e = CreateEmbed::new()
        .title(clip(&format!("{pair} {word}"), TITLE_LIMIT))
        .colour(colour);
    if !signal.entries.is_empty() {
        e = e.field(
            "Entries",
            clip(&numbers(&signal.entries), FIELD_LIMIT),
            true,
        );
    }
    if !signal.targets.is_empty() {
        e = e.field(
            "Targets",
            clip(&numbers(&signal.targets), FIELD_LIMIT),
            true,
        );
    }
    if let Some(stop) = signal.stop {
        e = e.field("Stop", format!("{stop}"), true);
    }
    if let Some(lev) = signal.leverage {
        e = e.field("Leverage", format!("{lev}x"), true);
    }
    if !signal.flags.is_empty() {
        e = e.footer(CreateEmbedFooter::new(clip(
            &format!("check: {}", signal.flags.join(", ")),
            FIELD_LIMIT,
        )));
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split("hello", 2000, 4), vec!["hello"]);
        assert!(split("", 2000, 4).is_empty());
    }

    #[test]
    fn long_text_splits_at_lines_within_the_limit() {
        let line = "x".repeat(99);
        let text = vec![line.as_str(); 50].join("\n"); // 4999 chars
        let parts = split(&text, 2000, 4);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
        assert_eq!(parts.concat().replace('\n', "").len(), 99 * 50);
    }

    #[test]
    fn text_past_the_last_part_is_cut_with_an_ellipsis() {
        let text = "é".repeat(9000);
        let parts = split(&text, 2000, 4);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
        assert!(parts[3].ends_with('…'));
    }
}
