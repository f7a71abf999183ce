//! Discord's markdown, rendered safely: every byte of the message is HTML-escaped first, then
//! only our own fixed tags are added around the marked spans (bold, italic, underline, strike,
//! spoiler, inline code, code blocks, quotes, headings). Only `http`/`https` links become
//! clickable, opening apart from the page (`rel="noopener nofollow ugc"`, `target="_blank"`);
//! a masked link (`[label](url)`) shows the site it leads to beside its label.

/// Escapes as askama does, so pages read the same whichever path a text took.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline markers, longest first so `**` is not read as two `*`.
const INLINE: &[(&str, &str, &str)] = &[
    ("**", "<strong>", "</strong>"),
    ("__", "<u>", "</u>"),
    ("~~", "<s>", "</s>"),
    ("||", "<span class=\"spoiler\">", "</span>"),
    ("*", "<em>", "</em>"),
];

/// Renders a whole message to HTML that is safe to insert as is.
pub fn render(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for (i, part) in text.split("```").enumerate() {
        let is_code = i % 2 == 1 && text.split("```").count() > i + 1;
        if is_code {
            // A language tag on the fence's first line is dropped.
            let body = match part.split_once('\n') {
                Some((first, rest)) if !first.contains(' ') && !first.is_empty() => rest,
                _ => part,
            };
            out.push_str("<pre><code>");
            out.push_str(&escape(body.trim_matches('\n')));
            out.push_str("</code></pre>");
        } else {
            if i % 2 == 1 {
                // An unclosed fence is just text.
                out.push_str("```");
            }
            render_lines(part, &mut out);
        }
    }
    out
}

fn render_lines(text: &str, out: &mut String) {
    let mut quote_rest = false;
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let (block, body) = if quote_rest {
            (Some(("<span class=\"quote\">", "</span>")), line)
        } else if let Some(rest) = line.strip_prefix(">>> ") {
            quote_rest = true;
            (Some(("<span class=\"quote\">", "</span>")), rest)
        } else if let Some(rest) = line.strip_prefix("> ") {
            (Some(("<span class=\"quote\">", "</span>")), rest)
        } else if let Some(rest) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
            .or_else(|| line.strip_prefix("# "))
        {
            (Some(("<strong class=\"heading\">", "</strong>")), rest)
        } else {
            (None, line)
        };
        match block {
            Some((open, close)) => {
                out.push_str(open);
                out.push_str(&inline(body));
                out.push_str(close);
            }
            None => {
                out.push_str(&inline(body));
                if !last {
                    out.push('\n');
                }
            }
        }
    }
}

/// One line: inline code spans first (their content is never formatted), then the markers.
fn inline(line: &str) -> String {
    let parts: Vec<&str> = line.split('`').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let closed = i % 2 == 1 && i + 1 < parts.len();
        if closed {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            formatted(part, &mut out);
        }
    }
    out
}

/// Stands for one link while the text around it is escaped and formatted, so markers never
/// reach into a URL. A private-use character: Discord text that holds one has it replaced.
const LINK_SLOT: char = '\u{E000}';

