//! Account mail as Appwrite renders a project's custom email templates: the product's templates
//! in `docs/mail` (the ones operators install in Appwrite), filled with Appwrite 1.8's variables.
//! Like Appwrite, values are HTML-escaped in the message except `{{redirect}}`, and the subject
//! is plain text; unlike Appwrite, one pass, so a value never brings in another placeholder.

/// The Appwrite email template types the account routes send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// `POST /account/verification`: the link that confirms the address.
    Verification,
    /// `POST /account/tokens/email`: the six-digit sign-in code.
    OtpSession,
    /// `POST /account/recovery`: the password reset link.
    Recovery,
}

impl Template {
    /// Subject and message, as installed in the Appwrite project.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Template::Verification => (
                include_str!("../../../docs/mail/verification.subject.txt"),
                include_str!("../../../docs/mail/verification.html"),
            ),
            Template::OtpSession => (
                include_str!("../../../docs/mail/otpSession.subject.txt"),
                include_str!("../../../docs/mail/otpSession.html"),
            ),
            Template::Recovery => (
                include_str!("../../../docs/mail/recovery.subject.txt"),
                include_str!("../../../docs/mail/recovery.html"),
            ),
        }
    }
}

/// What Appwrite fills a template with. Empty values stay empty, as in Appwrite (a user without
/// a name gives an empty `{{user}}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The user's name.
    pub user: &'a str,
    /// The project's name (the emulator knows only its id).
    pub project: &'a str,
    /// The link to follow (verification and recovery).
    pub redirect: &'a str,
    /// The sign-in code (`otpSession`).
    pub otp: &'a str,
}

/// A mail ready to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    /// A whole HTML document: the message in a minimal layout (Appwrite uses its own).
    pub html: String,
}

/// Appwrite's value for `name` in the message and subject, if it has one.
fn value<'a>(vars: &Vars<'a>, subject: &'a str, name: &str) -> Option<&'a str> {
    Some(match name {
        "user" => vars.user,
        "project" => vars.project,
        "redirect" => vars.redirect,
        "otp" => vars.otp,
        "subject" | "heading" => subject,
        "direction" => "ltr",
        // Filled by Appwrite with what it detects, or nothing.
        "agentDevice" | "agentClient" | "agentOs" => "UNKNOWN",
        "team" | "phrase" => "",
        _ => return None,
    })
}

/// Replaces every `{{name}}` Appwrite knows in one pass; unknown placeholders stay as written.
fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| value(&after[..end]).map(|v| (end, v)))
        {
            Some((end, v)) => {
                out.push_str(&v);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The mail `template` gives for `vars`.
pub fn render(template: Template, vars: &Vars<'_>) -> Rendered {
    let (subject, message) = template.source();
    let subject_template = subject.trim();
    let subject = fill(subject_template, |name| {
        value(vars, subject_template, name).map(str::to_owned)
    });
    let body = fill(message.trim_end(), |name| {
        value(vars, subject_template, name).map(|v| {
            if name == "redirect" {
                v.to_owned()
            } else {
                crate::util::escape_html(v)
            }
        })
    });
    let html = format!(
        "<!doctype html>\n<html lang=\"en\" dir=\"ltr\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; font-size: 16px; \
         line-height: 1.5; color: #1b1f24; max-width: 600px; margin: 0 auto; padding: 16px;\">\n{body}\n</body></html>\n",
        crate::util::escape_html(&subject),
    );
    Rendered { subject, html }
}

/// The plain-text part of a mail, as a mail client shows it without HTML: tags dropped, the
/// common entities decoded, one blank line between paragraphs.
pub fn text_of(html: &str) -> String {
    let body = html
        .find("<body")
        .and_then(|b| html[b..].find('>').map(|e| b + e + 1))
        .map_or(html, |start| {
            let end = html.rfind("</body>").unwrap_or(html.len());
            &html[start..end.max(start)]
        });
    let mut text = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = rest[open + 1..open + close].to_ascii_lowercase();
        if tag.starts_with("br") {
            text.push('\n');
        } else if tag.starts_with("/p") || tag.starts_with("/li") || tag.starts_with("/h") {
            text.push_str("\n\n");
        }
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut out = String::new();
    let mut blank = true;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_except_the_link_and_filled_once() {
        let vars = Vars {
            user: "<b>{{otp}}</b>",
            project: "g3",
            redirect: "https://app.example/verify?userId=u&secret=s",
            otp: "123456",
        };
        let filled = fill("Hi {{user}} {{redirect}} {{otp}} {{unknown}} {{", |name| {
            value(&vars, "", name).map(|v| {
                if name == "redirect" {
                    v.to_owned()
                } else {
                    crate::util::escape_html(v)
                }
            })
        });
        assert_eq!(
            filled,
            "Hi &lt;b&gt;{{otp}}&lt;/b&gt; https://app.example/verify?userId=u&secret=s 123456 \
             {{unknown}} {{"
        );
    }

    #[test]
    fn every_template_reads_like_the_product_and_carries_its_secret() {
        let vars = Vars {
            user: "",
            project: "g3",
            redirect: "https://app.example/verify?userId=u&secret=s&expire=x",
            otp: "654321",
        };
        for (template, secret) in [
            (Template::Verification, vars.redirect),
            (Template::Recovery, vars.redirect),
            (Template::OtpSession, vars.otp),
        ] {
            let mail = render(template, &vars);
            assert!(mail.subject.contains("G3netic Signals"), "{mail:?}");
            assert!(!mail.subject.contains("{{"), "{mail:?}");
            assert!(!mail.html.contains("{{"), "{mail:?}");
            assert!(mail.html.contains(secret), "{template:?}: {}", mail.html);
            let text = text_of(&mail.html);
            assert!(text.starts_with("Hello,"), "{text}");
            assert!(text.contains(secret), "{text}");
            assert!(text.contains("ignore this email"), "{text}");
            assert!(text.ends_with("The G3netic Signals team"), "{text}");
            assert!(!text.contains('<'), "{text}");
        }
    }
}
