//! The emulator's outbox: account mail (verification links, sign-in codes, recovery links,
//! rendered from the product's templates by [`crate::mail`]) is "sent" by storing it in the
//! `mail` table, shown on `/mailbox` and served as JSON for tests. Outside `/v1` and needing no
//! project, like a local mail catcher.

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::Html,
    routing::get,
};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{error::ApiResult, mail, state::AppState, util};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mailbox", get(page))
        .route("/mailbox/api/messages", get(list).delete(clear))
}

/// Kinds of mail the account routes send.
#[derive(Debug, Clone, Copy)]
pub enum MailKind {
    Verification,
    EmailOtp,
    Recovery,
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            MailKind::Verification => "verification",
            MailKind::EmailOtp => "email_otp",
            MailKind::Recovery => "recovery",
        }
    }
}

/// One message to deliver; `secret` and `url` are kept machine-readable for tests.
pub struct Mail<'a> {
    pub to: &'a str,
    /// The recipient's name, as Appwrite puts it in the `To` header (may be empty).
    pub to_name: &'a str,
    pub kind: MailKind,
    pub subject: String,
    /// The HTML message.
    pub body: String,
    pub user_id: &'a str,
    pub secret: &'a str,
    pub url: &'a str,
}

/// Delivers a message into the mailbox (inside the caller's transaction).
pub fn deliver(conn: &Connection, mail: Mail<'_>) -> ApiResult<()> {
    // Never the secret: logs outlive the mailbox.
    tracing::info!(
        kind = mail.kind.as_str(),
        to = mail.to,
        "mail delivered to the emulator mailbox"
    );
    let data = json!({
        "userId": mail.user_id,
        "secret": mail.secret,
        "url": mail.url,
        "toName": mail.to_name,
    });
    conn.execute(
        "INSERT INTO mail (created_at, to_email, kind, subject, body, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            util::now(),
            mail.to.to_lowercase(),
            mail.kind.as_str(),
            mail.subject,
            mail.body,
            data.to_string()
        ],
    )?;
    Ok(())
}

struct Stored {
    id: i64,
    created_at: String,
    to: String,
    kind: String,
    subject: String,
    body: String,
    data: Value,
}

async fn load(state: &AppState, to: Option<String>) -> ApiResult<Vec<Stored>> {
    state
        .store
        .call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, created_at, to_email, kind, subject, body, data FROM mail \
                 WHERE (?1 IS NULL OR to_email = ?1) ORDER BY id DESC",
            )?;
            let rows = stmt.query_map(params![to.map(|t| t.trim().to_lowercase())], |r| {
                let data: String = r.get(6)?;
                Ok(Stored {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    to: r.get(2)?,
                    kind: r.get(3)?,
                    subject: r.get(4)?,
                    body: r.get(5)?,
                    data: serde_json::from_str(&data).unwrap_or_else(|_| json!({})),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
}

#[derive(Deserialize)]
struct ListParams {
    to: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let messages = load(&state, params.to).await?;
    let out: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "to": m.to,
                "kind": m.kind,
                "subject": m.subject,
                "text": mail::text_of(&m.body),
                "body": m.body,
                "createdAt": m.created_at,
                "data": m.data,
            })
        })
        .collect();
    Ok(Json(json!({ "total": out.len(), "messages": out })))
}

async fn clear(State(state): State<AppState>) -> ApiResult<StatusCode> {
    state
        .store
        .call(|conn| {
            conn.execute("DELETE FROM mail", [])?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Each message as a mail client shows it: subject, recipient, the text with its links
/// clickable, and the HTML as sent in a sandboxed frame (no scripts, no navigation of this page).
async fn page(State(state): State<AppState>) -> ApiResult<Html<String>> {
    let messages = load(&state, None).await?;
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Emulator mailbox</title>\
         <style>body{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}\
         article{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}\
         .meta{color:#555;font-size:.9em}pre{white-space:pre-wrap;word-break:break-all}\
         iframe{width:100%;height:32rem;border:1px solid #ccc;border-radius:4px;background:#fff}</style>\
         </head><body><h1>Mailbox</h1>\n",
    );
    if messages.is_empty() {
        html.push_str("<p>No messages yet.</p>\n");
    }
    for m in &messages {
        let to = match m.data["toName"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name} <{}>", m.to),
            None => m.to.clone(),
        };
        html.push_str(&format!(
            "<article><h2>{}</h2><p class=\"meta\">To {} &middot; {} &middot; {}</p><pre>{}</pre>\
             <details><summary>As sent (HTML)</summary><iframe sandbox title=\"{}\" srcdoc=\"{}\"></iframe></details></article>\n",
            util::escape_html(&m.subject),
            util::escape_html(&to),
            util::escape_html(&m.kind),
            util::escape_html(&m.created_at),
            linkify(&mail::text_of(&m.body)),
            util::escape_html(&m.subject),
            util::escape_html(&m.body),
        ));
    }
    html.push_str("</body></html>\n");
    Ok(Html(html))
}

/// Escapes a body and turns its http(s) URLs into links; other schemes stay text so a
/// message can never carry a `javascript:` link.
fn linkify(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        out.push_str(&util::escape_html(&rest[..start]));
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        out.push_str(&format!("<a href=\"{0}\">{0}</a>", util::escape_html(url)));
        rest = &tail[end..];
    }
    out.push_str(&util::escape_html(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_clickable_and_markup_is_escaped() {
        let html = linkify("<b>hi</b> go to https://x.io/v?a=1&b=\"2 now");
        assert_eq!(
            html,
            "&lt;b&gt;hi&lt;/b&gt; go to <a href=\"https://x.io/v?a=1&amp;b=\">https://x.io/v?a=1&amp;b=</a>&quot;2 now"
        );
        assert_eq!(linkify("javascript:alert(1)"), "javascript:alert(1)");
    }
}