/// Text outside code spans: links cut out, the rest escaped and formatted, links put back.
fn formatted(part: &str, out: &mut String) {
    let part = if part.contains(LINK_SLOT) {
        std::borrow::Cow::Owned(part.replace(LINK_SLOT, "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(part)
    };
    let mut links = Vec::new();
    let mut text = String::new();
    let mut rest: &str = &part;
    while let Some((start, end, html)) = next_link(rest) {
        text.push_str(&rest[..start]);
        text.push(LINK_SLOT);
        links.push(html);
        rest = &rest[end..];
    }
    let mut s = if links.is_empty() {
        escape(rest)
    } else {
        text.push_str(rest);
        escape(&text)
    };
    for (marker, open, close) in INLINE {
        s = pairs(&s, marker, open, close);
    }
    if links.is_empty() {
        out.push_str(&s);
        return;
    }
    let mut links = links.into_iter();
    for (i, piece) in s.split(LINK_SLOT).enumerate() {
        if i > 0 {
            out.push_str(&links.next().unwrap_or_default());
        }
        out.push_str(piece);
    }
}

/// Longest URL made clickable; anything longer stays text.
const URL_MAX: usize = 2_048;
/// Longest label of a masked link.
const LABEL_MAX: usize = 200;

/// The first link in `s`: where it starts and ends, and its HTML.
fn next_link(s: &str) -> Option<(usize, usize, String)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(off) = s.get(from..)?.find(['h', 'H', '[']) {
        let i = from + off;
        from = i + 1;
        if b[i] == b'[' {
            if let Some(found) = masked_link(s, i) {
                return Some(found);
            }
            continue;
        }
        // A word that merely ends in "http" is not a link ("xhttps://").
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let Some(len) = url_len(&s[i..]) else {
            continue;
        };
        let Some(url) = web_url(&s[i..i + len]) else {
            continue;
        };
        let text = escape(&s[i..i + len]);
        // Discord's `<https://…>` (a link without a preview) shows without its brackets.
        let (start, end) = if i > 0 && b[i - 1] == b'<' && b.get(i + len) == Some(&b'>') {
            (i - 1, i + len + 1)
        } else {
            (i, i + len)
        };
        return Some((start, end, anchor(&url, &text)));
    }
    None
}

/// `[label](https://…)` at `i`: the label as the link, followed by the site it leads to.
fn masked_link(s: &str, i: usize) -> Option<(usize, usize, String)> {
    let rest = s.get(i + 1..)?;
    let close = rest.find(']').filter(|&c| c > 0 && c <= LABEL_MAX)?;
    let label = &rest[..close];
    let after = rest.get(close + 1..)?.strip_prefix('(')?;
    let len = after.find([')', ' ', '\t'])?;
    if after.as_bytes().get(len) != Some(&b')') {
        return None;
    }
    let url = web_url(&after[..len])?;
    let host = url.host_str().unwrap_or_default();
    let html = format!(
        "{} <span class=\"host\">({})</span>",
        anchor(&url, &escape(label.trim())),
        escape(host)
    );
    // `[` + label + `](` + url + `)`
    Some((i, i + 1 + close + 2 + len + 1, html))
}

/// Length of the URL at the start of `s` (which must start with `http://` or `https://`),
/// without the punctuation that ends a sentence around it.
fn url_len(s: &str) -> Option<usize> {
    let lower = s.get(..8)?.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return None;
    }
    let mut end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`' | LINK_SLOT))
        .unwrap_or(s.len());
    loop {
        let last = s[..end].chars().next_back()?;
        let unbalanced_paren =
            last == ')' && s[..end].matches('(').count() < s[..end].matches(')').count();
        if matches!(
            last,
            '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '*' | '_' | '~' | '|' | ']'
        ) || unbalanced_paren
        {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    (end <= URL_MAX).then_some(end)
}

/// `text` as a web address worth linking: `http` or `https` with a host, nothing else.
fn web_url(text: &str) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
        .then_some(url)
}

/// The link itself: the address as the URL parser wrote it (percent-encoded), escaped again
/// for the attribute; `text_html` is already escaped.
fn anchor(url: &url::Url, text_html: &str) -> String {
    format!(
        "<a href=\"{}\" rel=\"noopener nofollow ugc\" target=\"_blank\">{text_html}</a>",
        escape(url.as_str())
    )
}

/// Wraps non-empty text between paired `marker`s; unpaired markers stay as they were.
fn pairs(s: &str, marker: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(start) = rest.find(marker) {
        let after = &rest[start + marker.len()..];
        match after.find(marker) {
            Some(end) if end > 0 => {
                out.push_str(&rest[..start]);
                out.push_str(open);
                out.push_str(&after[..end]);
                out.push_str(close);
                rest = &after[end + marker.len()..];
            }
            _ => {
                // No partner (or an empty span): this marker is text.
                out.push_str(&rest[..start + marker.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_common_markers() {
        assert_eq!(
            render("**Buy** *now* __here__ ~~not~~ ||tp2||"),
            "<strong>Buy</strong> <em>now</em> <u>here</u> <s>not</s> <span class=\"spoiler\">tp2</span>"
        );
        assert_eq!(render("a `**x**` b"), "a <code>**x**</code> b");
        assert_eq!(
            render("```rust\nlet x = 1 < 2;\n```"),
            "<pre><code>let x = 1 &#60; 2;</code></pre>"
        );
        assert_eq!(
            render("> quoted\nplain"),
            "<span class=\"quote\">quoted</span>plain"
        );
        assert_eq!(
            render("# Title\nbody"),
            "<strong class=\"heading\">Title</strong>body"
        );
        assert_eq!(render("line1\nline2"), "line1\nline2");
    }

    #[test]
    fn unpaired_markers_stay_text() {
        assert_eq!(render("5 * 3"), "5 * 3");
        assert_eq!(render("**a** **b"), "<strong>a</strong> **b");
        assert_eq!(render("a ` b"), "a ` b");
        assert_eq!(render("```open"), "```open");
        assert_eq!(render("snake_case_name"), "snake_case_name");
    }

    #[test]
    fn web_links_are_clickable_and_open_apart() {
        assert_eq!(
            render("chart: https://tradingview.com/x/AbC_1/?a=1&b=2."),
            "chart: <a href=\"https://tradingview.com/x/AbC_1/?a=1&#38;b=2\" \
             rel=\"noopener nofollow ugc\" target=\"_blank\">\
             https://tradingview.com/x/AbC_1/?a=1&#38;b=2</a>."
        );
        // Markers around a link format it; markers inside it are part of the address.
        assert_eq!(
            render("**see https://x.io/a__b__c**"),
            "<strong>see <a href=\"https://x.io/a__b__c\" rel=\"noopener nofollow ugc\" \
             target=\"_blank\">https://x.io/a__b__c</a></strong>"
        );
        assert_eq!(
            render("(<https://x.io/p_(1)>)"),
            "(<a href=\"https://x.io/p_(1)\" rel=\"noopener nofollow ugc\" \
             target=\"_blank\">https://x.io/p_(1)</a>)"
        );
        assert_eq!(
            render("[Chart **now**](https://evil.example/b) ok"),
            "<a href=\"https://evil.example/b\" rel=\"noopener nofollow ugc\" \
             target=\"_blank\">Chart **now**</a> <span class=\"host\">(evil.example)</span> ok"
        );
        assert_eq!(render("`https://x.io`"), "<code>https://x.io</code>");
    }

    #[test]
    fn only_web_links_are_clickable() {
        for text in [
            "javascript:alert(1)",
            "[x](javascript:alert(1))",
            "[x](data:text/html,<script>)",
            "xhttps://x.io",
            "http://",
            "https:// x.io",
            "ftp://x.io",
            "\u{E000} https://",
        ] {
            let html = render(text);
            assert!(!html.contains("<a"), "{text} -> {html}");
        }
        // A masked link the renderer does not read shows its address, never the label alone.
        let html = render("[x](https://x.io \"title\")");
        assert!(
            html.contains(">https://x.io</a>") && !html.contains(">x</a>"),
            "{html}"
        );
        // A link's address cannot leave its attribute.
        let html = render("https://x.io/\"onmouseover=alert(1)//");
        assert!(!html.contains("\" onmouseover"), "{html}");
        let html = render("https://x.io/'><script>alert(1)</script>");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.starts_with("<a href=\"https://x.io/\"") && html.contains("&#39;&#62;&#60;script"),
            "{html}"
        );
        // A private-use character in the text cannot stand in for a link.
        let html = render("\u{E000}\u{E000} https://x.io");
        assert_eq!(html.matches("<a ").count(), 1, "{html}");
        assert!(!html.contains('\u{E000}'));
        let long = format!("https://x.io/{}", "a".repeat(URL_MAX));
        assert!(!render(&long).contains("<a"));
    }

    #[test]
    fn html_never_survives() {
        let nasty = "<script>alert(1)</script> **<img src=x onerror=alert(2)>** \
                     [x](javascript:alert(3)) `<b>` ```\n<iframe>\n``` > <svg onload=1>";
        let html = render(nasty);
        for bad in ["<script", "<img", "<iframe", "<svg", "<b>", "href"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("&#60;script&#62;"));
        assert!(html.contains("[x](javascript:alert(3))"));
        // Only our own tags remain.
        let tags: Vec<&str> = html
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or(""))
            .collect();
        for tag in tags {
            let name = tag.trim_start_matches('/').split(' ').next().unwrap_or("");
            assert!(
                ["strong", "em", "u", "s", "span", "code", "pre"].contains(&name),
                "unexpected tag {tag}"
            );
        }
    }
}
