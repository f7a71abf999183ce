//! The web app's Discord-markdown renderer (`web::markdown::render`) on arbitrary text.
//!
//! The renderer promises (module docs and its `html_never_survives` test) that every byte of
//! the message is escaped and only its own fixed tags are added, so the output is safe to
//! insert as is. Checked here: after removing exactly those tags, no `<`, `>`, `"` or `'` is
//! left (so no raw `<script`, no attribute can be opened, nothing clickable); every `&` starts
//! one of the five entities `escape` writes; each opening tag has its closing tag; and
//! rendering is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use web::markdown::render;

/// `(opening tags, closing tag)` the renderer may write.
const TAGS: &[(&[&str], &str)] = &[
    (&["<strong>", "<strong class=\"heading\">"], "</strong>"),
    (&["<em>"], "</em>"),
    (&["<u>"], "</u>"),
    (&["<s>"], "</s>"),
    (&["<span class=\"spoiler\">", "<span class=\"quote\">"], "</span>"),
    (&["<code>"], "</code>"),
    (&["<pre>"], "</pre>"),
];
const ENTITIES: &[&str] = &["&#38;", "&#60;", "&#62;", "&#34;", "&#39;"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let html = render(text);
    assert_eq!(render(text), html, "not deterministic");

    // Walk the output: a `<` must start one of our tags, an `&` one of our entities.
    let mut rest = html.as_str();
    let mut open = [0usize; 7];
    let mut close = [0usize; 7];
    let mut text_only = String::with_capacity(html.len());
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let found = TAGS.iter().enumerate().find_map(|(i, (opens, closing))| {
                if let Some(o) = opens.iter().find(|o| rest.starts_with(**o)) {
                    Some((i, o.len(), true))
                } else {
                    rest.starts_with(closing).then_some((i, closing.len(), false))
                }
            });
            let Some((i, len, is_open)) = found else {
                let end = rest.char_indices().nth(24).map_or(rest.len(), |(i, _)| i);
                panic!("raw `<` in the output: {:?}\nfull output: {html:?}", &rest[..end]);
            };
            if is_open {
                open[i] += 1;
            } else {
                close[i] += 1;
            }
            rest = &rest[len..];
            continue;
        }
        if c == '&' {
            let Some(e) = ENTITIES.iter().find(|e| rest.starts_with(**e)) else {
                panic!("an `&` that is not our entity in {html:?}");
            };
            rest = &rest[e.len()..];
            continue;
        }
        text_only.push(c);
        rest = &rest[c.len_utf8()..];
    }
    for bad in ['<', '>', '"', '\''] {
        assert!(!text_only.contains(bad), "unescaped {bad:?} in {html:?}");
    }
    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert_eq!(open, close, "unbalanced tags in {html:?}");
});
