//! Discord's markdown, rendered safely: every byte of the message is HTML-escaped first, then
//! only our own fixed tags are added around the marked spans (bold, italic, underline, strike,
//! spoiler, inline code, code blocks, quotes, headings). Links stay text: nothing is clickable.

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
            let mut s = escape(part);
            for (marker, open, close) in INLINE {
                s = pairs(&s, marker, open, close);
            }
            out.push_str(&s);
        }
    }
    out
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
